using Quantize.Common;

namespace Quantize.Onnx.Validation;

/// <summary>
/// One check of the accuracy gate, parsed from <c>[drop:]&lt;metric&gt;[@&lt;output&gt;](&gt;=|&lt;=)&lt;value&gt;</c>,
/// e.g. <c>sqnr&gt;=20</c>, <c>top1-agreement@prob&gt;=99</c>, <c>drop:psnr&lt;=0.5</c>.
/// </summary>
/// <param name="Spec">The text as the user wrote it.</param>
/// <param name="Metric">A metric name (<see cref="IsFidelityMetric"/>, <see cref="IsTaskMetric"/>).</param>
/// <param name="Output">The model output it applies to; null: the model's first float output.</param>
/// <param name="AtLeast">True for <c>&gt;=</c>, false for <c>&lt;=</c>.</param>
/// <param name="Threshold">The bound.</param>
/// <param name="IsDrop">A <c>drop:</c> check: how much worse INT8 is than FP32 against ground truth (positive = worse).</param>
public sealed record AccuracyCheck(string Spec, string Metric, string? Output, bool AtLeast, double Threshold, bool IsDrop)
{
    /// <summary>A metric comparing INT8 with FP32.</summary>
    public static bool IsFidelityMetric(string metric) => AccuracyCheckSyntax.IsFidelityMetric(metric);

    /// <summary>A metric against ground truth.</summary>
    public static bool IsTaskMetric(string metric) => AccuracyCheckSyntax.IsGroundTruthMetric(metric);

    /// <summary>True when a larger value is better (drop = FP32 − INT8); false for errors (drop = INT8 − FP32).</summary>
    public static bool HigherIsBetter(string metric) => metric is not ("max-abs-error" or "mse" or "mae");

    /// <summary>Unit shown after a value of the metric.</summary>
    public static string Unit(string metric) => metric switch
    {
        "sqnr" or "psnr" => " dB",
        "f1" or "precision" or "recall" => " %",
        _ when AccuracyCheckSyntax.TryParseTopK(metric, out _, out _) => " %",
        _ => "",
    };

    /// <summary>Parses one spec with the grammar the task checks too (<see cref="AccuracyCheckSyntax"/>); throws <see cref="ErrorCodes.InvalidOption"/> (QNT1201) naming the spec and the grammar.</summary>
    public static AccuracyCheck Parse(string spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var check = AccuracyCheckSyntax.Parse(spec, out var reason)
            ?? throw new QuantizeException(ErrorCodes.InvalidOption, null, $"Invalid accuracy check '{spec}': {reason}. Expected {AccuracyCheckSyntax.Grammar}.");
        return new AccuracyCheck(check.Text, check.Metric, check.Output, check.AtLeast, check.Threshold, check.IsDrop);
    }

    /// <summary>
    /// The checks used when validation data is given and no check is: <c>sqnr&gt;=10</c> on the first float
    /// output and, when that output is shaped [N, K] with K ≥ 2, <c>top1-agreement&gt;=95</c>.
    /// </summary>
    public static IReadOnlyList<AccuracyCheck> Defaults(bool classifierOutput) => classifierOutput
        ? [Parse("sqnr>=10"), Parse("top1-agreement>=95")]
        : [Parse("sqnr>=10")];

    public override string ToString() => Spec;
}
