namespace Quantize.Common;

/// <summary>
/// The mode of a model whose user names none: <see cref="Auto"/>, the default of the build and of the command line
/// alike. Static with calibration data, else dynamic (no data needed; a model with no MatMul/Gemm/LSTM is then written
/// unchanged with warning QNT2502, which says to give calibration data). Calibration data that is named but missing
/// stays static, so it is the engine's coded error (QNT1101), never a silent switch to dynamic mode.
/// </summary>
internal static class QuantizeModes
{
    public const string Auto = "auto";

    /// <summary>Every mode a user may name: auto and the engine's four.</summary>
    public static readonly string[] Names = [Auto, "static", "dynamic", "fp16", "weight4"];

    /// <summary>The engine mode <paramref name="mode"/> (lower case) stands for, given whether calibration data was named or found.</summary>
    public static string Resolve(string mode, bool hasCalibration) => mode == Auto ? (hasCalibration ? "static" : "dynamic") : mode;
}
