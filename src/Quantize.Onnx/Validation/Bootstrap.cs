using System.Globalization;

namespace Quantize.Onnx.Validation;

/// <summary>A 95 % bootstrap confidence interval of a metric value or drop.</summary>
public sealed record ConfidenceInterval(double Low, double High)
{
    public bool Contains(double value) => value >= Low && value <= High;

    /// <summary>E.g. <c>[2.1, 2.8]</c>.</summary>
    public override string ToString() =>
        string.Format(CultureInfo.InvariantCulture, "[{0}, {1}]", CheckResult.Number(Low), CheckResult.Number(High));
}

/// <summary>
/// Percentile bootstrap over validation samples: the samples are drawn with replacement
/// <see cref="Resamples"/> times, the statistic is recomputed from the per-sample contributions of
/// each resample, and the 2.5th/97.5th percentiles of those values bound the 95 % interval. The
/// generator is seeded with a constant, so the same samples always give the same interval (reports
/// are reproducible). Every statistic sees the same resamples, so an FP32/INT8 drop is resampled in pairs.
/// </summary>
public static class Bootstrap
{
    public const int Resamples = 1000;

    public const int Seed = 20261126;

    /// <summary>
    /// Draws the resamples of <paramref name="samples"/> samples and hands each one (indices, repeats allowed)
    /// to <paramref name="visit"/>; the same array is reused between calls.
    /// </summary>
    public static void Resample(int samples, Action<int[]> visit, int resamples = Resamples, int seed = Seed)
    {
        if (samples <= 0)
        {
            return;
        }

        var random = new Random(seed);
        var indices = new int[samples];
        for (var r = 0; r < resamples; r++)
        {
            for (var i = 0; i < samples; i++)
            {
                indices[i] = random.Next(samples);
            }

            visit(indices);
        }
    }

    /// <summary>The 95 % percentile interval of bootstrap values (NaN values ignored); null when there are none.</summary>
    public static ConfidenceInterval? Percentile(IReadOnlyCollection<double> values)
    {
        var sorted = values.Where(v => !double.IsNaN(v)).Order().ToArray();
        if (sorted.Length == 0)
        {
            return null;
        }

        return new ConfidenceInterval(Quantile(sorted, 0.025), Quantile(sorted, 0.975));
    }

    /// <summary>The 95 % interval of one statistic over resamples of <paramref name="samples"/> samples.</summary>
    public static ConfidenceInterval? Interval(int samples, Func<IReadOnlyList<int>, double> statistic, int resamples = Resamples, int seed = Seed)
    {
        var values = new List<double>(resamples);
        Resample(samples, indices => values.Add(statistic(indices)), resamples, seed);
        return Percentile(values);
    }

    /// <summary>Linear interpolation between order statistics (the "type 7" quantile of R and NumPy).</summary>
    private static double Quantile(double[] sorted, double p)
    {
        var h = (sorted.Length - 1) * p;
        var lo = (int)Math.Floor(h);
        var hi = Math.Min(lo + 1, sorted.Length - 1);
        if (double.IsInfinity(sorted[lo]) || double.IsInfinity(sorted[hi]) || lo == hi)
        {
            return h - lo < 0.5 ? sorted[lo] : sorted[hi];
        }

        return sorted[lo] + ((h - lo) * (sorted[hi] - sorted[lo]));
    }
}
