namespace Quantize.Onnx.Validation;

/// <summary>
/// INT8-vs-FP32 fidelity of one output, accumulated sample by sample (no ground truth needed):
/// <list type="bullet">
/// <item><c>sqnr</c>: 10·log10(Σ fp32² / Σ (fp32 − int8)²) over every element of every sample, dB;</item>
/// <item><c>cosine</c>: cosine similarity of the flattened outputs, averaged over samples (1 when both are zero);</item>
/// <item><c>psnr</c>: 10·log10(peak² / MSE) with peak = max |fp32| over the set, MSE over every element, dB;</item>
/// <item><c>max-abs-error</c>: max |fp32 − int8|;</item>
/// <item><c>top1-agreement</c>: % of rows (argmax over the last axis; for [1, K] outputs, of samples) where INT8 picks FP32's class.</item>
/// </list>
/// Each sample's contribution is kept (a few numbers), so the metrics can be recomputed on any
/// resample of the samples (<see cref="Values(IReadOnlyList{int})"/>, for the bootstrap) without running the models again.
/// </summary>
public sealed class FidelityMetrics
{
    private readonly List<SampleFidelity> _samples = [];

    /// <param name="lastAxis">Size of the output's last axis (classes for top-1 agreement).</param>
    public void Add(ReadOnlySpan<float> fp32, ReadOnlySpan<float> int8, int lastAxis)
    {
        if (fp32.Length != int8.Length)
        {
            throw new ArgumentException("FP32 and INT8 outputs differ in size.", nameof(int8));
        }

        double signal = 0, noise = 0, peak = 0, maxError = 0, dot = 0, aa = 0, bb = 0;
        for (var i = 0; i < fp32.Length; i++)
        {
            double a = fp32[i], b = int8[i];
            var d = a - b;
            signal += a * a;
            noise += d * d;
            maxError = Math.Max(maxError, Math.Abs(d));
            peak = Math.Max(peak, Math.Abs(a));
            dot += a * b;
            aa += a * a;
            bb += b * b;
        }

        var cosine = aa == 0 && bb == 0 ? 1 : aa == 0 || bb == 0 ? 0 : dot / Math.Sqrt(aa * bb);
        long rows = 0, agree = 0;
        if (lastAxis >= 2 && fp32.Length % lastAxis == 0)
        {
            for (var r = 0; r < fp32.Length / lastAxis; r++)
            {
                rows++;
                if (ArgMax(fp32.Slice(r * lastAxis, lastAxis)) == ArgMax(int8.Slice(r * lastAxis, lastAxis)))
                {
                    agree++;
                }
            }
        }

        _samples.Add(new SampleFidelity(signal, noise, fp32.Length, peak, maxError, cosine, rows, agree));
    }

    public int Samples => _samples.Count;

    public double Sqnr => Values()["sqnr"];

    public double Cosine => Values()["cosine"];

    public double Psnr => Values()["psnr"];

    public double MaxAbsError => Values()["max-abs-error"];

    /// <summary>NaN when the output has no class axis (last axis &lt; 2).</summary>
    public double Top1Agreement => Values().TryGetValue("top1-agreement", out var v) ? v : double.NaN;

    /// <summary>Every fidelity metric by name (top1-agreement only for outputs with a class axis).</summary>
    public IReadOnlyDictionary<string, double> Values() => Values(Enumerable.Range(0, _samples.Count).ToArray());

    /// <summary>The metrics over the given samples (indices into the samples added, repeats allowed).</summary>
    public IReadOnlyDictionary<string, double> Values(IReadOnlyList<int> samples)
    {
        double signal = 0, noise = 0, peak = 0, maxError = 0, cosine = 0;
        long count = 0, rows = 0, agree = 0;
        foreach (var i in samples)
        {
            var s = _samples[i];
            signal += s.Signal;
            noise += s.Noise;
            count += s.Count;
            peak = Math.Max(peak, s.Peak);
            maxError = Math.Max(maxError, s.MaxError);
            cosine += s.Cosine;
            rows += s.Rows;
            agree += s.Agree;
        }

        var values = new SortedDictionary<string, double>(StringComparer.Ordinal)
        {
            ["sqnr"] = noise == 0 ? double.PositiveInfinity : 10 * Math.Log10(signal / noise),
            ["cosine"] = samples.Count == 0 ? double.NaN : cosine / samples.Count,
            ["psnr"] = noise == 0 ? double.PositiveInfinity : 10 * Math.Log10(peak * peak / (noise / count)),
            ["max-abs-error"] = maxError,
        };
        if (_samples.Any(s => s.Rows > 0))
        {
            values["top1-agreement"] = rows == 0 ? double.NaN : 100.0 * agree / rows;
        }

        return values;
    }

    internal static int ArgMax(ReadOnlySpan<float> row)
    {
        var best = 0;
        for (var i = 1; i < row.Length; i++)
        {
            if (row[i] > row[best])
            {
                best = i;
            }
        }

        return best;
    }

    private readonly record struct SampleFidelity(double Signal, double Noise, long Count, double Peak, double MaxError, double Cosine, long Rows, long Agree);
}
