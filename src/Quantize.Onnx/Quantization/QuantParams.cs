using Quantize.Onnx.Model.Proto;

namespace Quantize.Onnx.Quantization;

/// <summary>
/// Scale and zero point of one per-tensor quantization: real = (q - ZeroPoint) * Scale.
/// The integer grid always contains real 0 exactly, as ONNX requires for zero padding to be exact.
/// </summary>
internal readonly record struct QuantParams(float Scale, int ZeroPoint, QuantType Type)
{
    public int QMin => QuantMath.Limits(Type, symmetric: false).Min;

    public int QMax => QuantMath.Limits(Type, symmetric: false).Max;

    /// <summary>The real values the integer grid can represent.</summary>
    public (float Low, float High) RepresentableRange => ((QMin - ZeroPoint) * Scale, (QMax - ZeroPoint) * Scale);

    public TensorProto.Types.DataType OnnxType => QuantMath.OnnxType(Type);
}

internal static class QuantMath
{
    /// <summary>
    /// The integer range of a type. <paramref name="reduceRange"/> (weights only) gives 7-bit grids,
    /// [−63, 63] and [0, 127], so that on x86 without VNNI two u8×s8 products summed in 16 bits
    /// (vpmaddubsw) cannot saturate: 2 × 255 × 63 &lt; 32767.
    /// </summary>
    public static (int Min, int Max) Limits(QuantType type, bool symmetric, bool reduceRange = false) => (type, symmetric, reduceRange) switch
    {
        (QuantType.UInt8, _, true) => (0, 127),
        (QuantType.Int8, _, true) => (-63, 63),
        (QuantType.UInt8, _, _) => (0, 255),
        // Symmetric int8 drops -128 so that the grid is symmetric around zero (as ORT's quantizer does).
        (QuantType.Int8, true, _) => (-127, 127),
        (QuantType.Int8, false, _) => (-128, 127),
        _ => throw new ArgumentOutOfRangeException(nameof(type)),
    };

    public static TensorProto.Types.DataType OnnxType(QuantType type) =>
        type == QuantType.UInt8 ? TensorProto.Types.DataType.Uint8 : TensorProto.Types.DataType.Int8;

    /// <summary>Parameters for a calibrated range; the range is first widened to contain zero.</summary>
    public static QuantParams ForRange(float min, float max, QuantType type, bool symmetric)
    {
        min = Math.Min(min, 0f);
        max = Math.Max(max, 0f);
        var (qmin, qmax) = Limits(type, symmetric);
        if (symmetric)
        {
            var absMax = Math.Max(-min, max);
            var symScale = absMax > 0 ? 2 * absMax / (qmax - qmin) : 1f;
            return new QuantParams(symScale, (int)MathF.Round((qmin + qmax) / 2f, MidpointRounding.AwayFromZero), type);
        }

        if (max - min <= 0)
        {
            return new QuantParams(1f, type == QuantType.UInt8 ? 0 : 0, type);
        }

        var scale = (max - min) / (qmax - qmin);
        var zeroPoint = (int)Math.Clamp(MathF.Round(qmin - (min / scale)), qmin, qmax);
        return new QuantParams(scale, zeroPoint, type);
    }

    /// <summary>Round half to even and saturate, as ONNX QuantizeLinear does.</summary>
    public static int Quantize(float value, float scale, int zeroPoint, int qmin, int qmax) =>
        (int)Math.Clamp(MathF.Round(value / scale, MidpointRounding.ToEven) + zeroPoint, qmin, qmax);
}
