namespace Quantize.Onnx.Validation;

/// <summary>
/// INT8-vs-FP32 fidelity of one output, accumulated sample by sample (no ground truth needed):
/// <list type="bullet">
/// <item><c>sqnr</c>: 10·log10(Σ fp32² / Σ (fp32 − int8)²) over every element of every sample, dB;</item>
/// <item><c>cosine</c>: cosine similarity of the flattened outputs, averaged over samples (1 when both are zero);</item>
/// <item><c>psnr</c>: 10·log10(peak² / MSE) with peak = max |fp32| over the set, MSE over every element, dB;</item>
/// <item><c>max-abs-error</c>: max |fp32 − int8|;</item>
/// <item><c>top&lt;k&gt;-agreement</c>: % of rows (class axis = last axis; for [1, K] outputs, of samples) where FP32's top class is
/// among INT8's k best (top1-agreement: INT8 picks FP32's class); reported for k = 1 and for each k below the class count that is
/// in <see cref="TopK.Reported"/> or asked for.</item>
/// </list>
/// Each sample's contribution is kept (a few numbers), so the metrics can be recomputed on any
/// resample of the samples (<see cref="Values(IReadOnlyList{int})"/>, for the bootstrap) without running the models again.
/// </summary>
public sealed class FidelityMetrics
{
    private readonly List<SampleFidelity> _samples = [];
    private readonly int[] _topK;

    /// <param name="topK">The k of the top-k agreements to measure (default <see cref="TopK.Reported"/>).</param>
    public FidelityMetrics(IReadOnlyList<int>? topK = null) => _topK = [.. topK ?? TopK.Reported];

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
        long rows = 0;
        var agree = new long[_topK.Length];
        var classes = lastAxis >= 2 && fp32.Length % lastAxis == 0 ? lastAxis : 0;
        for (var r = 0; classes > 0 && r < fp32.Length / classes; r++)
        {
            rows++;
            var reference = ArgMax(fp32.Slice(r * classes, classes));
            for (var k = 0; k < _topK.Length; k++)
            {
                if (TopK.Contains(int8.Slice(r * classes, classes), reference, _topK[k]))
                {
                    agree[k]++;
                }
            }
        }

        _samples.Add(new SampleFidelity(signal, noise, fp32.Length, peak, maxError, cosine, rows, classes, agree));
    }

    public int Samples => _samples.Count;

    public double Sqnr => Values()["sqnr"];

    public double Cosine => Values()["cosine"];

    public double Psnr => Values()["psnr"];

    public double MaxAbsError => Values()["max-abs-error"];

    /// <summary>NaN when the output has no class axis (last axis &lt; 2).</summary>
    public double Top1Agreement => Values().TryGetValue("top1-agreement", out var v) ? v : double.NaN;

    /// <summary>Every fidelity metric by name (top-k agreements only for outputs with a class axis of more than k classes).</summary>
    public IReadOnlyDictionary<string, double> Values() => Values(Enumerable.Range(0, _samples.Count).ToArray());

    /// <summary>The metrics over the given samples (indices into the samples added, repeats allowed).</summary>
    public IReadOnlyDictionary<string, double> Values(IReadOnlyList<int> samples)
    {
        double signal = 0, noise = 0, peak = 0, maxError = 0, cosine = 0;
        long count = 0, rows = 0;
        var agree = new long[_topK.Length];
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
            for (var k = 0; k < agree.Length; k++)
            {
                agree[k] += s.Agree[k];
            }
        }

        var values = new SortedDictionary<string, double>(StringComparer.Ordinal)
        {
            ["sqnr"] = noise == 0 ? double.PositiveInfinity : 10 * Math.Log10(signal / noise),
            ["cosine"] = samples.Count == 0 ? double.NaN : cosine / samples.Count,
            ["psnr"] = noise == 0 ? double.PositiveInfinity : 10 * Math.Log10(peak * peak / (noise / count)),
            ["max-abs-error"] = maxError,
        };
        var classes = _samples.Count == 0 ? 0 : _samples.Max(s => s.Classes);
        for (var k = 0; k < _topK.Length; k++)
        {
            if (classes > _topK[k] || (_topK[k] == 1 && classes >= 2))
            {
                values[TopK.Name(_topK[k], agreement: true)] = rows == 0 ? double.NaN : 100.0 * agree[k] / rows;
            }
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

    private readonly record struct SampleFidelity(double Signal, double Noise, long Count, double Peak, double MaxError, double Cosine, long Rows, int Classes, long[] Agree);
}
