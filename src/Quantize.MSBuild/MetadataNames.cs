namespace Quantize.MSBuild
{
    /// <summary>
    /// The item metadata the tasks read and write: MSBuild's well-known names, the per-model paths the targets set
    /// (build/Quantize.MSBuild.targets, _QuantizeCollectModels) and the user's metadata-only settings.
    /// </summary>
    internal static class MetadataNames
    {
        public const string FullPath = "FullPath";
        public const string TargetPath = "TargetPath";
        public const string Link = "Link";

        /// <summary>The model's INT8 output under obj/; also the bucket key of every input of its quantization.</summary>
        public const string QuantizedPath = "QuantizedPath";
        public const string ReportPath = "QuantizeReportPath";
        public const string HtmlReportPath = "QuantizeHtmlReportPath";
        public const string LogPath = "QuantizeLogPath";
        public const string SettingsPath = "QuantizeSettingsPath";
        public const string ResponseFilePath = "QuantizeResponseFilePath";

        /// <summary>Resolved folder (or sample list) of the model's calibration samples, explicit or by convention.</summary>
        public const string CalibrationDir = "QuantizeCalibrationDir";
        public const string ValidationDir = "QuantizeValidationDir";

        /// <summary>Set by the user: a folder or sample list relative to the project (metadata only).</summary>
        public const string CalibrationData = "QuantizeCalibrationData";
        public const string ValidationData = "QuantizeValidationData";

        /// <summary>The value of a project default (<c>_QuantizeDefault</c>: ItemSpec = setting name).</summary>
        public const string Value = "Value";
    }
}
