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
/// </summary>
public sealed class TaskMetrics
{
    public const double MaxPsnr = 100;

    private double _psnrSum;
    private double _squared;
    private double _absolute;
    private long _count;
    private int _samples;
    private long _rows;
    private long _correct;
    private long _tp;
    private long _fp;
    private long _fn;
    private bool _dense;

    /// <param name="output">The model's output on one sample.</param>
    /// <param name="expected">Ground truth: same size as the output, or one class index per row when <paramref name="labels"/>.</param>
    /// <param name="lastAxis">Size of the output's last axis.</param>
    /// <param name="labels">Expected holds class indices, not values.</param>
    public void Add(ReadOnlySpan<float> output, ReadOnlySpan<float> expected, int lastAxis, bool labels)
    {
        _samples++;
        if (labels)
        {
            for (var r = 0; r < expected.Length; r++)
            {
                _rows++;
                if (FidelityMetrics.ArgMax(output.Slice(r * lastAxis, lastAxis)) == (int)Math.Round(expected[r]))
                {
                    _correct++;
                }
            }

            return;
        }

        if (output.Length != expected.Length)
        {
            throw new ArgumentException("Output and expected differ in size.", nameof(expected));
        }

        _dense = true;
        double clipped = 0;
        for (var i = 0; i < output.Length; i++)
        {
            double o = output[i], e = expected[i];
            var d = o - e;
            _squared += d * d;
            _absolute += Math.Abs(d);
            var c = Math.Clamp(o, 0, 1) - Math.Clamp(e, 0, 1);
            clipped += c * c;
            var p = o >= 0.5;
            var t = e >= 0.5;
            if (p && t)
            {
                _tp++;
            }
            else if (p)
            {
                _fp++;
            }
            else if (t)
            {
                _fn++;
            }
        }

        _count += output.Length;
        var mse = output.Length == 0 ? 0 : clipped / output.Length;
        _psnrSum += mse == 0 ? MaxPsnr : Math.Min(MaxPsnr, 10 * Math.Log10(1 / mse));
        if (lastAxis >= 2 && output.Length % lastAxis == 0)
        {
            for (var r = 0; r < output.Length / lastAxis; r++)
            {
                _rows++;
                if (FidelityMetrics.ArgMax(output.Slice(r * lastAxis, lastAxis)) == FidelityMetrics.ArgMax(expected.Slice(r * lastAxis, lastAxis)))
                {
                    _correct++;
                }
            }
        }
    }

    public int Samples => _samples;

    public double Psnr => _samples == 0 ? double.NaN : _psnrSum / _samples;

    public double Mse => _count == 0 ? double.NaN : _squared / _count;

    public double Mae => _count == 0 ? double.NaN : _absolute / _count;

    public double Top1 => _rows == 0 ? double.NaN : 100.0 * _correct / _rows;

    public double Precision => _tp + _fp == 0 ? 100 : 100.0 * _tp / (_tp + _fp);

    public double Recall => _tp + _fn == 0 ? 100 : 100.0 * _tp / (_tp + _fn);

    public double F1 => Precision + Recall == 0 ? 0 : 2 * Precision * Recall / (Precision + Recall);

    /// <summary>Every task metric that applies (top1 only with a class axis; the others only with dense expected values).</summary>
    public IReadOnlyDictionary<string, double> Values()
    {
        var values = new SortedDictionary<string, double>(StringComparer.Ordinal);
        if (_dense)
        {
            values["psnr"] = Psnr;
            values["mse"] = Mse;
            values["mae"] = Mae;
            values["precision"] = Precision;
            values["recall"] = Recall;
            values["f1"] = F1;
        }

        if (_rows > 0)
        {
            values["top1"] = Top1;
        }

        return values;
    }
}
