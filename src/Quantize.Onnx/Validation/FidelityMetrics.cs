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
/// </summary>
public sealed class FidelityMetrics
{
    private readonly SqnrAccumulator _sqnr = new();
    private double _noise;
    private long _count;
    private double _peak;
    private double _maxError;
    private double _cosineSum;
    private int _samples;
    private long _rows;
    private long _agree;

    /// <param name="lastAxis">Size of the output's last axis (classes for top-1 agreement).</param>
    public void Add(ReadOnlySpan<float> fp32, ReadOnlySpan<float> int8, int lastAxis)
    {
        if (fp32.Length != int8.Length)
        {
            throw new ArgumentException("FP32 and INT8 outputs differ in size.", nameof(int8));
        }

        _sqnr.Add(fp32, int8);
        double dot = 0, aa = 0, bb = 0;
        for (var i = 0; i < fp32.Length; i++)
        {
            double a = fp32[i], b = int8[i];
            var d = Math.Abs(a - b);
            _noise += d * d;
            _maxError = Math.Max(_maxError, d);
            _peak = Math.Max(_peak, Math.Abs(a));
            dot += a * b;
            aa += a * a;
            bb += b * b;
        }

        _count += fp32.Length;
        _cosineSum += aa == 0 && bb == 0 ? 1 : aa == 0 || bb == 0 ? 0 : dot / Math.Sqrt(aa * bb);
        _samples++;
        if (lastAxis >= 2 && fp32.Length % lastAxis == 0)
        {
            for (var r = 0; r < fp32.Length / lastAxis; r++)
            {
                _rows++;
                if (ArgMax(fp32.Slice(r * lastAxis, lastAxis)) == ArgMax(int8.Slice(r * lastAxis, lastAxis)))
                {
                    _agree++;
                }
            }
        }
    }

    public int Samples => _samples;

    public double Sqnr => _sqnr.Decibels;

    public double Cosine => _samples == 0 ? double.NaN : _cosineSum / _samples;

    public double Psnr => _noise == 0 ? double.PositiveInfinity : 10 * Math.Log10(_peak * _peak / (_noise / _count));

    public double MaxAbsError => _maxError;

    /// <summary>NaN when the output has no class axis (last axis &lt; 2).</summary>
    public double Top1Agreement => _rows == 0 ? double.NaN : 100.0 * _agree / _rows;

    /// <summary>Every fidelity metric by name (top1-agreement only for outputs with a class axis).</summary>
    public IReadOnlyDictionary<string, double> Values()
    {
        var values = new SortedDictionary<string, double>(StringComparer.Ordinal)
        {
            ["sqnr"] = Sqnr,
            ["cosine"] = Cosine,
            ["psnr"] = Psnr,
            ["max-abs-error"] = MaxAbsError,
        };
        if (_rows > 0)
        {
            values["top1-agreement"] = Top1Agreement;
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
}
