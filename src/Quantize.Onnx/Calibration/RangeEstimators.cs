namespace Quantize.Onnx.Calibration;

/// <summary>
/// Activation ranges from a <see cref="Histogram"/>: percentile, entropy (KL divergence) and MSE.
/// Every method first folds the values beyond the consumers' saturation bounds onto the bound (they
/// produce the same output there), so a range never spends grid steps on values nobody can tell apart.
/// </summary>
public static class RangeEstimators
{
    /// <summary>Grid steps of an 8-bit activation.</summary>
    public const int Steps = 255;

    /// <summary>Entropy needs at least this many values per quantized level, else it keeps the full range.</summary>
    public const int MinEntropyValuesPerLevel = 100;

    /// <summary>The observed range, cut at the saturation bounds.</summary>
    public static TensorRange MinMax(Histogram histogram, double saturatesBelow = double.NegativeInfinity, double saturatesAbove = double.PositiveInfinity) =>
        new FoldedHistogram(histogram, saturatesBelow, saturatesAbove).Range;

    /// <summary>
    /// Keeps <paramref name="percentile"/> % of the values, dropping half of the rest on each side (as
    /// ONNX Runtime's percentile calibrator does): the range runs
    /// from the lower edge of the bin where the low tail ends to the upper edge of the bin where the high
    /// tail starts (a bin is never split, so at most one bin width wider than exact).
    /// </summary>
    public static TensorRange Percentile(Histogram histogram, double percentile, double saturatesBelow = double.NegativeInfinity, double saturatesAbove = double.PositiveInfinity)
    {
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(percentile, 0);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(percentile, 100);
        var f = new FoldedHistogram(histogram, saturatesBelow, saturatesAbove);
        if (f.Empty)
        {
            return f.Range;
        }

        var tail = f.Total * (100 - percentile) / 200;
        int low = f.First, high = f.Last;
        for (double seen = 0; low < f.Last; low++)
        {
            seen += f.Counts[low];
            if (seen > tail)
            {
                break;
            }
        }

        for (double seen = 0; high > low; high--)
        {
            seen += f.Counts[high];
            if (seen > tail)
            {
                break;
            }
        }

        return f.Window(low, high);
    }

    /// <summary>
    /// The window around zero whose <paramref name="levels"/>-level quantization loses the least
    /// information: minimises KL(P‖Q) where P is the histogram inside the window with the values
    /// outside it added to the edge bins (what clipping does) and Q is P's window merged into
    /// <paramref name="levels"/> equal groups and spread back over each group's non-empty bins (the
    /// TensorRT recipe ONNX Runtime's entropy calibrator follows; 128 levels as there).
    /// </summary>
    public static TensorRange Entropy(Histogram histogram, int levels = 128, double saturatesBelow = double.NegativeInfinity, double saturatesAbove = double.PositiveInfinity)
    {
        var f = new FoldedHistogram(histogram, saturatesBelow, saturatesAbove);
        if (f.Empty || f.Last - f.First + 1 <= levels || f.Total < MinEntropyValuesPerLevel * levels)
        {
            // Too few values (e.g. a squeeze-excitation vector: C values per sample) make a sparse histogram
            // whose every narrow window looks lossless to KL: keep the full range.
            return f.Range;
        }

        var prefix = f.Prefix(_ => 1.0, out _);
        var zero = f.ZeroBin;
        var reach = Math.Max(zero - f.First, f.Last + 1 - zero);
        var best = (Kl: double.PositiveInfinity, Low: f.First, High: f.Last);
        var stride = Math.Max(1, reach / 512);
        var p = new double[f.Last - f.First + 1];
        var q = new double[p.Length];
        for (var k = 1; k <= reach; k += stride)
        {
            var a = Math.Max(f.First, zero - k);
            var b = Math.Min(f.Last, zero + k - 1);
            var n = b - a + 1;
            if (n < levels && !(a == f.First && b == f.Last))
            {
                continue;
            }

            var kl = Divergence(f, prefix, a, b, Math.Min(levels, n), p, q);
            if (kl < best.Kl)
            {
                best = (kl, a, b);
            }

            if (a == f.First && b == f.Last)
            {
                break;
            }
        }

        return f.Window(best.Low, best.High);
    }

