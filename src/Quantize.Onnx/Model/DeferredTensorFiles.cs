using Microsoft.Win32.SafeHandles;
using Quantize.Onnx.Model.Proto;

namespace Quantize.Onnx.Model;

/// <summary>
/// The data files of deferred tensors in a <see cref="WorkFolder"/>: new tensors are appended to the spill file, and any
/// deferred tensor is read back on demand through one read handle per file. Thread-safe.
/// </summary>
internal sealed class DeferredTensorFiles(WorkFolder folder) : IDisposable
{
    private const string SpillFileName = "spill.data";

    private readonly object _gate = new();
    private readonly Dictionary<string, SafeFileHandle> _readers = new(StringComparer.Ordinal);
    private SafeFileHandle? _spill;
    private long _spillEnd;

    /// <summary>Writes <paramref name="bytes"/> to the spill file and makes <paramref name="tensor"/> refer to them.</summary>
    public void Spill(TensorProto tensor, ReadOnlySpan<byte> bytes)
    {
        long offset;
        lock (_gate)
        {
            offset = Align(_spillEnd);
            try
            {
                _spill ??= File.OpenHandle(Path.Combine(folder.Ensure(), SpillFileName), _spillEnd == 0 ? FileMode.CreateNew : FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite);
                RandomAccess.Write(_spill, bytes, offset);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw folder.NotWritable(e);
            }

            _spillEnd = offset + bytes.Length;
        }

        tensor.ClearRawData();
        ExternalLocation.Set(tensor, SpillFileName, offset, bytes.Length);
    }

    /// <summary>
    /// Closes the spill file's write handle before ONNX Runtime opens the folder's files (Windows refuses a
    /// read-only open beside a writer); the next spill reopens it.
    /// </summary>
    public void ReleaseWriter()
    {
        lock (_gate)
        {
            if (_spill is not null)
            {
                _readers.Remove(SpillFileName, out var stale);
                stale?.Dispose();
                _spill.Dispose();
                _spill = null;
            }
        }
    }

    /// <summary>Reads a deferred tensor's bytes into <paramref name="destination"/> (its exact length).</summary>
    public void Read(TensorProto tensor, Span<byte> destination)
    {
        var (location, offset, length) = ExternalLocation.Of(tensor);
        if (length != destination.Length)
        {
            throw new InvalidOperationException($"Tensor '{tensor.Name}' holds {length} bytes, not {destination.Length}.");
        }

        var handle = Reader(location);
        int read = 0;
        while (read < destination.Length)
        {
            int n = RandomAccess.Read(handle, destination[read..], offset + read);
            if (n == 0)
            {
                throw new QuantizeException(ErrorCodes.ExternalDataUnreadable, location,
                    $"The external data of tensor '{tensor.Name}' ended early (the source data file was truncated while quantizing?); copy the complete data file beside the model and run again.");
            }

            read += n;
        }
    }

    /// <summary>Copies a deferred tensor's bytes to <paramref name="stream"/> in chunks (never the whole tensor in memory).</summary>
    public void CopyTo(TensorProto tensor, Stream stream)
    {
        var (location, offset, length) = ExternalLocation.Of(tensor);
        var handle = Reader(location);
        var buffer = new byte[Math.Min(length, 4 << 20)];
        for (long done = 0; done < length;)
        {
            int n = RandomAccess.Read(handle, buffer.AsSpan(0, (int)Math.Min(buffer.Length, length - done)), offset + done);
            if (n == 0)
            {
                throw new QuantizeException(ErrorCodes.ExternalDataUnreadable, location,
                    $"The external data of tensor '{tensor.Name}' ended early (the source data file was truncated while quantizing?); copy the complete data file beside the model and run again.");
            }

            stream.Write(buffer, 0, n);
            done += n;
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            _spill?.Dispose();
            foreach (var reader in _readers.Values)
            {
                reader.Dispose();
            }

            _readers.Clear();
        }
    }

    private SafeFileHandle Reader(string location)
    {
        lock (_gate)
        {
            if (location == SpillFileName && _spill is not null)
            {
                return _spill;
            }

            if (!_readers.TryGetValue(location, out var handle))
            {
                handle = File.OpenHandle(Path.Combine(folder.FullName, location), FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
                _readers.Add(location, handle);
            }

            return handle;
        }
    }

    /// <summary>ORT maps page-aligned external data instead of copying it.</summary>
    private static long Align(long offset) => (offset + ModelWriter.ExternalDataAlignment - 1) / ModelWriter.ExternalDataAlignment * ModelWriter.ExternalDataAlignment;
}
