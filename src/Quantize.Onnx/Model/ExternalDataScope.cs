using System.Globalization;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using Microsoft.Win32.SafeHandles;
using Quantize.Onnx.Model.Proto;
using DataLocation = Quantize.Onnx.Model.Proto.TensorProto.Types.DataLocation;

namespace Quantize.Onnx.Model;

/// <summary>
/// Keeps large tensors of one quantization run on disk instead of in managed memory (models over 2 GB).
/// While a scope is active (<see cref="Current"/>), tensors of at least <see cref="DeferMinBytes"/> stay
/// EXTERNAL: the loader leaves the source's big tensors in its data file, <see cref="TensorValues"/>
/// writes big new tensors (quantized weights, rescaled weights) to a spill file, and reads either on
/// demand. All of them live in one work folder, so a serialized model (a few MB of graph) names them by
/// relative locations and ONNX Runtime resolves them there (<see cref="OrtSessions"/>).
/// </summary>
/// <remarks>
/// The source's data files enter the work folder as hard links (a copy when the file system has none):
/// ORT rejects external data outside the model's folder, symbolic links included. The folder sits beside
/// the output (same file system as the build, usually the model's too) and is deleted with the scope.
/// </remarks>
internal sealed class ExternalDataScope : IDisposable
{
    /// <summary>Tensors from this size up are deferred unless the options say otherwise.</summary>
    public const long DefaultDeferMinBytes = 32L << 20;

    /// <summary>
    /// At most this many bytes of a model's external tensors are read into memory: a model made of many tensors
    /// below the deferral size (an LLM with 2048-wide layers: 16 MiB each) gets a lower deferral size, so its
    /// larger tensors stay on disk too (<see cref="FitInMemoryBudget"/>).
    /// </summary>
    public const long DefaultInMemoryBudgetBytes = 512L << 20;

    /// <summary>The deferral size is never lowered below this: smaller tensors are read into memory whatever their total.</summary>
    public const long DefaultDeferFloorBytes = 1L << 20;

    /// <summary>
    /// Up to this many bytes of deferred source tensors, ORT sessions keep MLAS pre-packing (a packed, anonymous copy
    /// of every constant MatMul/Gemm weight): latencies are then those of an application's session. Without it a
    /// 768 MiB MLP ran FP32 3.4× and INT8 1.9× slower, which overstated the INT8 speed-up (5.3× instead of 2.9×).
    /// </summary>
    public const long DefaultPrepackMaxBytes = 1L << 30;

    private const string SpillFileName = "spill.data";

    /// <summary>Held open (exclusively) by the run that owns the folder; see <see cref="SweepAbandoned"/>.</summary>
    private const string OwnerFileName = "owner.lock";

    /// <summary>How old an unowned work folder must be before a later run deletes it.</summary>
    internal static readonly TimeSpan AbandonedAfter = TimeSpan.FromMinutes(10);

    private static readonly AsyncLocal<ExternalDataScope?> Active = new();

    private readonly ExternalDataScope? _outer;
    private readonly string _folder;
    private readonly object _gate = new();
    private readonly Dictionary<string, string> _linked = new(StringComparer.FromComparison(RealPath.Comparison));
    private readonly Dictionary<string, SafeFileHandle> _readers = new(StringComparer.Ordinal);
    private readonly HashSet<string> _sourceFiles = new(StringComparer.FromComparison(RealPath.Comparison));
    private SafeFileHandle? _spill;
    private long _spillEnd;
    private bool _created;
    private FileStream? _owner;
    private int _optimized;

    private readonly long _inMemoryBudget;
    private readonly long _deferFloor;
    private readonly long _prepackMax;

    private ExternalDataScope(string folder, long deferMinBytes, long inMemoryBudget, long deferFloor, long prepackMax)
    {
        _folder = folder;
        DeferMinBytes = deferMinBytes;
        _inMemoryBudget = inMemoryBudget;
        _deferFloor = deferFloor;
        _prepackMax = prepackMax;
        _outer = Active.Value;
        Active.Value = this;
    }

    /// <summary>The scope of the run on this async flow, or null (models are then fully inlined, as before).</summary>
    public static ExternalDataScope? Current => Active.Value;

