namespace Quantize.Onnx.Calibration;

/// <summary>The observed value range of one tensor over the calibration set.</summary>
public readonly record struct TensorRange(float Min, float Max)
{
    public TensorRange Union(TensorRange other) => new(Math.Min(Min, other.Min), Math.Max(Max, other.Max));

    public bool IsFinite => float.IsFinite(Min) && float.IsFinite(Max);
}
