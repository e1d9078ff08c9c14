namespace Quantize.Onnx.Validation;

/// <summary>Signal-to-quantization-noise ratio accumulated over outputs of many samples.</summary>
public sealed class SqnrAccumulator
{
    private double _signal;
    private double _noise;

    public void Add(ReadOnlySpan<float> reference, ReadOnlySpan<float> actual)
    {
        for (var i = 0; i < reference.Length; i++)
        {
            double r = reference[i];
            var d = r - actual[i];
            _signal += r * r;
            _noise += d * d;
        }
    }

    /// <summary>10·log10(Σref² / Σ(ref−actual)²) in dB; +∞ when identical.</summary>
    public double Decibels => _noise == 0 ? double.PositiveInfinity : 10 * Math.Log10(_signal / _noise);
}
