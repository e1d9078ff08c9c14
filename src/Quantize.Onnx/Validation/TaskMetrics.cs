namespace Quantize.Onnx.Validation;

/// <summary>
/// Task metrics of one model (FP32 or INT8) on one output against ground truth, accumulated sample by sample:
/// <list type="bullet">
/// <item><c>psnr</c>: the output is treated as an image in [0, 1]: output and expected are clipped to [0, 1],
/// PSNR = 10·log10(1 / MSE) per sample (at most 100 dB), averaged over samples, dB;</item>
/// <item><c>mse</c>, <c>mae</c>: mean squared / absolute error over every element of every sample (no clipping);</item>
/// <item><c>top1</c>: accuracy in % of rows (argmax over the last axis); the expected class is the argmax of
/// expected one-hot/probabilities, or the value itself when expected holds class indices (one per row);</item>
/// <item><c>precision</c>, <c>recall</c>, <c>f1</c>: binary, output and expected positive when ≥ 0.5, counted over
/// every element, in % (0/0 counts as 100 %).</item>
/// </list>
/// Each sample's contribution is kept (a few numbers), so the metrics can be recomputed on any resample of
/// the samples (<see cref="Values(IReadOnlyList{int})"/>, for the bootstrap) without running the models again.
/// </summary>
public sealed class TaskMetrics
{
    public const double MaxPsnr = 100;

    private readonly List<SampleTask> _samples = [];

    /// <param name="output">The model's output on one sample.</param>
    /// <param name="expected">Ground truth: same size as the output, or one class index per row when <paramref name="labels"/>.</param>
    /// <param name="lastAxis">Size of the output's last axis.</param>
    /// <param name="labels">Expected holds class indices, not values.</param>
    public void Add(ReadOnlySpan<float> output, ReadOnlySpan<float> expected, int lastAxis, bool labels)
    {
        long rows = 0, correct = 0;
        if (labels)
        {
            for (var r = 0; r < expected.Length; r++)
            {
                rows++;
                if (FidelityMetrics.ArgMax(output.Slice(r * lastAxis, lastAxis)) == (int)Math.Round(expected[r]))
                {
                    correct++;
                }
            }

            _samples.Add(new SampleTask(false, 0, 0, 0, 0, rows, correct, 0, 0, 0));
            return;
        }

        if (output.Length != expected.Length)
        {
            throw new ArgumentException("Output and expected differ in size.", nameof(expected));
        }

        double clipped = 0, squared = 0, absolute = 0;
        long tp = 0, fp = 0, fn = 0;
        for (var i = 0; i < output.Length; i++)
        {
            double o = output[i], e = expected[i];
            var d = o - e;
            squared += d * d;
            absolute += Math.Abs(d);
            var c = Math.Clamp(o, 0, 1) - Math.Clamp(e, 0, 1);
            clipped += c * c;
            var p = o >= 0.5;
            var t = e >= 0.5;
            if (p && t)
            {
                tp++;
            }
            else if (p)
            {
                fp++;
            }
            else if (t)
            {
                fn++;
            }
        }

        var mse = output.Length == 0 ? 0 : clipped / output.Length;
        var psnr = mse == 0 ? MaxPsnr : Math.Min(MaxPsnr, 10 * Math.Log10(1 / mse));
        if (lastAxis >= 2 && output.Length % lastAxis == 0)
        {
            for (var r = 0; r < output.Length / lastAxis; r++)
            {
                rows++;
                if (FidelityMetrics.ArgMax(output.Slice(r * lastAxis, lastAxis)) == FidelityMetrics.ArgMax(expected.Slice(r * lastAxis, lastAxis)))
                {
                    correct++;
                }
            }
        }

        _samples.Add(new SampleTask(true, psnr, squared, absolute, output.Length, rows, correct, tp, fp, fn));
    }

    public int Samples => _samples.Count;

    public double Psnr => Get("psnr");

    public double Mse => Get("mse");

    public double Mae => Get("mae");

    public double Top1 => Get("top1");

    public double Precision => Get("precision");

    public double Recall => Get("recall");

    public double F1 => Get("f1");

    /// <summary>Every task metric that applies (top1 only with a class axis; the others only with dense expected values).</summary>
    public IReadOnlyDictionary<string, double> Values() => Values(Enumerable.Range(0, _samples.Count).ToArray());

    /// <summary>The metrics over the given samples (indices into the samples added, repeats allowed).</summary>
    public IReadOnlyDictionary<string, double> Values(IReadOnlyList<int> samples)
    {
        double psnrSum = 0, squared = 0, absolute = 0;
        long count = 0, rows = 0, correct = 0, tp = 0, fp = 0, fn = 0;
        foreach (var i in samples)
        {
            var s = _samples[i];
            psnrSum += s.Psnr;
            squared += s.Squared;
            absolute += s.Absolute;
            count += s.Count;
            rows += s.Rows;
            correct += s.Correct;
            tp += s.Tp;
            fp += s.Fp;
            fn += s.Fn;
        }

        var values = new SortedDictionary<string, double>(StringComparer.Ordinal);
        if (_samples.Any(s => s.Dense))
        {
            var precision = tp + fp == 0 ? 100 : 100.0 * tp / (tp + fp);
            var recall = tp + fn == 0 ? 100 : 100.0 * tp / (tp + fn);
            values["psnr"] = samples.Count == 0 ? double.NaN : psnrSum / samples.Count;
            values["mse"] = count == 0 ? double.NaN : squared / count;
            values["mae"] = count == 0 ? double.NaN : absolute / count;
            values["precision"] = precision;
            values["recall"] = recall;
            values["f1"] = precision + recall == 0 ? 0 : 2 * precision * recall / (precision + recall);
        }

        if (_samples.Any(s => s.Rows > 0))
        {
            values["top1"] = rows == 0 ? double.NaN : 100.0 * correct / rows;
        }

        return values;
    }

    /// <summary>One metric over every sample added; NaN when it does not apply to this output.</summary>
    private double Get(string metric) => Values().TryGetValue(metric, out var value) ? value : double.NaN;

    private readonly record struct SampleTask(bool Dense, double Psnr, double Squared, double Absolute, long Count, long Rows, long Correct, long Tp, long Fp, long Fn);
}