    /// <summary>Starts a scope whose work folder is a hidden folder beside <paramref name="outputPath"/> (created on first use).</summary>
    /// <param name="inMemoryBudget">See <see cref="DefaultInMemoryBudgetBytes"/>.</param>
    /// <param name="deferFloor">See <see cref="DefaultDeferFloorBytes"/>.</param>
    /// <param name="prepackMax">See <see cref="DefaultPrepackMaxBytes"/>.</param>
    public static ExternalDataScope Begin(
        string outputPath, long deferMinBytes, long inMemoryBudget = DefaultInMemoryBudgetBytes, long deferFloor = DefaultDeferFloorBytes, long prepackMax = DefaultPrepackMaxBytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(deferMinBytes);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(deferFloor);
        string full;
        try
        {
            full = Path.GetFullPath(outputPath);
        }
        catch (Exception e) when (e is ArgumentException or NotSupportedException or PathTooLongException)
        {
            full = Path.Combine(Path.GetTempPath(), "quantize-output"); // the writer reports the bad path (QNT1006)
        }

        string folder = Path.Combine(Path.GetDirectoryName(full) ?? ".", $".{Path.GetFileName(full)}.work-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4))}");
        return new ExternalDataScope(folder, deferMinBytes, inMemoryBudget, deferFloor, prepackMax);
    }

    /// <summary>Tensors with at least this many bytes stay on disk (the loader's; lowered by <see cref="FitInMemoryBudget"/>).</summary>
    public long DeferMinBytes { get; private set; }

    /// <summary>
    /// New tensors (quantized, rescaled, FP16 weights) with at least this many bytes go to the spill file: the deferral
    /// size, or an eighth of it once source tensors are on disk — their int8 and 4-bit copies then go to disk too
    /// instead of piling up in memory in their place (1,152 MiB of 64 MiB weights: 16 MiB int8 copies held 659 MiB live).
    /// </summary>
    public long SpillMinBytes => SourceDeferredBytes > 0 ? Math.Max(DeferMinBytes / 8, 1) : DeferMinBytes;

    /// <summary>
    /// Given the byte sizes of the source's tensors (external ones as the graph declares them, before any is read; inline
    /// initializers), lowers <see cref="DeferMinBytes"/> until those kept in memory add up to at most the budget,
    /// deferring the largest first; never below the floor.
    /// </summary>
    public void FitInMemoryBudget(IEnumerable<long> tensorBytes)
    {
        var inMemory = tensorBytes.Where(b => b < DeferMinBytes).OrderDescending().ToList();
        var total = inMemory.Sum();
        var threshold = DeferMinBytes;
        foreach (var bytes in inMemory)
        {
            if (total <= _inMemoryBudget || bytes < _deferFloor)
            {
                break;
            }

            threshold = bytes;
            total -= bytes;
        }

        DeferMinBytes = threshold;
    }

    /// <summary>The folder every deferred tensor's location is relative to (what ORT gets as the external data folder).</summary>
    public string Folder => _folder;

    /// <summary>The loaded source model stored tensors in external data files (its output gets one too).</summary>
    public bool SourceHadExternalData => _sourceFiles.Count > 0;

    /// <summary>Any tensor is deferred: sessions must be told where to find the data.</summary>
    public bool HasDeferredTensors { get; private set; }

    /// <summary>Bytes of the source model's tensors kept on disk (left in its data files or spilled at load).</summary>
    public long SourceDeferredBytes { get; private set; }

    /// <summary>Whether ORT sessions may pre-pack weights (<see cref="DefaultPrepackMaxBytes"/>).</summary>
    public bool AllowsPrepacking => SourceDeferredBytes <= _prepackMax;

    /// <summary>The (resolved) external data files the source model read, in no particular order.</summary>
    public IReadOnlyList<string> SourceFiles
    {
        get
        {
            lock (_gate)
            {
                return [.. _sourceFiles];
            }
        }
    }

    /// <summary>Records a (resolved) data file of the source model: the output must never replace it.</summary>
    public void NoteSourceFile(string dataPath)
    {
        lock (_gate)
        {
            _sourceFiles.Add(dataPath);
        }
    }

