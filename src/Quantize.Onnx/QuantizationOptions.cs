using System.Globalization;
using Quantize.Onnx.Hardware;
using Quantize.Onnx.Quantization;
using Quantize.Onnx.Samples.Images;
using Quantize.Onnx.Validation;

namespace Quantize.Onnx;

/// <summary>Calibration method for activation ranges.</summary>
public enum CalibrationMethod
{
    /// <summary>The observed minimum and maximum (reduced inside the graph; cheapest).</summary>
    MinMax,

    /// <summary>Keeps <see cref="QuantizationOptions.CalibrationPercentile"/> % of the values, dropping the most extreme rest, half on each side (histogram).</summary>
    Percentile,

    /// <summary>The window around zero that minimises the KL divergence between the histogram and its 8-bit quantization.</summary>
    Entropy,

    /// <summary>The range that minimises the quantization mean squared error as the consumers see it (histogram).</summary>
    Mse,
}

/// <summary>How activations are quantized.</summary>
public enum QuantizationMode
{
    /// <summary>Ranges calibrated ahead of time on sample inputs; QDQ form fused into QLinear* kernels.</summary>
    Static,

    /// <summary>No calibration: int8 MatMul/Gemm weights, activations quantized at run time (DynamicQuantizeMatMul).</summary>
    Dynamic,

    /// <summary>
    /// No integer quantization: every float weight stored as FLOAT16 behind a Cast (half the size), graph inputs
    /// and outputs FP32. ONNX Runtime folds the Casts on load, so CPU math and speed stay FP32.
    /// </summary>
    Fp16,

    /// <summary>
    /// Weight-only 4-bit: MatMul/Gemm with a constant [K, N] weight become com.microsoft MatMulNBits (4-bit
    /// weights in blocks of <see cref="QuantizationOptions.BlockSize"/> along K, one scale per block);
    /// activations and every other op stay float, no calibration. For memory-bound LLM-style decoding.
    /// </summary>
    Weight4,
}

/// <summary>Everything a user can choose about one static quantization. Defaults follow what runs fast on ORT CPU.</summary>
public sealed record QuantizationOptions
{
    /// <summary>Static (calibrated, the default) or dynamic (no calibration data; MatMul/Gemm only).</summary>
    public QuantizationMode Mode { get; init; } = QuantizationMode.Static;

    /// <summary>Weights get one scale per output channel (needs opset 13; older models are upgraded).</summary>
    public bool PerChannel { get; init; } = true;

    /// <summary>Activations: uint8 asymmetric fuses best on x86 (int8 activations leave many DQ nodes unfused).</summary>
    public QuantType ActivationType { get; init; } = QuantType.UInt8;

    /// <summary>Weights: int8 symmetric.</summary>
    public QuantType WeightType { get; init; } = QuantType.Int8;

    public CalibrationMethod CalibrationMethod { get; init; } = CalibrationMethod.MinMax;

    /// <summary>For <see cref="CalibrationMethod.Percentile"/>: the share of values the range keeps, in % (half of the rest is dropped on each side).</summary>
    public double CalibrationPercentile { get; init; } = 99.999;

    /// <summary>Activation grids symmetric around zero (zero point 128 for uint8) instead of fitted to the range.</summary>
    public bool SymmetricActivations { get; init; }

    /// <summary>
    /// Cut an activation range where every consumer saturates anyway (Relu below 0, Clip and
    /// HardSigmoid outside their flat ends, hard-swish below −3): exact, and the grid gets finer.
    /// </summary>
    public bool SaturationAwareRanges { get; init; } = true;

    /// <summary>
    /// 7-bit weights ([−63, 63]) for x86 CPUs without VNNI, whose u8×s8 multiply-add instructions
    /// (vpmaddubsw) saturate 16-bit sums of two 8-bit products.
    /// </summary>
    public bool ReduceRange { get; init; }

    /// <summary>
    /// The CPUs the model will run on. The recipe is chosen so that the model is right on every one: with
    /// <see cref="QuantizeTarget.X64"/> (any x86-64, VNNI or not) int8 weights are saturation-safe (see
    /// <see cref="SaturationSafeWeights"/>). Default: portable, x64 and arm64.
    /// </summary>
    public IReadOnlyList<QuantizeTarget> Targets { get; init; } = QuantizeTargets.Portable;

