using System.Globalization;
using DataLocation = Quantize.Onnx.Model.Proto.TensorProto.Types.DataLocation;
using Google.Protobuf;
using Quantize.Common;
using Quantize.Onnx.Model.Proto;

namespace Quantize.Onnx.Model;

/// <summary>
/// Writes ONNX models deterministically (the same model gives the same bytes) and atomically (a
/// reader never sees a half-written file). A model over protobuf's 2 GB limit, one with tensors deferred
/// by the active <see cref="ExternalDataScope"/>, or one whose source had external data is written with its
/// large tensors in one external data file, <c>&lt;model file name&gt;.data</c>, beside it.
/// </summary>
public static class ModelWriter
{
    /// <summary>The largest serialized model protobuf can parse (2 GB - 1); larger models get external data.</summary>
    public const long InlineSizeLimit = int.MaxValue;

    /// <summary>Tensors with at least this many bytes of raw_data move to the external data file.</summary>
    public const int ExternalTensorMinBytes = 1024;

    /// <summary>Every tensor in the external data file starts at a multiple of this (a page, so ORT can map it).</summary>
    public const int ExternalDataAlignment = 4096;

    /// <summary>
    /// Above this much tensor payload, <see cref="IMessage.CalculateSize"/> (an int) could overflow, so
    /// the payload alone decides that the model is too large to write inline.
    /// </summary>
    private const long SizeHeadroom = 256L << 20;


    /// <summary>Writes <paramref name="model"/> to <paramref name="path"/>, replacing any existing file.</summary>
    /// <remarks>The model is not changed. It must be self-contained (as <see cref="ModelLoader.Load"/> returns it) or its external tensors deferred by the active <see cref="ExternalDataScope"/>.</remarks>
    /// <exception cref="QuantizeException">QNT1006 when the file (or its data file) cannot be written.</exception>
    public static void Save(ModelProto model, string path) => Save(model, path, InlineSizeLimit);

    /// <summary>As <see cref="Save(ModelProto, string)"/>, with the size above which external data is used (tests force it low).</summary>
    internal static void Save(ModelProto model, string path, long inlineSizeLimit)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(inlineSizeLimit);

        string full;
        try
        {
            full = Path.GetFullPath(path);
        }
        catch (Exception e) when (e is ArgumentException or NotSupportedException or PathTooLongException)
        {
            throw new QuantizeException(ErrorCodes.OutputNotWritable, path, $"Output path '{path}' is not a valid path ({e.Message}); choose another output path.", e);
        }

        string folder = Path.GetDirectoryName(full) ?? full;
        if (!Directory.Exists(folder))
        {
            throw new QuantizeException(ErrorCodes.OutputNotWritable, path,
                $"Cannot write '{path}': its folder '{folder}' does not exist; create the folder or choose another output path.");
        }

        var scope = ExternalDataScope.Current;
        foreach (var (tensor, _) in ModelTensors.All(model))
        {
            if (ExternalDataScope.IsExternal(tensor) && scope is null)
            {
                throw new ArgumentException(
                    $"Tensor '{tensor.Name}' still refers to external data; load models with ModelLoader.Load, which inlines it, before saving.", nameof(model));
            }
        }

        string dataFileName = Path.GetFileName(full) + WorkerProtocol.DataFileSuffix;
        string dataPath = Path.Combine(folder, dataFileName);
        if (scope is not null && scope.IsSourceFile(dataPath))
        {
            throw new QuantizeException(ErrorCodes.OutputNotWritable, path,
                $"Cannot write '{path}': its data file '{dataPath}' would replace the source model's own data file; the source is never overwritten. Choose another output name or folder.");
        }

        var deferred = ModelTensors.All(model).Where(t => ExternalDataScope.IsExternal(t.Tensor)).Select(t => ExternalDataScope.ExternalLength(t.Tensor)).ToList();
        if (scope is not { SourceHadExternalData: true } && SerializedSize(model) + deferred.Sum() <= inlineSizeLimit)
        {
            // One file, as the source was: tensors kept on disk while quantizing (a big single-file model's) are read back into it.
            var inline = deferred.Count > 0 ? Materialized(model, scope!) : model;
            Commit(WriteTemp(full, path, stream => inline.WriteTo(stream)), full, path);
            DeleteStale(dataPath);
            return;
        }

        // Large tensors go to the data file: deferred ones are copied from disk in chunks, never all in memory.
        var external = model.Clone();
        var moved = new List<(TensorProto Tensor, TensorProto Source, long Offset, long Length)>();
        long end = 0;
        foreach (var (tensor, site) in ModelTensors.All(external))
        {
            bool isDeferred = ExternalDataScope.IsExternal(tensor);
            if (isDeferred || ((site is TensorSite.Initializer or TensorSite.Attribute) && tensor.HasRawData && tensor.RawData.Length >= ExternalTensorMinBytes))
            {
                long offset = Align(end);
                long length = isDeferred ? ExternalDataScope.ExternalLength(tensor) : tensor.RawData.Length;
                moved.Add((tensor, tensor.Clone(), offset, length));
                end = offset + length;
            }
        }

        foreach (var (tensor, _, offset, length) in moved)
        {
            tensor.ClearRawData();
            tensor.ExternalData.Clear();
            tensor.ExternalData.Add(new StringStringEntryProto { Key = "location", Value = dataFileName });
            tensor.ExternalData.Add(new StringStringEntryProto { Key = "offset", Value = offset.ToString(CultureInfo.InvariantCulture) });
            tensor.ExternalData.Add(new StringStringEntryProto { Key = "length", Value = length.ToString(CultureInfo.InvariantCulture) });
            tensor.DataLocation = DataLocation.External;
        }

