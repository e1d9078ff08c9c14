using Quantize.Common;

namespace Quantize.Onnx.Validation;

/// <summary>
/// Top-k membership over the class axis, and the metric names that use it: <c>top&lt;k&gt;</c> (accuracy vs
/// ground truth) and <c>top&lt;k&gt;-agreement</c> (INT8 vs FP32). Ties rank the lower class index first,
/// so top-1 is the first arg-max.
/// </summary>
public static class TopK
{
    /// <summary>The k measured for every output with more than k classes, whether or not a check asks for it.</summary>
    public static readonly IReadOnlyList<int> Reported = [1, 5];

    /// <summary>True when <paramref name="cls"/> is among the <paramref name="k"/> best classes of <paramref name="row"/>.</summary>
    public static bool Contains(ReadOnlySpan<float> row, int cls, int k)
    {
        if ((uint)cls >= (uint)row.Length)
        {
            return false;
        }

        var value = row[cls];
        var better = 0;
        for (var j = 0; j < row.Length && better < k; j++)
        {
            if (row[j] > value || (row[j] == value && j < cls))
            {
                better++;
            }
        }

        return better < k;
    }

    public static string Name(int k, bool agreement) => agreement ? $"top{k}-agreement" : $"top{k}";

    /// <summary>The k to measure: <see cref="Reported"/> plus those the checks name.</summary>
    public static IReadOnlyList<int> Requested(IEnumerable<AccuracyCheck> checks) =>
        Reported.Concat(checks.Select(c => AccuracyCheckSyntax.TryParseTopK(c.Metric, out var k, out _) ? k : 0).Where(k => k > 0)).Distinct().Order().ToList();
}