    /// <summary>
    /// int8 weights for u8×s8 kernels get, per channel, a scale at which the two largest magnitudes sum to at most 128,
    /// so x86 CPUs without VNNI (vpmaddubsw: two products summed in a saturating int16) compute the exact class's bits.
    /// A channel whose largest weight stands out keeps nearly 8 bits; an even one gets 7 (as <see cref="ReduceRange"/>).
    /// </summary>
    public bool SaturationSafeWeights => WeightType == QuantType.Int8 && Targets.Contains(QuantizeTarget.X64);

    /// <summary>How nodes that stay float (excluded, tuned float, or without an integer kernel) store their weights.</summary>
    public FloatPrecision FloatPrecision { get; init; } = FloatPrecision.Fp32;

    /// <summary>Nodes (by name) that stay float.</summary>
    public IReadOnlySet<string> ExcludedNodes { get; init; } = new HashSet<string>();

    /// <summary>Op types that stay float.</summary>
    public IReadOnlySet<string> ExcludedOpTypes { get; init; } = new HashSet<string>();

    /// <summary>Whether the user (or the tuner) keeps <paramref name="node"/> float, by name or by op type.</summary>
    internal bool Excludes(Model.Proto.NodeProto node) => ExcludedNodes.Contains(node.Name) || ExcludedOpTypes.Contains(node.OpType);

    /// <summary>These options with <paramref name="nodes"/> kept float too (the tuner's float sets).</summary>
    internal QuantizationOptions WithFloatNodes(IEnumerable<string> nodes) =>
        this with { ExcludedNodes = ExcludedNodes.Union(nodes, StringComparer.Ordinal).ToHashSet(StringComparer.Ordinal) };

    /// <summary>Use at most this many calibration samples (in folder order, or shuffled by <see cref="CalibrationShuffleSeed"/>).</summary>
    public int? MaxCalibrationSamples { get; init; }

    /// <summary>Shuffle the calibration samples with this seed before <see cref="MaxCalibrationSamples"/> (deterministic); null: folder order.</summary>
    public int? CalibrationShuffleSeed { get; init; }

    /// <summary>How image samples (calibration and validation) become input tensors; null: everything from the model's input shape.</summary>
    public ImageOptions? Images { get; init; }

    /// <summary>
    /// Leave out ops whose integer kernels are measured slower than float on ORT CPU (QLinearMul,
    /// depthwise convolutions larger than 3×3). False quantizes every supported op.
    /// </summary>
    public bool FastKernelsOnly { get; init; } = true;

    /// <summary>
    /// Cross-layer equalization of Conv → Relu/LeakyRelu → Conv pairs before calibration (exact in
    /// float; evens out activation channel ranges so per-tensor activation scales lose less).
    /// </summary>
    public bool Equalize { get; init; } = true;

    /// <summary>
    /// Fold the mean per-channel offset of INT8 outputs (vs FP32, on calibration samples) into the bias
    /// of the quantized Conv/Gemm that writes each graph output.
    /// </summary>
    public bool BiasCorrection { get; init; } = true;

    /// <summary>Ship the FP32 model (with a warning) when the INT8 model is not worth it: not faster, not smaller, or run by no integer kernel.</summary>
    public bool KeepFloatIfSlower { get; init; } = true;

    /// <summary>Timed runs per model when comparing FP32 and INT8 latency (interleaved, median).</summary>
    public int LatencyRuns { get; init; } = 15;

    /// <summary>
    /// Intra-op threads the application's ORT session will use, at which INT8 vs FP32 is decided (also measured at 1
    /// thread for the report). 0: ORT's default, one per core, as most applications run. Not a setting: it changes what
    /// is measured, never the model.
    /// </summary>
    public int AppThreads { get; init; }

    /// <summary>Calibration samples used to measure INT8-vs-FP32 fidelity.</summary>
    public int FidelitySamples { get; init; } = 8;

    /// <summary>Weight4 mode: consecutive weights along K sharing one scale (a power of two, 16 to 256; ORT's tool defaults to 32).</summary>
    public int BlockSize { get; init; } = 32;

    /// <summary>
    /// Weight4 mode: MatMulNBits' accuracy_level, the least accurate compute ORT may use: 0 (unset: float compute
    /// on CPU), 1 fp32, 2 fp16, 3 bf16, 4 int8 (activations quantized per block inside the kernel).
    /// </summary>
    public int AccuracyLevel { get; init; }

