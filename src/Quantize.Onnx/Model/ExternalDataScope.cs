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
/// The work folder (<see cref="WorkFolder"/>) sits beside the output (same file system as the build, usually the
/// model's too) and is deleted with the scope; its files are <see cref="DeferredTensorFiles"/>.
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

    /// <inheritdoc cref="WorkFolder.AbandonedAfter"/>
    internal static TimeSpan AbandonedAfter => WorkFolder.AbandonedAfter;

    private static readonly AsyncLocal<ExternalDataScope?> Active = new();

    private readonly ExternalDataScope? _outer;
    private readonly WorkFolder _folder;
    private readonly DeferredTensorFiles _files;
    private readonly object _gate = new();
    private readonly Dictionary<string, string> _linked = new(StringComparer.FromComparison(RealPath.Comparison));
    private readonly HashSet<string> _sourceFiles = new(StringComparer.FromComparison(RealPath.Comparison));

    private readonly long _inMemoryBudget;
    private readonly long _deferFloor;
    private readonly long _prepackMax;

    private ExternalDataScope(WorkFolder folder, long deferMinBytes, long inMemoryBudget, long deferFloor, long prepackMax)
    {
        _folder = folder;
        _files = new DeferredTensorFiles(folder);
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
        return new ExternalDataScope(WorkFolder.Beside(outputPath), deferMinBytes, inMemoryBudget, deferFloor, prepackMax);
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
    public string Folder => _folder.FullName;

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
                _folder.LinkFile(dataPath, name);
                _linked.Add(dataPath, name);
            }

            HasDeferredTensors = true;
            SourceDeferredBytes += length;
        }

        ExternalLocation.Set(tensor, name, offset, length);
    }

    /// <summary>Writes <paramref name="bytes"/> to the spill file and makes <paramref name="tensor"/> refer to them.</summary>
    /// <param name="ofSource">The tensor is the source model's (a single-file model's initializer), not one a pass created.</param>
    public void Spill(TensorProto tensor, ReadOnlySpan<byte> bytes, bool ofSource = false)
    {
        _files.Spill(tensor, bytes);
        lock (_gate)
        {
            HasDeferredTensors = true;
            SourceDeferredBytes += ofSource ? bytes.Length : 0;
        }
    }

    /// <inheritdoc cref="DeferredTensorFiles.ReleaseWriter"/>
    public void ReleaseWriter() => _files.ReleaseWriter();

    /// <inheritdoc cref="WorkFolder.NewFile"/>
    public string NewWorkFile(string stem) => _folder.NewFile(stem);

    /// <inheritdoc cref="DeferredTensorFiles.Read"/>
    public void Read(TensorProto tensor, Span<byte> destination) => _files.Read(tensor, destination);

    /// <inheritdoc cref="DeferredTensorFiles.CopyTo"/>
    public void CopyTo(TensorProto tensor, Stream stream) => _files.CopyTo(tensor, stream);

    /// <summary>Whether <paramref name="tensor"/> is EXTERNAL (deferred by a scope).</summary>
    public static bool IsExternal(TensorProto tensor) => tensor.HasDataLocation && tensor.DataLocation == DataLocation.External;

    /// <summary>The number of bytes a deferred tensor stores on disk.</summary>
    public static long ExternalLength(TensorProto tensor) => ExternalLocation.Of(tensor).Length;

    /// <summary>Bytes of all tensors of <paramref name="model"/> that are on disk (a model's size is its serialized bytes plus these).</summary>
    public static long ExternalBytes(ModelProto model) =>
        ModelTensors.All(model).Where(t => IsExternal(t.Tensor)).Sum(t => ExternalLength(t.Tensor));

    public void Dispose()
    {
        Active.Value = _outer;
        _files.Dispose();
        _folder.Dispose();
    }
}
