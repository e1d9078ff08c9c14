namespace Quantize.Onnx.Validation;

/// <summary>
/// How far a validation report is from passing, in forms a search can compare across checks and candidates: the
/// worst check's margin to its threshold, and the damage quantization adds summed over the checks.
/// </summary>
internal static class CheckScores
{
    /// <summary>The worst check's distance from its threshold, relative to the threshold (at least 1 in magnitude); ≥ 0 passes.</summary>
    public static double Margin(ValidationReport report) => report.Checks.Count == 0 ? 0 : report.Checks.Min(c =>
    {
        var slack = c.Comparison == ">=" ? c.Value - c.Threshold : c.Threshold - c.Value;
        return double.IsNaN(slack) ? double.NegativeInfinity : slack / Math.Max(1, Math.Abs(c.Threshold));
    });

    /// <summary>
    /// How much error quantization adds, summed over the checks, in a form that adds up over independent noise sources:
    /// the noise power 10^(−dB/10) for sqnr/psnr, the shortfall for scores (%, cosine), the error itself for errors.
    /// Against ground truth the FP32 model's own error is subtracted: it is the same for every candidate and would
    /// otherwise swamp the differences between units (waifu2x vs the HR photo: FP32's error is ~3× what any layer adds).
    /// </summary>
    public static double Damage(ValidationReport report) => report.Checks.Sum(c => Math.Max(0, Error(c.Metric, c.Int8) - (c.Fp32 is double f ? Error(c.Metric, f) : 0)));

    /// <summary>A metric's value as an error that adds up over noise sources (see <see cref="AccuracyCheck"/> for the metrics).</summary>
    private static double Error(string metric, double value) => metric switch
    {
        "sqnr" or "psnr" => Math.Pow(10, -value / 10),
        "cosine" => 1 - value,
        _ when !AccuracyCheck.HigherIsBetter(metric) => value, // mse, mae, max-abs-error
        _ => Math.Max(0, 100 - value) / 100, // percentages: top-k, agreement, f1, precision, recall
    };
}