    /// <summary>Weight4 mode: a zero point per block (uint4, packed two per byte) instead of the symmetric grid around 8.</summary>
    public bool Weight4Asymmetric { get; init; }

    /// <summary>
    /// Static mode: every graph input ships as uint8 image bytes [0, 255], the image preprocessing of <see cref="Images"/>
    /// (scale, mean, std) built into the graph. Validation and measurement feed the float samples as always.
    /// </summary>
    public bool UInt8Inputs { get; init; }

    /// <summary>
    /// Static mode: every graph output ships as the uint8 output of its final QuantizeLinear (the DequantizeLinear after it
    /// dropped), its scale and zero point in the model's metadata (<c>quantize.output.&lt;name&gt;.scale</c> / <c>.zero_point</c>).
    /// Measurement reads the float outputs as always.
    /// </summary>
    public bool UInt8Outputs { get; init; }

    /// <summary>The accuracy gate (validation samples, checks, minimum speed-up); null: none. Not part of the settings: it decides what ships, not how.</summary>
    public ValidationOptions? Validation { get; init; }

    /// <summary>Accuracy-driven tuning and its lock file; null: none. Not part of the settings (the lock file records what it chose).</summary>
    public Tuning.TuningOptions? Tuning { get; init; }

    /// <summary>
    /// External tensors of at least this many bytes stay on disk while quantizing (models over 2 GB; see
    /// <see cref="Model.ExternalDataScope"/>). Internal: it changes memory use, never the result, so it is
    /// not a user setting and not in provenance; tests lower it to run the large-model path on small models.
    /// </summary>
    internal long DeferTensorMinBytes { get; init; } = Model.ExternalDataScope.DefaultDeferMinBytes;

    /// <summary>At most this many bytes of external tensors are read into memory (internal, like <see cref="DeferTensorMinBytes"/>).</summary>
    internal long InMemoryTensorBudgetBytes { get; init; } = Model.ExternalDataScope.DefaultInMemoryBudgetBytes;

    /// <summary>The deferral size the budget may lower <see cref="DeferTensorMinBytes"/> to, at the lowest (internal).</summary>
    internal long DeferTensorFloorBytes { get; init; } = Model.ExternalDataScope.DefaultDeferFloorBytes;

    /// <summary>Up to this many bytes of deferred source tensors ORT sessions pre-pack weights (internal).</summary>
    internal long PrepackMaxBytes { get; init; } = Model.ExternalDataScope.DefaultPrepackMaxBytes;

    /// <summary>Most intra-op threads an app may declare; latency is measured at no more than this machine's cores.</summary>
    public const int MaxAppThreads = 1024;

    /// <summary>
    /// Rejects values no run can use (QNT1201 and the option's own codes) before anything is read. Block size and
    /// accuracy level are checked in every mode: a bad value in a shared project setting should not wait for a weight4 model.
    /// </summary>
    internal void Check()
    {
        if (AppThreads is < 0 or > MaxAppThreads)
        {
            throw new QuantizeException(ErrorCodes.InvalidOption, null,
                $"The app's thread count must be 0 (ORT's default, one per core) to {MaxAppThreads}, got {AppThreads}. Set --app-threads (QuantizeAppThreads) to the intra-op threads your application's session uses.");
        }

        if (CalibrationMethod == CalibrationMethod.Percentile && !(CalibrationPercentile is > 50 and <= 100))
        {
            throw new QuantizeException(ErrorCodes.InvalidCalibrationPercentile, null,
                $"The calibration percentile must be above 50 and at most 100 (the share of values kept, in %), got {CalibrationPercentile.ToString(CultureInfo.InvariantCulture)}. Typical values: 99.9 to 99.999.");
        }

        if (Mode == QuantizationMode.Dynamic && ActivationType != QuantType.UInt8)
        {
            throw new QuantizeException(ErrorCodes.DynamicActivationType, null,
                "Dynamic quantization quantizes activations to uint8 at run time (DynamicQuantizeLinear has no int8 form); remove --activation-type int8 (QuantizeActivationType) or use static mode.");
        }

        if (UInt8Outputs && Mode != QuantizationMode.Static)
        {
            throw new QuantizeException(ErrorCodes.UInt8InputsNeedStatic, null,
                $"uint8 outputs (--uint8-outputs, QuantizeUInt8Outputs) need static mode, whose calibrated output grids the bytes are on; the mode is {Mode.ToString().ToLowerInvariant()}. Give calibration samples (static mode), or drop the option.");
        }

        if (UInt8Inputs && Mode != QuantizationMode.Static)
        {
            throw new QuantizeException(ErrorCodes.UInt8InputsNeedStatic, null,
                $"uint8 inputs (--uint8-inputs, QuantizeUInt8Inputs) need static mode, whose calibrated input grid the bytes feed; the mode is {Mode.ToString().ToLowerInvariant()}. Give calibration samples (static mode), or drop the option.");
        }

        if (!Block4Quantizer.IsSupportedBlockSize(BlockSize))
        {
            throw new QuantizeException(ErrorCodes.InvalidBlockSize, null,
                $"The 4-bit block size must be a power of two from 16 to 256 (16, 32, 64, 128 or 256; ONNX Runtime's MatMulNBits kernels support no others), got {BlockSize}. Set --block-size (QuantizeBlockSize); 32 is the default.");
        }

        if (AccuracyLevel is < 0 or > 4)
        {
            throw new QuantizeException(ErrorCodes.InvalidAccuracyLevel, null,
                $"The MatMulNBits accuracy level must be 0 (unset), 1 (fp32), 2 (fp16), 3 (bf16) or 4 (int8 compute), got {AccuracyLevel}. Set --accuracy-level (QuantizeAccuracyLevel).");
        }
    }

