namespace Quantize.Onnx;

/// <summary>
/// Every code the engine reports. QNT1xxx are errors, QNT2xxx warnings; QNT3xxx/QNT4xxx belong to
/// the build integration. Codes are part of the public surface: never renumber, only add.
/// </summary>
public static class ErrorCodes
{
    // Model input/output.
    public const string ModelNotFound = "QNT1001";
    public const string ModelCorrupt = "QNT1002";
    public const string ExternalDataOutsideModelFolder = "QNT1003";
    public const string ExternalDataUnreadable = "QNT1004";
    public const string ModelUnsupported = "QNT1005";
    public const string OutputNotWritable = "QNT1006";

    // Hostile or broken models (reliability).
    public const string TensorDataMismatch = "QNT1007";
    public const string SubgraphsTooDeep = "QNT1008";
    public const string UnknownOperatorDomain = "QNT1009";
    public const string ModelHasNoInputs = "QNT1010";
    public const string ActivationsTooLarge = "QNT1011";

    // Models over 2 GB: large tensors kept on disk while quantizing (QNT1012-QNT1019).
    public const string WorkFolderNotWritable = "QNT1012";

    // Calibration data.
    public const string CalibrationFolderMissing = "QNT1101";
    public const string CalibrationFolderEmpty = "QNT1102";
    public const string CalibrationInputMissing = "QNT1103";
    public const string CalibrationTypeMismatch = "QNT1104";
    public const string CalibrationShapeMismatch = "QNT1105";
    public const string CalibrationFileUnreadable = "QNT1106";
    public const string CalibrationNonFinite = "QNT1107";
    public const string ExpectedShapeMismatch = "QNT1108";

    // Calibration data as users have it: images, archives, lists (QNT1110-QNT1139).
    public const string ImagePreprocessingMismatch = "QNT1110";
    public const string SampleListEntryMissing = "QNT1111";
    public const string ClassLabelUnknown = "QNT1112";

    // Options and running the model.
    public const string InvalidOption = "QNT1201";
    public const string InvalidCalibrationPercentile = "QNT1205";
    public const string ModelRunFailed = "QNT1301";

    // The accuracy gate.
    public const string AccuracyCheckFailed = "QNT1401";
    public const string SpeedupTooLow = "QNT1402";

    // Tuning and its lock file.
    public const string LockFileNotCurrent = "QNT1403";
    public const string LockFileUnreadable = "QNT1404";

    // Never ship garbage: without validation data, INT8 outputs far from FP32 on the calibration samples.
    public const string FidelityTooLow = "QNT1405";
    public const string InternalError = "QNT1901";

    // Dynamic quantization and already-quantized models.
    public const string DynamicActivationType = "QNT1501";
    public const string CalibrationRequired = "QNT1502";
    public const string SampleShapeUnknown = "QNT1503";

    // Weight-only 4-bit mode (MatMulNBits).
    public const string InvalidBlockSize = "QNT1520";
    public const string InvalidAccuracyLevel = "QNT1521";

    // uint8 model inputs and outputs (--uint8-inputs, --uint8-outputs).
    public const string UInt8InputsNeedStatic = "QNT1530";
    public const string UInt8InputNotImage = "QNT1531";
    public const string UInt8OutputNotQuantized = "QNT1532";
    public const string UInt8OnQuantizedModel = "QNT1533";

    // Warnings.
    public const string PerChannelFallback = "QNT2001";
    public const string KeptFloatNotFaster = "QNT2002";
    public const string UnfusedGroups = "QNT2004";
    public const string StaysFloat = "QNT2005";
    public const string NoIntegerKernels = "QNT2006";
    public const string LargerThanSource = "QNT2007";

    // Sanity of calibration inputs (QNT2101-QNT2139).
    public const string CalibrationInputConstant = "QNT2101";
    public const string CalibrationRangeOutlier = "QNT2102";
    public const string BranchNotCalibrated = "QNT2103";
    public const string LoopBodyNotCalibrated = "QNT2104";
    public const string AccuracyCheckFailedShippedFp32 = "QNT2401";
    public const string SpeedupTooLowShippedFp32 = "QNT2402";
    public const string ValidatingOnCalibration = "QNT2403";
    public const string CalibrationNotRepresentative = "QNT2404";
    public const string LockFileStale = "QNT2405";
    public const string FidelityTooLowShippedFp32 = "QNT2406";

    // Target hardware.
    public const string TargetNotValidated = "QNT2601";
    public const string AlreadyQuantized = "QNT2501";
    public const string NothingToQuantizeDynamically = "QNT2502";
    public const string CannotMeasureWithoutSamples = "QNT2503";
    public const string NothingToQuantizeWeight4 = "QNT2520";
}
