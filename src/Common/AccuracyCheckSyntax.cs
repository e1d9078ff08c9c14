using System;
using System.Globalization;
using System.Linq;

namespace Quantize.Common;

/// <summary>
/// The grammar of an accuracy check, <c>[drop:]&lt;metric&gt;[@&lt;output&gt;](&gt;=|&lt;=)&lt;value&gt;</c>, and its metric
/// names. The task checks it before anything runs (QNT3001) and the engine parses it (QNT1201) with this one parser,
/// so a check the build accepts is a check the worker accepts. Which metric needs ground truth the data has is the
/// engine's business.
/// </summary>
internal static class AccuracyCheckSyntax
{
    public const string DropPrefix = "drop:";

    /// <summary>The three forms of a check, for help and error texts.</summary>
    public const string Forms = "<metric>[@<output>]>=<value>, <metric>[@<output>]<=<value> or drop:<metric>[@<output>]<=<value>";

    /// <summary>The metric names, for help and error texts.</summary>
    public const string Metrics =
        "metrics vs FP32: sqnr, cosine, psnr, max-abs-error, top<k>-agreement (e.g. top1-agreement)" +
        "; vs ground truth (expected/<output>.npy or label.txt, also for drop:): psnr, top<k> (e.g. top1, top5), mse, mae, f1, precision, recall";

    public const string Grammar = Forms + "; " + Metrics;

    private const string AgreementSuffix = "-agreement";

    /// <summary>INT8 vs FP32 outputs, no ground truth needed (top1-agreement stands for any <c>top&lt;k&gt;-agreement</c>).</summary>
    public static readonly string[] FidelityMetrics = { "sqnr", "cosine", "psnr", "max-abs-error", "top1-agreement" };

    /// <summary>Against ground truth, for FP32 and INT8 (top1 and top5 stand for any <c>top&lt;k&gt;</c>); the metrics a drop can bound.</summary>
    public static readonly string[] GroundTruthMetrics = { "psnr", "top1", "top5", "mse", "mae", "f1", "precision", "recall" };

    public static bool IsFidelityMetric(string metric) =>
        FidelityMetrics.Contains(metric, StringComparer.Ordinal) || (TryParseTopK(metric, out _, out bool agreement) && agreement);

    public static bool IsGroundTruthMetric(string metric) =>
        GroundTruthMetrics.Contains(metric, StringComparer.Ordinal) || (TryParseTopK(metric, out _, out bool agreement) && !agreement);

    /// <summary>Parses <c>top&lt;k&gt;</c> / <c>top&lt;k&gt;-agreement</c>: k from 1 to 9999, without leading zeros.</summary>
    public static bool TryParseTopK(string metric, out int k, out bool agreement)
    {
        k = 0;
        agreement = metric.EndsWith(AgreementSuffix, StringComparison.Ordinal);
        if (!metric.StartsWith("top", StringComparison.Ordinal))
        {
            return false;
        }

        string digits = metric.Substring(3, metric.Length - 3 - (agreement ? AgreementSuffix.Length : 0));
        return digits.Length >= 1 && digits.Length <= 4 && digits[0] != '0' && digits.All(c => c >= '0' && c <= '9') &&
            int.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out k);
    }

    /// <summary>
    /// Splits one check into its parts; null when <paramref name="spec"/> is not a check, with the reason in
    /// <paramref name="error"/>. The last comparison splits the check: an output name may itself hold one.
    /// </summary>
    public static Parts? Parse(string spec, out string error)
    {
        string text = spec.Trim();
        bool isDrop = text.StartsWith(DropPrefix, StringComparison.OrdinalIgnoreCase);
        string body = isDrop ? text.Substring(DropPrefix.Length) : text;
        int atLeastAt = body.LastIndexOf(">=", StringComparison.Ordinal);
        int at = Math.Max(atLeastAt, body.LastIndexOf("<=", StringComparison.Ordinal));
        if (at <= 0)
        {
            return Invalid("it has no >= or <= comparison", out error);
        }

        string left = body.Substring(0, at).Trim();
        string thresholdText = body.Substring(at + 2).Trim();
        if (!InvariantNumber.TryParse(thresholdText, out double threshold))
        {
            return Invalid($"'{thresholdText}' is not a number", out error);
        }

        int sign = left.IndexOf('@');
        string metric = (sign < 0 ? left : left.Substring(0, sign)).Trim().ToLowerInvariant();
        string? output = sign < 0 ? null : left.Substring(sign + 1).Trim();
        if (output is { Length: 0 })
        {
            return Invalid("the output name after '@' is empty", out error);
        }

        if (!IsFidelityMetric(metric) && !IsGroundTruthMetric(metric))
        {
            return Invalid($"'{metric}' is not a metric", out error);
        }

        bool atLeast = at == atLeastAt;
        if (isDrop && !IsGroundTruthMetric(metric))
        {
            return Invalid($"a drop is measured against ground truth, and '{metric}' is not a ground-truth metric", out error);
        }

        if (isDrop && atLeast)
        {
            return Invalid("a drop check bounds the drop from above (drop:<metric><=<value>)", out error);
        }

        error = "";
        return new Parts(text, isDrop, metric, output, atLeast, threshold, thresholdText);
    }

    private static Parts? Invalid(string reason, out string error)
    {
        error = reason;
        return null;
    }

    /// <summary>One check, parsed.</summary>
    internal sealed class Parts
    {
        public Parts(string text, bool isDrop, string metric, string? output, bool atLeast, double threshold, string thresholdText)
        {
            Text = text;
            IsDrop = isDrop;
            Metric = metric;
            Output = output;
            AtLeast = atLeast;
            Threshold = threshold;
            ThresholdText = thresholdText;
        }

        /// <summary>The check as written, trimmed.</summary>
        public string Text { get; }

        public bool IsDrop { get; }

        /// <summary>Lower case.</summary>
        public string Metric { get; }

        /// <summary>The model output it applies to, as written; null: the first float output.</summary>
        public string? Output { get; }

        /// <summary>True for <c>&gt;=</c>, false for <c>&lt;=</c>.</summary>
        public bool AtLeast { get; }

        public double Threshold { get; }

        public string ThresholdText { get; }

        /// <summary>
        /// The check without spaces, <c>drop:</c> and the metric in lower case (output names keep their case): the text
        /// the task writes to the settings file and passes to the worker.
        /// </summary>
        public string Normalized =>
            (IsDrop ? DropPrefix : "") + Metric + (Output is null ? "" : "@" + Output) + (AtLeast ? ">=" : "<=") + ThresholdText;
    }
}
