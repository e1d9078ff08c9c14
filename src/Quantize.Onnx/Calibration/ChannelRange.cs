namespace Quantize.Onnx.Calibration;

/// <summary>The observed range of every channel (axis 1) of one tensor over the calibration set.</summary>
public sealed record ChannelRange(float[] Min, float[] Max)
{
    /// <summary>The range of the whole tensor.</summary>
    public TensorRange Overall => new(Min.DefaultIfEmpty(0f).Min(), Max.DefaultIfEmpty(0f).Max());

    public void Union(ReadOnlySpan<float> min, ReadOnlySpan<float> max)
    {
        for (var c = 0; c < Min.Length && c < min.Length; c++)
        {
            Min[c] = Math.Min(Min[c], min[c]);
            Max[c] = Math.Max(Max[c], max[c]);
        }
    }
}
