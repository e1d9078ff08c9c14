namespace Quantize.Common;

internal enum SettingKind { Choice, Boolean, PositiveInteger, PositiveNumber, NonNegativeNumber, Number, List, Checks, Integer, Numbers, PositiveNumbers, ImageSize, Choices }

/// <summary>One setting: its MSBuild name (project property and item metadata alike), its worker switch, its values.</summary>
internal sealed class SettingSpec
{
    public SettingSpec(string name, string? workerSwitch, SettingKind kind, params string[] allowed)
    {
        Name = name;
        WorkerSwitch = workerSwitch;
        Kind = kind;
        Allowed = kind == SettingKind.Boolean ? new[] { "true", "false" } : allowed;
    }

    public string Name { get; }

    /// <summary>Null: the task uses the setting itself and passes nothing.</summary>
    public string? WorkerSwitch { get; }

    public SettingKind Kind { get; }

    /// <summary>The values of a <see cref="SettingKind.Choice"/>, <see cref="SettingKind.Choices"/> or <see cref="SettingKind.Boolean"/>.</summary>
    public string[] Allowed { get; }

    /// <summary>The allowed values in words, for error messages.</summary>
    public string AllowedText => Kind switch
    {
        SettingKind.PositiveInteger => "a whole number greater than 0",
        SettingKind.PositiveNumber => "a number greater than 0 (e.g. 1.5)",
        SettingKind.NonNegativeNumber => "a number, 0 or more (e.g. 0.3)",
        SettingKind.Number => "a number (e.g. 0.3)",
        SettingKind.List => "a ';'-separated list",
        SettingKind.Choices => "a ';'-separated list of " + string.Join(", ", Allowed),
        SettingKind.Checks => "a ';'-separated list of checks " + AccuracyCheckSyntax.Forms + " (e.g. sqnr>=20;drop:psnr<=0.5); " +
            AccuracyCheckSyntax.Metrics + " (in XML write <= as &lt;=)",
        SettingKind.Integer => "a whole number (e.g. 42)",
        SettingKind.Numbers => "one number, or one per channel separated by ';' (e.g. 0.485;0.456;0.406)",
        SettingKind.PositiveNumbers => "one number greater than 0, or one per channel separated by ';' (e.g. 0.229;0.224;0.225)",
        SettingKind.ImageSize => "<width>x<height> in pixels (e.g. 192x48), or one number for a square",
        _ => string.Join(", ", Allowed),
    };
}

/// <summary>
/// Every setting of the build and the worker switch it becomes: one row per setting. The props declare each name, the
/// targets pass each as a project default, and the CLI declares each switch (tests keep the four in step).
/// </summary>
internal static class SettingSpecs
{
    // The settings the task reads itself.
    public const string Mode = "QuantizeMode";
    public const string AccuracyChecks = "QuantizeAccuracyChecks";
    public const string AccuracyMetric = "QuantizeAccuracyMetric";
    public const string MaxAccuracyDrop = "QuantizeMaxAccuracyDrop";
    public const string TuneLocked = "QuantizeTuneLocked";