        long remaining = SerializedSize(external);
        if (remaining > inlineSizeLimit)
        {
            throw new QuantizeException(ErrorCodes.OutputNotWritable, path,
                $"Cannot write '{path}': even with its large tensors moved to '{dataFileName}' the model is {remaining} bytes, over protobuf's limit of {inlineSizeLimit}; " +
                "store large tensors in raw_data (not float_data/int64_data) or reduce the model.");
        }

        string dataTemp = WriteTemp(dataPath, path, stream =>
        {
            long position = 0;
            var padding = new byte[ExternalDataAlignment];
            foreach (var (_, source, offset, length) in moved)
            {
                stream.Write(padding, 0, (int)(offset - position));
                if (ExternalDataScope.IsExternal(source))
                {
                    scope!.CopyTo(source, stream);
                }
                else
                {
                    stream.Write(source.RawData.Span);
                }

                position = offset + length;
            }
        });
        string modelTemp;
        try
        {
            modelTemp = WriteTemp(full, path, stream => external.WriteTo(stream));
        }
        catch
        {
            TryDelete(dataTemp);
            throw;
        }

        // The old model steps aside first: a run killed between the renames leaves no model (the next build
        // runs again), never a model beside a data file that belongs to another model. A failed data write puts it back.
        string? previous = null;
        try
        {
            if (File.Exists(full))
            {
                previous = TempNames.Beside(full, ".old");
                File.Move(full, previous);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            TryDelete(dataTemp);
            TryDelete(modelTemp);
            throw new QuantizeException(ErrorCodes.OutputNotWritable, path,
                $"Cannot replace '{full}' ({e.Message}); check that no other program holds the file.", e);
        }

        try
        {
            Commit(dataTemp, dataPath, path);
        }
        catch
        {
            TryDelete(modelTemp);
            if (previous is not null)
            {
                File.Move(previous, full);
            }

            throw;
        }

        Commit(modelTemp, full, path);
        if (previous is not null)
        {
            TryDelete(previous);
        }
    }

    /// <summary>A copy of <paramref name="model"/> whose deferred tensors hold their bytes inline.</summary>
    private static ModelProto Materialized(ModelProto model, ExternalDataScope scope)
    {
        var copy = model.Clone();
        foreach (var (tensor, _) in ModelTensors.All(copy))
        {
            if (ExternalDataScope.IsExternal(tensor))
            {
                var bytes = new byte[ExternalDataScope.ExternalLength(tensor)];
                scope.Read(tensor, bytes);
                tensor.ExternalData.Clear();
                tensor.ClearDataLocation();
                tensor.RawData = UnsafeByteOperations.UnsafeWrap(bytes);
            }
        }

        return copy;
    }

    private static long Align(long offset) => (offset + ExternalDataAlignment - 1) / ExternalDataAlignment * ExternalDataAlignment;

    /// <summary>The serialized size of <paramref name="model"/>, or a number over 2 GB when it is that large.</summary>
    private static long SerializedSize(ModelProto model)
    {
        long payload = 0;
        foreach (var (tensor, _) in ModelTensors.All(model))
        {
            payload += tensor.RawData.Length
                + (4L * tensor.FloatData.Count) + (4L * tensor.Int32Data.Count) + (8L * tensor.Int64Data.Count)
                + (8L * tensor.DoubleData.Count) + (8L * tensor.Uint64Data.Count);
            foreach (var s in tensor.StringData)
            {
                payload += s.Length;
            }
        }

        return payload > int.MaxValue - SizeHeadroom ? payload + SizeHeadroom : model.CalculateSize();
    }

    /// <summary>Writes a temporary file beside <paramref name="target"/> and flushes it to disk; returns its path.</summary>
    private static string WriteTemp(string target, string pathForErrors, Action<Stream> write)
    {
        string temp = TempNames.Beside(target, ".tmp");
        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16))
            {
                write(stream);
                stream.Flush(flushToDisk: true);
            }

            return temp;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            TryDelete(temp);
            throw new QuantizeException(ErrorCodes.OutputNotWritable, pathForErrors,
                $"Cannot write '{target}' ({e.Message}); check that the folder is writable, the disk has space and no other program holds the file.", e);
        }
        catch
        {
            TryDelete(temp);
            throw;
        }
    }

    /// <summary>Moves a finished temporary file over <paramref name="target"/>.</summary>
    private static void Commit(string temp, string target, string pathForErrors)
    {
        try
        {
            File.Move(temp, target, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            TryDelete(temp);
            throw new QuantizeException(ErrorCodes.OutputNotWritable, pathForErrors,
                $"Cannot write '{target}' ({e.Message}); check that the folder is writable, the disk has space and no other program holds the file.", e);
        }
    }

    /// <summary>A data file of an earlier, external output of the same path is removed once the new inline model is in place.</summary>
    private static void DeleteStale(string dataPath)
    {
        if (File.Exists(dataPath))
        {
            TryDelete(dataPath);
        }
    }

    private static void TryDelete(string file)
    {
        try
        {
            File.Delete(file);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Best effort: the original error matters more than a leftover temp file.
        }
    }
}
