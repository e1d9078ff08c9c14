namespace Quantize.Onnx.Validation;

/// <summary>
/// Task metrics of one model (FP32 or INT8) on one output against ground truth, accumulated sample by sample:
/// <list type="bullet">
/// <item><c>psnr</c>: the output is treated as an image in [0, 1]: output and expected are clipped to [0, 1],
/// PSNR = 10·log10(1 / MSE) per sample (at most 100 dB), averaged over samples, dB;</item>
/// <item><c>mse</c>, <c>mae</c>: mean squared / absolute error over every element of every sample (no clipping);</item>
/// <item><c>top&lt;k&gt;</c>: accuracy in % of rows (class axis = last axis) whose expected class is among the output's k
/// best (top1: the arg-max); the expected class is the arg-max of expected one-hot/probabilities, or the value itself
/// when expected holds class indices (one per row); reported for k = 1 and each k below the class count that is in
/// <see cref="TopK.Reported"/> or asked for;</item>
/// <item><c>precision</c>, <c>recall</c>, <c>f1</c>: binary, output and expected positive when ≥ the binary threshold
/// (default 0.5), counted over every element, in % (0/0 counts as 100 %).</item>
/// </list>
/// Each sample's contribution is kept (a few numbers), so the metrics can be recomputed on any resample of
/// the samples (<see cref="Values(IReadOnlyList{int})"/>, for the bootstrap) without running the models again.
/// </summary>
public sealed class TaskMetrics
{
    public const double MaxPsnr = 100;

    private readonly List<SampleTask> _samples = [];
    private readonly int[] _topK;
    private readonly double _threshold;

    /// <param name="topK">The k of the top-k accuracies to measure (default <see cref="TopK.Reported"/>).</param>
    /// <param name="binaryThreshold">Output and expected values at or above it are positives for precision/recall/F1.</param>
    public TaskMetrics(IReadOnlyList<int>? topK = null, double binaryThreshold = 0.5)
    {
        _topK = [.. topK ?? TopK.Reported];
        _threshold = binaryThreshold;
    }

    /// <param name="output">The model's output on one sample.</param>
    /// <param name="expected">Ground truth: same size as the output, or one class index per row when <paramref name="labels"/>.</param>
    /// <param name="lastAxis">Size of the output's last axis.</param>
    /// <param name="labels">Expected holds class indices, not values.</param>
    public void Add(ReadOnlySpan<float> output, ReadOnlySpan<float> expected, int lastAxis, bool labels)
    {
        long rows = 0;
        var correct = new long[_topK.Length];
        if (labels)
        {
            for (var r = 0; r < expected.Length; r++)
            {
                rows++;
                CountTopK(output.Slice(r * lastAxis, lastAxis), (int)Math.Round(expected[r]), correct);
            }

            _samples.Add(new SampleTask(false, 0, 0, 0, 0, rows, lastAxis, correct, 0, 0, 0));
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
            var p = o >= _threshold;
            var t = e >= _threshold;
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
        var classes = lastAxis >= 2 && output.Length % lastAxis == 0 ? lastAxis : 0;
        for (var r = 0; classes > 0 && r < output.Length / classes; r++)
        {
            rows++;
            CountTopK(output.Slice(r * classes, classes), FidelityMetrics.ArgMax(expected.Slice(r * classes, classes)), correct);
        }

        _samples.Add(new SampleTask(true, psnr, squared, absolute, output.Length, rows, classes, correct, tp, fp, fn));
    }

    private void CountTopK(ReadOnlySpan<float> row, int expectedClass, long[] correct)
    {
        for (var k = 0; k < _topK.Length; k++)
        {
            if (TopK.Contains(row, expectedClass, _topK[k]))
            {
                correct[k]++;
            }
        }
    }

    public int Samples => _samples.Count;

    public double Psnr => Get("psnr");

    public double Mse => Get("mse");

    public double Mae => Get("mae");

    public double Top1 => Get("top1");

    public double Precision => Get("precision");

    public double Recall => Get("recall");

    public double F1 => Get("f1");

    /// <summary>Every task metric that applies (top-k only with a class axis of more than k classes; the others only with dense expected values).</summary>
    public IReadOnlyDictionary<string, double> Values() => Values(Enumerable.Range(0, _samples.Count).ToArray());

    /// <summary>The metrics over the given samples (indices into the samples added, repeats allowed).</summary>
    public IReadOnlyDictionary<string, double> Values(IReadOnlyList<int> samples)
    {
        double psnrSum = 0, squared = 0, absolute = 0;
        long count = 0, rows = 0, tp = 0, fp = 0, fn = 0;
        var correct = new long[_topK.Length];
        foreach (var i in samples)
        {
            var s = _samples[i];
            psnrSum += s.Psnr;
            squared += s.Squared;
            absolute += s.Absolute;
            count += s.Count;
            rows += s.Rows;
            for (var k = 0; k < correct.Length; k++)
            {
                correct[k] += s.Correct[k];
            }

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

        var classes = _samples.Count == 0 ? 0 : _samples.Max(s => s.Classes);
        for (var k = 0; k < _topK.Length; k++)
        {
            if (classes > _topK[k] || (_topK[k] == 1 && classes >= 2))
            {
                values[TopK.Name(_topK[k], agreement: false)] = rows == 0 ? double.NaN : 100.0 * correct[k] / rows;
            }
        }

        return values;
    }

    /// <summary>One metric over every sample added; NaN when it does not apply to this output.</summary>
    private double Get(string metric) => Values().TryGetValue(metric, out var value) ? value : double.NaN;

    private readonly record struct SampleTask(bool Dense, double Psnr, double Squared, double Absolute, long Count, long Rows, int Classes, long[] Correct, long Tp, long Fp, long Fn);
}