    public static readonly SettingSpec[] All =
    {
        // auto is resolved to static or dynamic by the task before the worker sees it.
        new SettingSpec(Mode, WorkerSwitches.Mode, SettingKind.Choice, QuantizeModes.Names),
        new SettingSpec("QuantizeCalibrationMethod", WorkerSwitches.CalibrationMethod, SettingKind.Choice, "minmax", "percentile", "entropy", "mse"),
        new SettingSpec("QuantizeCalibrationPercentile", WorkerSwitches.CalibrationPercentile, SettingKind.PositiveNumber),
        new SettingSpec("QuantizeSymmetricActivations", WorkerSwitches.SymmetricActivations, SettingKind.Boolean),
        new SettingSpec("QuantizeSaturationAwareRanges", WorkerSwitches.SaturationAwareRanges, SettingKind.Boolean),
        new SettingSpec("QuantizeReduceRange", WorkerSwitches.ReduceRange, SettingKind.Boolean),
        // The CPUs the model must be right on; empty = the engine's portable x64;arm64 (the targets default it from the RIDs).
        new SettingSpec("QuantizeTargets", WorkerSwitches.Target, SettingKind.Choices, "x64", "x64-vnni", "arm64"),
        new SettingSpec("QuantizeFloatPrecision", WorkerSwitches.FloatPrecision, SettingKind.Choice, "fp32", "fp16"),
        new SettingSpec("QuantizePerChannel", WorkerSwitches.PerChannel, SettingKind.Boolean),
        new SettingSpec("QuantizeActivationType", WorkerSwitches.ActivationType, SettingKind.Choice, "uint8", "int8"),
        new SettingSpec("QuantizeWeightType", WorkerSwitches.WeightType, SettingKind.Choice, "int8", "uint8"),
        new SettingSpec("QuantizeExcludeNodes", WorkerSwitches.ExcludeNodes, SettingKind.List),
        new SettingSpec("QuantizeExcludeOpTypes", WorkerSwitches.ExcludeOpTypes, SettingKind.List),
        new SettingSpec("QuantizeMaxCalibrationSamples", WorkerSwitches.MaxCalibrationSamples, SettingKind.PositiveInteger),
        new SettingSpec("QuantizeFastKernelsOnly", WorkerSwitches.FastKernelsOnly, SettingKind.Boolean),
        new SettingSpec("QuantizeEqualize", WorkerSwitches.Equalize, SettingKind.Boolean),
        new SettingSpec("QuantizeBiasCorrection", WorkerSwitches.BiasCorrection, SettingKind.Boolean),
        new SettingSpec("QuantizeKeepFloatIfSlower", WorkerSwitches.KeepFloatIfSlower, SettingKind.Boolean),
        new SettingSpec("QuantizeAppThreads", WorkerSwitches.AppThreads, SettingKind.Integer),
        new SettingSpec("QuantizeShipFloatModel", null, SettingKind.Boolean),

        // Weight-only 4-bit mode (QuantizeMode=weight4): MatMulNBits block size, accuracy level, zero points.
        new SettingSpec("QuantizeBlockSize", WorkerSwitches.BlockSize, SettingKind.Choice, "16", "32", "64", "128", "256"),
        new SettingSpec("QuantizeAccuracyLevel", WorkerSwitches.AccuracyLevel, SettingKind.Choice, "0", "1", "2", "3", "4"),
        new SettingSpec("QuantizeWeight4Asymmetric", WorkerSwitches.Weight4Asymmetric, SettingKind.Boolean),

        // Static mode: the model takes uint8 image bytes, the image preprocessing built into the graph.
        new SettingSpec("QuantizeUInt8Inputs", WorkerSwitches.UInt8Inputs, SettingKind.Boolean),

        // Static mode: the outputs ship as their final QuantizeLinear's uint8 tensor, the grids in the metadata.
        new SettingSpec("QuantizeUInt8Outputs", WorkerSwitches.UInt8Outputs, SettingKind.Boolean),

        // The accuracy gate (used when the model is quantized; the worker measures on the validation folder).
        new SettingSpec(AccuracyChecks, WorkerSwitches.Check, SettingKind.Checks),
        new SettingSpec("QuantizeOnAccuracyFailure", WorkerSwitches.OnAccuracyFailure, SettingKind.Choice, "error", "ship-fp32"),
        new SettingSpec("QuantizeMinSpeedup", WorkerSwitches.MinSpeedup, SettingKind.PositiveNumber),
        new SettingSpec("QuantizeBinaryThreshold", WorkerSwitches.BinaryThreshold, SettingKind.Number),

        // Accuracy-driven tuning (needs validation data) and its lock file beside the model (WorkerProtocol.LockFileSuffix).
        new SettingSpec("QuantizeTune", WorkerSwitches.Tune, SettingKind.Boolean),
        new SettingSpec(TuneLocked, WorkerSwitches.TuneLocked, SettingKind.Boolean),
        new SettingSpec("QuantizeLock", WorkerSwitches.Lock, SettingKind.Boolean),
        new SettingSpec("QuantizeTuneMaxAttempts", WorkerSwitches.TuneMaxAttempts, SettingKind.PositiveInteger),
        new SettingSpec("QuantizeTuneTimeBudget", WorkerSwitches.TuneTimeBudget, SettingKind.PositiveInteger),

        // Sugar for one ground-truth check: both set => --check drop:<metric><=<drop> (the task writes it).
        new SettingSpec(AccuracyMetric, null, SettingKind.Choice, AccuracyCheckSyntax.GroundTruthMetrics),
        new SettingSpec(MaxAccuracyDrop, null, SettingKind.NonNegativeNumber),

        // Calibration data as users have it: sampling, and how image samples become input tensors.
        new SettingSpec("QuantizeCalibrationShuffleSeed", WorkerSwitches.CalibrationShuffleSeed, SettingKind.Integer),
        new SettingSpec("QuantizeImageSize", WorkerSwitches.ImageSize, SettingKind.ImageSize),
        new SettingSpec("QuantizeImageResize", WorkerSwitches.ImageResize, SettingKind.Choice, "stretch", "letterbox", "fit", "crop", "fit-height"),
        new SettingSpec("QuantizeImageInterpolation", WorkerSwitches.ImageInterpolation, SettingKind.Choice, "bilinear", "nearest"),
        new SettingSpec("QuantizeImageLayout", WorkerSwitches.ImageLayout, SettingKind.Choice, "nchw", "nhwc"),
        new SettingSpec("QuantizeImageChannels", WorkerSwitches.ImageChannels, SettingKind.Choice, "rgb", "bgr", "gray"),
        new SettingSpec("QuantizeImageScale", WorkerSwitches.ImageScale, SettingKind.PositiveNumber),
        new SettingSpec("QuantizeImageMean", WorkerSwitches.ImageMean, SettingKind.Numbers),
        new SettingSpec("QuantizeImageStd", WorkerSwitches.ImageStd, SettingKind.PositiveNumbers),
        new SettingSpec("QuantizeImagePadValue", WorkerSwitches.ImagePadValue, SettingKind.Number),
        new SettingSpec("QuantizeImageOrientation", WorkerSwitches.ImageOrientation, SettingKind.Choice, "exif", "ignore"),
    };
}
