namespace Quantize.Common;

/// <summary>
/// The worker's switches the task writes to the response file: the CLI declares its options with these names, and
/// <see cref="SettingSpecs"/> maps each setting to one. Switches only a person types (e.g. --latency-runs) stay in the CLI.
/// </summary>
internal static class WorkerSwitches
{
    // Paths the task derives per model.
    public const string Output = "--output";
    public const string Calibration = "--calibration";
    public const string Validation = "--validation";
    public const string Report = "--report";
    public const string HtmlReport = "--html-report";

    // Settings.
    public const string Mode = "--mode";
    public const string CalibrationMethod = "--calibration-method";
    public const string CalibrationPercentile = "--calibration-percentile";
    public const string SymmetricActivations = "--symmetric-activations";
    public const string SaturationAwareRanges = "--saturation-aware-ranges";
    public const string ReduceRange = "--reduce-range";
    public const string Target = "--target";
    public const string FloatPrecision = "--float-precision";
    public const string PerChannel = "--per-channel";
    public const string ActivationType = "--activation-type";
    public const string WeightType = "--weight-type";
    public const string ExcludeNodes = "--exclude-nodes";
    public const string ExcludeOpTypes = "--exclude-op-types";
    public const string MaxCalibrationSamples = "--max-calibration-samples";
    public const string FastKernelsOnly = "--fast-kernels-only";
    public const string Equalize = "--equalize";
    public const string BiasCorrection = "--bias-correction";
    public const string KeepFloatIfSlower = "--keep-float-if-slower";
    public const string AppThreads = "--app-threads";
    public const string BlockSize = "--block-size";
    public const string AccuracyLevel = "--accuracy-level";
    public const string Weight4Asymmetric = "--weight4-asymmetric";
    public const string Check = "--check";
    public const string OnAccuracyFailure = "--on-accuracy-failure";
    public const string MinSpeedup = "--min-speedup";
    public const string BinaryThreshold = "--binary-threshold";
    public const string Tune = "--tune";
    public const string TuneLocked = "--tune-locked";
    public const string Lock = "--lock";
    public const string TuneMaxAttempts = "--tune-max-attempts";
    public const string TuneTimeBudget = "--tune-time-budget";
    public const string CalibrationShuffleSeed = "--calibration-shuffle-seed";
    public const string ImageSize = "--image-size";
    public const string ImageResize = "--image-resize";
    public const string ImageInterpolation = "--image-interpolation";
    public const string ImageLayout = "--image-layout";
    public const string ImageChannels = "--image-channels";
    public const string ImageScale = "--image-scale";
    public const string ImageMean = "--image-mean";
    public const string ImageStd = "--image-std";
    public const string ImagePadValue = "--image-pad-value";
    public const string ImageOrientation = "--image-orientation";
    public const string UInt8Inputs = "--uint8-inputs";
    public const string UInt8Outputs = "--uint8-outputs";
}