    /// <summary>
    /// The range whose quantization error is smallest as the consumers see it: for a window [lo, hi]
    /// with step Δ = (hi − lo) / 255, values inside cost f'(x)²·Δ²/12 (rounding noise through the
    /// consumer's slope) and values outside cost (f(x) − f(bound))² (clipping), summed over the
    /// consumers' functions f (identity for a plain consumer). Searched by coordinate descent over
    /// bin edges from the full range; with <paramref name="symmetric"/>, over windows [−t, t].
    /// </summary>
    public static TensorRange Mse(Histogram histogram, IReadOnlyList<ConsumerResponse>? consumers = null, bool symmetric = false)
    {
        consumers ??= [ConsumerResponse.Identity];
        var (below, above) = ConsumerResponses.SaturationBounds(consumers);
        var f = new FoldedHistogram(histogram, below, above);
        if (f.Empty || f.Last == f.First)
        {
            return f.Range;
        }

        var cost = new MseCost(f, consumers);
        if (symmetric)
        {
            var zero = f.ZeroBin;
            var reach = Math.Max(zero - f.First, f.Last + 1 - zero);
            var best = (Cost: double.PositiveInfinity, K: reach);
            for (var k = 1; k <= reach; k++)
            {
                var t = k * histogram.Width;
                var c = cost.Of(Math.Max(f.First, zero - k), Math.Min(f.Last, zero + k - 1), -t, t);
                if (c < best.Cost)
                {
                    best = (c, k);
                }
            }

            var tBest = best.K * histogram.Width;
            return new TensorRange((float)Math.Max(-tBest, f.Min), (float)Math.Min(tBest, f.Max));
        }

        // Candidate windows start at a bin's lower edge at or below zero and end at an upper edge at or above it.
        var lowLimit = Math.Clamp(f.ZeroBin, f.First, f.Last);
        var highStart = Math.Clamp(f.ZeroBin - 1, f.First, f.Last);
        int low = f.First, high = f.Last;
        for (var round = 0; round < 8; round++)
        {
            var (bestLow, bestHigh) = (low, high);
            var bestCost = cost.Of(low, high);
            for (var b = highStart; b <= f.Last; b++)
            {
                var c = cost.Of(low, b);
                if (c < bestCost)
                {
                    (bestCost, bestHigh) = (c, b);
                }
            }

            for (var a = f.First; a <= lowLimit; a++)
            {
                var c = cost.Of(a, bestHigh);
                if (c < bestCost)
                {
                    (bestCost, bestLow) = (c, a);
                }
            }

            if (bestLow == low && bestHigh == high)
            {
                break;
            }

            (low, high) = (bestLow, bestHigh);
        }

        return f.Window(low, high);
    }

    private static double Divergence(FoldedHistogram f, double[] prefix, int a, int b, int levels, double[] p, double[] q)
    {
        var n = b - a + 1;
        for (var i = 0; i < n; i++)
        {
            p[i] = f.Counts[a + i];
        }

        // Q from the window's own values; P also holds what clipping moves onto the edges.
        for (var g = 0; g < levels; g++)
        {
            int start = g * n / levels, end = (g + 1) * n / levels;
            double total = 0;
            var nonEmpty = 0;
            for (var i = start; i < end; i++)
            {
                total += p[i];
                nonEmpty += p[i] > 0 ? 1 : 0;
            }

            for (var i = start; i < end; i++)
            {
                q[i] = p[i] > 0 ? total / nonEmpty : 0;
            }
        }

        p[0] += prefix[a] - prefix[f.First];
        p[n - 1] += prefix[f.Last + 1] - prefix[b + 1];
        double pSum = 0, qSum = 0;
        for (var i = 0; i < n; i++)
        {
            pSum += p[i];
            qSum += q[i];
        }

        const double epsilon = 1e-4; // smoothing for bins Q leaves empty (ORT's smooth_distribution)
        double kl = 0;
        for (var i = 0; i < n; i++)
        {
            if (p[i] > 0)
            {
                var pi = p[i] / pSum;
                var qi = q[i] > 0 ? q[i] / qSum : epsilon / pSum;
                kl += pi * Math.Log(pi / qi);
            }
        }

        return kl;
    }
}