    /// <summary>The settings as stable key/value pairs, for provenance and reports.</summary>
    public IReadOnlyDictionary<string, string> ToSettings()
    {
        var settings = CoreSettings();
        settings["calibration-shuffle-seed"] = CalibrationShuffleSeed?.ToString(CultureInfo.InvariantCulture) ?? "";
        foreach (var (key, value) in (Images ?? new ImageOptions()).ToSettings())
        {
            settings[key] = value;
        }

        // Only in weight4 mode, so the settings (and lock files) of the other modes stay as they were.
        if (Mode == QuantizationMode.Weight4)
        {
            settings["block-size"] = BlockSize.ToString(CultureInfo.InvariantCulture);
            settings["accuracy-level"] = AccuracyLevel.ToString(CultureInfo.InvariantCulture);
            settings["weight4-asymmetric"] = Weight4Asymmetric ? "true" : "false";
        }

        // Only when on, so the settings (and bytes) of every other model stay as they were.
        if (UInt8Inputs)
        {
            settings["uint8-inputs"] = "true";
        }

        if (UInt8Outputs)
        {
            settings["uint8-outputs"] = "true";
        }

        return settings;
    }

    private SortedDictionary<string, string> CoreSettings() => new(StringComparer.Ordinal)
    {
        ["activation-type"] = ActivationType.ToString().ToLowerInvariant(),
        ["bias-correction"] = BiasCorrection ? "true" : "false",
        ["calibration-method"] = CalibrationMethod.ToString().ToLowerInvariant(),
        ["calibration-percentile"] = CalibrationMethod == CalibrationMethod.Percentile ? CalibrationPercentile.ToString("R", CultureInfo.InvariantCulture) : "",
        ["reduce-range"] = ReduceRange ? "true" : "false",
        ["float-precision"] = FloatPrecision.ToString().ToLowerInvariant(),
        ["saturation-aware-ranges"] = SaturationAwareRanges ? "true" : "false",
        ["symmetric-activations"] = SymmetricActivations ? "true" : "false",
        ["targets"] = QuantizeTargets.Text(Targets),
        ["equalize"] = Equalize ? "true" : "false",
        ["exclude-nodes"] = string.Join(";", ExcludedNodes.Order(StringComparer.Ordinal)),
        ["exclude-op-types"] = string.Join(";", ExcludedOpTypes.Order(StringComparer.Ordinal)),
        ["fast-kernels-only"] = FastKernelsOnly ? "true" : "false",
        ["mode"] = Mode.ToString().ToLowerInvariant(),
        ["max-calibration-samples"] = MaxCalibrationSamples?.ToString(CultureInfo.InvariantCulture) ?? "",
        ["per-channel"] = PerChannel ? "true" : "false",
        ["weight-type"] = WeightType.ToString().ToLowerInvariant(),
    };
}