    /// <summary>Whether <paramref name="path"/> (resolved through links) is a data file of the source model.</summary>
    public bool IsSourceFile(string path)
    {
        string real;
        try
        {
            real = File.Exists(path) ? RealPath.Resolve(path) : Path.GetFullPath(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            real = Path.GetFullPath(path);
        }

        lock (_gate)
        {
            return _sourceFiles.Contains(real);
        }
    }

    /// <summary>
    /// Makes a tensor of the source (already checked by <see cref="ExternalDataResolver"/>) refer to
    /// <paramref name="dataPath"/> through the work folder, without reading it.
    /// </summary>
    public void Defer(TensorProto tensor, string dataPath, long offset, long length)
    {
        string name;
        lock (_gate)
        {
            if (!_linked.TryGetValue(dataPath, out name!))
            {
                name = $"source-{_linked.Count}.data";
                string target = name;
                Guard(() => LinkOrCopy(dataPath, Path.Combine(EnsureFolder(), target)));
                _linked.Add(dataPath, name);
            }

            HasDeferredTensors = true;
            SourceDeferredBytes += length;
        }

        SetLocation(tensor, name, offset, length);
    }

    /// <summary>Writes <paramref name="bytes"/> to the spill file and makes <paramref name="tensor"/> refer to them.</summary>
    /// <param name="ofSource">The tensor is the source model's (a single-file model's initializer), not one a pass created.</param>
    public void Spill(TensorProto tensor, ReadOnlySpan<byte> bytes, bool ofSource = false)
    {
        long offset;
        lock (_gate)
        {
            offset = Align(_spillEnd);
            try
            {
                _spill ??= File.OpenHandle(Path.Combine(EnsureFolder(), SpillFileName), _spillEnd == 0 ? FileMode.CreateNew : FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite);
                RandomAccess.Write(_spill, bytes, offset);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw NotWritable(e);
            }

            _spillEnd = offset + bytes.Length;
            HasDeferredTensors = true;
            SourceDeferredBytes += ofSource ? bytes.Length : 0;
        }

        tensor.ClearRawData();
        SetLocation(tensor, SpillFileName, offset, bytes.Length);
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

    /// <summary>A fresh file name in the work folder for ORT to write an optimized model and its data into.</summary>
    public string NewWorkFile(string stem)
    {
        lock (_gate)
        {
            string folder = "";
            Guard(() => folder = EnsureFolder());
            return Path.Combine(folder, $"{stem}-{_optimized++}");
        }
    }

    /// <summary>Reads a deferred tensor's bytes into <paramref name="destination"/> (its exact length).</summary>
    public void Read(TensorProto tensor, Span<byte> destination)
    {
        var (location, offset, length) = LocationOf(tensor);
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
        var (location, offset, length) = LocationOf(tensor);
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

    /// <summary>Whether <paramref name="tensor"/> is EXTERNAL (deferred by a scope).</summary>
    public static bool IsExternal(TensorProto tensor) => tensor.HasDataLocation && tensor.DataLocation == DataLocation.External;

    /// <summary>The number of bytes a deferred tensor stores on disk.</summary>
    public static long ExternalLength(TensorProto tensor) => LocationOf(tensor).Length;

    /// <summary>Bytes of all tensors of <paramref name="model"/> that are on disk (a model's size is its serialized bytes plus these).</summary>
    public static long ExternalBytes(ModelProto model) =>
        ModelTensors.All(model).Where(t => IsExternal(t.Tensor)).Sum(t => ExternalLength(t.Tensor));

    public void Dispose()
    {
        Active.Value = _outer;
        lock (_gate)
        {
            _spill?.Dispose();
            foreach (var reader in _readers.Values)
            {
                reader.Dispose();
            }

            _readers.Clear();
            _owner?.Dispose();
            if (_created)
            {
                try
                {
                    Directory.Delete(_folder, recursive: true);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    // Best effort: a leftover work folder is only disk space; the run's result matters more.
                }
            }
        }
    }

    private static (string Location, long Offset, long Length) LocationOf(TensorProto tensor)
    {
        var (location, offset, written) = ExternalDataResolver.Entries(tensor, (_, value) => long.Parse(value, CultureInfo.InvariantCulture));
        long length = written ?? -1;
        if (length < 0 && TensorElementInfo.TryGetByteSize(tensor, out long size))
        {
            length = size; // ORT's saved models may leave the length to the shape
        }

        if (location is null || length < 0)
        {
            // Only the loader's and the spill's tensors are deferred, and both write all three keys.
            throw new InvalidOperationException($"Tensor '{tensor.Name}' is external but has no location or length.");
        }

        return (location, offset, length);
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
                handle = File.OpenHandle(Path.Combine(_folder, location), FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
                _readers.Add(location, handle);
            }

            return handle;
        }
    }

    private static void SetLocation(TensorProto tensor, string location, long offset, long length)
    {
        tensor.ExternalData.Clear();
        tensor.ExternalData.Add(new StringStringEntryProto { Key = "location", Value = location });
        tensor.ExternalData.Add(new StringStringEntryProto { Key = "offset", Value = offset.ToString(CultureInfo.InvariantCulture) });
        tensor.ExternalData.Add(new StringStringEntryProto { Key = "length", Value = length.ToString(CultureInfo.InvariantCulture) });
        tensor.DataLocation = DataLocation.External;
    }

    private void Guard(Action action)
    {
        try
        {
            action();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw NotWritable(e);
        }
    }

    private QuantizeException NotWritable(Exception e) =>
        new(ErrorCodes.WorkFolderNotWritable, _folder,
            $"Cannot write the work folder '{_folder}' where the quantizer keeps a large model's tensors on disk ({e.Message}); " +
            "free disk space beside the output (about the model's size) or choose an output folder on a writable disk.", e);

    private string EnsureFolder()
    {
        if (!_created)
        {
            Directory.CreateDirectory(_folder);
            _created = true;
            _owner = File.Open(Path.Combine(_folder, OwnerFileName), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            SweepAbandoned();
        }

        return _folder;
    }

    /// <summary>
    /// Deletes work folders of earlier runs for the same output that were killed before they could clean up:
    /// a folder is abandoned when nobody holds its owner file (a live run keeps it open exclusively) and it is
    /// older than <see cref="AbandonedAfter"/> (so a run that has created its folder but not yet opened the file is safe).
    /// </summary>
    private void SweepAbandoned()
    {
        // Best effort throughout: a leftover folder costs disk space, a failed sweep must not fail the run.
        string parent = Path.GetDirectoryName(_folder) ?? ".";
        string prefix = Path.GetFileName(_folder)[..^8]; // ".<output>.work-" without this run's 8 hex digits
        List<string> candidates;
        try
        {
            candidates = Directory.EnumerateDirectories(parent, prefix + "*").Where(f => !string.Equals(f, _folder, StringComparison.Ordinal)).ToList();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return;
        }

        foreach (string folder in candidates)
        {
            try
            {
                if (DateTime.UtcNow - Directory.GetLastWriteTimeUtc(folder) < AbandonedAfter)
                {
                    continue;
                }

                using (File.Open(Path.Combine(folder, OwnerFileName), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None))
                {
                }

                Directory.Delete(folder, recursive: true);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // Held by a live run (or not ours to delete): leave it.
            }
        }
    }

    /// <summary>ORT maps page-aligned external data instead of copying it.</summary>
    private static long Align(long offset) => (offset + ModelWriter.ExternalDataAlignment - 1) / ModelWriter.ExternalDataAlignment * ModelWriter.ExternalDataAlignment;

    private static void LinkOrCopy(string source, string link)
    {
        bool linked = OperatingSystem.IsWindows() ? CreateHardLinkW(link, source, IntPtr.Zero) : Link(source, link) == 0;
        if (!linked)
        {
            // Another file system (or no hard links): a copy costs disk and time, not memory.
            File.Copy(source, link);
        }
    }

    [DllImport("libc", EntryPoint = "link", SetLastError = true)]
    private static extern int Link([MarshalAs(UnmanagedType.LPUTF8Str)] string existing, [MarshalAs(UnmanagedType.LPUTF8Str)] string created);

    [DllImport("kernel32", CharSet = CharSet.Unicode, SetLastError = true)]
    [return: MarshalAs(UnmanagedType.Bool)]
    private static extern bool CreateHardLinkW(string created, string existing, IntPtr security);
}
