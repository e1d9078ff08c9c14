using System.Globalization;

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
    public const string Grammar =
        "<metric>[@<output>]>=<value>, <metric>[@<output>]<=<value> or drop:<metric>[@<output>]<=<value>; " +
        "metrics vs FP32: sqnr, cosine, psnr, max-abs-error, top<k>-agreement (e.g. top1-agreement, top5-agreement); " +
        "vs ground truth (expected/<output>.npy or a class label): psnr, top<k> (e.g. top1, top5), mse, mae, f1, precision, recall";

    /// <summary>Metrics comparing INT8 with FP32 (no ground truth needed), besides <c>top&lt;k&gt;-agreement</c>.</summary>
    public static readonly IReadOnlySet<string> FidelityMetrics = new HashSet<string>(StringComparer.Ordinal)
    {
        "sqnr", "cosine", "psnr", "max-abs-error", "top1-agreement",
    };

    /// <summary>Task metrics computed for FP32 and INT8 against ground truth, besides <c>top&lt;k&gt;</c>.</summary>
    public static readonly IReadOnlySet<string> TaskMetrics = new HashSet<string>(StringComparer.Ordinal)
    {
        "psnr", "top1", "mse", "mae", "f1", "precision", "recall",
    };

    /// <summary>A metric comparing INT8 with FP32.</summary>
    public static bool IsFidelityMetric(string metric) => FidelityMetrics.Contains(metric) || (TopK.TryParse(metric, out _, out var agreement) && agreement);

    /// <summary>A metric against ground truth.</summary>
    public static bool IsTaskMetric(string metric) => TaskMetrics.Contains(metric) || (TopK.TryParse(metric, out _, out var agreement) && !agreement);

    /// <summary>True when a larger value is better (drop = FP32 − INT8); false for errors (drop = INT8 − FP32).</summary>
    public static bool HigherIsBetter(string metric) => metric is not ("max-abs-error" or "mse" or "mae");

    /// <summary>Unit shown after a value of the metric.</summary>
    public static string Unit(string metric) => metric switch
    {
        "sqnr" or "psnr" => " dB",
        "f1" or "precision" or "recall" => " %",
        _ when TopK.TryParse(metric, out _, out _) => " %",
        _ => "",
    };

    /// <summary>Parses one spec; throws <see cref="ErrorCodes.InvalidOption"/> (QNT1201) naming the spec and the grammar.</summary>
    public static AccuracyCheck Parse(string spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var text = spec.Trim();
        var isDrop = text.StartsWith("drop:", StringComparison.OrdinalIgnoreCase);
        var body = isDrop ? text[5..] : text;
        var ge = body.LastIndexOf(">=", StringComparison.Ordinal);
        var le = body.LastIndexOf("<=", StringComparison.Ordinal);
        var at = Math.Max(ge, le);
        if (at <= 0)
        {
            throw Invalid(spec, "it has no >= or <= comparison");
        }

        var left = body[..at].Trim();
        var valueText = body[(at + 2)..].Trim();
        if (!double.TryParse(valueText, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) || !double.IsFinite(value))
        {
            throw Invalid(spec, $"'{valueText}' is not a number");
        }

        var sign = left.IndexOf('@', StringComparison.Ordinal);
        var metric = (sign < 0 ? left : left[..sign]).Trim().ToLowerInvariant();
        string? output = sign < 0 ? null : left[(sign + 1)..].Trim();
        if (output is { Length: 0 })
        {
            throw Invalid(spec, "the output name after '@' is empty");
        }

        if (!IsFidelityMetric(metric) && !IsTaskMetric(metric))
        {
            throw Invalid(spec, $"'{metric}' is not a metric");
        }

        var atLeast = at == ge;
        if (isDrop)
        {
            if (!IsTaskMetric(metric))
            {
                throw Invalid(spec, $"a drop is measured against ground truth, and '{metric}' is not a ground-truth metric");
            }

            if (atLeast)
            {
                throw Invalid(spec, "a drop check bounds the drop from above (drop:<metric><=<value>)");
            }
        }

        return new AccuracyCheck(text, metric, output, atLeast, value, isDrop);
    }

    /// <summary>
    /// The checks used when validation data is given and no check is: <c>sqnr&gt;=10</c> on the first float
    /// output and, when that output is shaped [N, K] with K ≥ 2, <c>top1-agreement&gt;=95</c>.
    /// </summary>
    public static IReadOnlyList<AccuracyCheck> Defaults(bool classifierOutput) => classifierOutput
        ? [Parse("sqnr>=10"), Parse("top1-agreement>=95")]
        : [Parse("sqnr>=10")];

    public override string ToString() => Spec;

    private static QuantizeException Invalid(string spec, string reason) =>
        new(ErrorCodes.InvalidOption, null, $"Invalid accuracy check '{spec}': {reason}. Expected {Grammar}.");
}
