using Quantize.Common;

namespace Quantize.MSBuild
{
    /// <summary>
    /// Every code and message of the build integration (QNT3xxx), in one place so docs/build-integration.md
    /// can list them. Codes are public surface: never renumber, only add.
    /// QNT30xx: settings. QNT31xx: model fallbacks (warnings). QNT32xx: the worker process.
    /// </summary>
    internal static class Messages
    {
        public const string InvalidValue = "QNT3001";
        public const string InvalidValueText = "Invalid value '{0}' for {1}{2}. Allowed values: {3}.";

        public const string IncompletePairText = "{0} '{1}' is set for '{2}' but {3} is not: the two name one check together (drop:<metric><=<drop>). Set {3} ({4}) or remove {0}.";

        public const string DuplicateOutput = "QNT3002";
        public const string DuplicateOutputText = "Two models are copied to the same output path '{0}' ('{1}' and '{2}'). Give one of them another Link or set Quantize=\"false\" on it.";

        public const string StaticNeedsCalibration = "QNT3003";
        public const string StaticNeedsCalibrationText = "QuantizeMode is 'static' but '{0}' has no calibration data: the folder '{1}' does not exist. Add sample inputs there (one sub-folder per sample with one .npy file per model input, e.g. 000/input.npy), point the item's QuantizeCalibrationData metadata at a folder, or use QuantizeMode 'auto'.";

        // QNT3101 (no calibration data: FP32 copy) and QNT3102 (dynamic mode not available) are retired:
        // a model without calibration data is now quantized dynamically (QuantizeMode auto or dynamic).

        public const string ChecksWithoutValidation = "QNT3103";
        public const string ChecksWithoutValidationText = "Accuracy checks are set for '{0}' ({1}) but it has no validation data, so they are not run. Add validation samples under '{2}' (the calibration layout, optionally with expected/<output>.npy per sample) or point the item's QuantizeValidationData metadata at such a folder.";

        public const string FloatCopyWithExternalData = "QNT3104";
        public const string FloatCopyWithExternalDataText = "QuantizeShipFloatModel is set for '{0}', but that model keeps its weights in external data ({1}), which the FP32 copy would name by the same relative path as the quantized model's data file; the FP32 copy is not shipped. Ship the FP32 model and its data file under another folder yourself, or set QuantizeShipFloatModel=false on this model.";

        public const string WorkerNotFound = "QNT3201";
        public const string WorkerNotFoundText = "The quantization worker '{0}' does not exist. The Quantize.MSBuild package looks damaged: clear it from the NuGet cache and restore again, or fix $(QuantizeWorkerPath).";

        public const string HostNotFound = "QNT3202";
        public const string HostNotFoundText = "The .NET host '{0}' that runs the quantization worker does not exist. Set $(QuantizeDotNetHostPath) or the DOTNET_HOST_PATH environment variable to the 'dotnet' executable.";

        public const string WorkerTimedOut = "QNT3203";
        public const string WorkerTimedOutText = "Quantizing '{0}' did not finish within {1} s and was stopped. Raise $(QuantizeTimeoutSeconds) (0 = no limit) or lower QuantizeMaxCalibrationSamples.";

        public const string WorkerCrashed = "QNT3204";
        public const string WorkerCrashedText = "The quantization worker failed on '{0}' with exit code {1} without reporting an error (crash or internal error); the model was not quantized. Re-run it by hand with: \"{2}\" \"{3}\" " + WorkerProtocol.Command + " @\"{4}\" and please report the problem.";

        public const string OutputMissing = "QNT3205";
        public const string OutputMissingText = "The quantization worker reported success for '{0}' but did not write '{1}'.";
    }
}
