using System.Runtime.InteropServices;
using Quantize.Onnx.Model;
using Quantize.Onnx.Model.Proto;

namespace Quantize.Onnx.Quantization;

/// <summary>A quantized constant: integer data plus one scale per channel (or one for the tensor).</summary>
internal sealed record QuantizedConstant(TensorProto Data, float[] Scales, int ZeroPoint, int? Axis);

/// <summary>
/// Quantizes constant tensors: weights symmetric (zero point 0 for int8, as QLinearConv needs one
/// zero point for all channels), optionally per output channel; bias to int32 with
/// scale = input scale × weight scale, which is the scale ORT's fused kernels assume.
/// </summary>
internal static class WeightQuantizer
{
    // Keep |bias / scale| inside int32 with a margin (ORT's quantizer uses the same 2/(2^32-2) bound).
    private const double Int32Headroom = 2147483647.0 / 1.0001;

    /// <param name="saturationSafe">
    /// How the weight's K dimension runs, when its layer must not saturate on x86 CPUs without VNNI: each channel's scale
    /// is then at least what <see cref="SaturationBound"/> proves safe. Null: the plain 8-bit grid.
    /// </param>
    public static QuantizedConstant QuantizeWeight(string name, TensorProto weight, QuantType type, int? axis, float[]? minimumScales, bool reduceRange = false, KOrder? saturationSafe = null)
    {
        var values = TensorValues.ReadFloats(weight);
        var dims = weight.Dims.ToArray();
        var (qmin, qmax) = QuantMath.Limits(type, symmetric: true, reduceRange);
        var channels = axis is { } a ? (int)dims[a] : 1;
        var inner = axis is { } a2 ? dims.Skip(a2 + 1).Aggregate(1L, (x, y) => x * y) : values.Length;
        var absMax = new float[channels];
        for (long i = 0; i < values.Length; i++)
        {
            var c = (int)(i / inner % channels);
            absMax[c] = Math.Max(absMax[c], Math.Abs(values[i]));
        }

        var pairSums = saturationSafe is { } order && type == QuantType.Int8 ? PairSumsPerChannel(values, dims, order, axis, channels) : null;
        var scales = new float[channels];
        for (var c = 0; c < channels; c++)
        {
            scales[c] = absMax[c] > 0 ? 2 * absMax[c] / (qmax - qmin) : 1f;
            if (pairSums is not null && absMax[c] > 0)
            {
                scales[c] = Math.Max(scales[c], SaturationBound.SafeScale(pairSums[c]));
            }

            if (minimumScales is not null && scales[c] < minimumScales[c])
            {
                scales[c] = minimumScales[c];
            }
        }

        var zeroPoint = (qmin + qmax + 1) / 2; // 0 for int8 [-127,127], 128 for uint8 [0,255]
        if (type == QuantType.Int8)
        {
            zeroPoint = 0;
        }

        // Straight into the 8-bit bytes (an int[] would be as large as the float weight: large models read them one at a time).
        var quantized = new byte[values.Length];
        for (long i = 0; i < values.Length; i++)
        {
            var c = (int)(i / inner % channels);
            quantized[i] = unchecked((byte)QuantMath.Quantize(values[i], scales[c], zeroPoint, qmin, qmax)); // int8: two's complement bits
        }

        var data = type == QuantType.Int8
            ? TensorValues.FromInt8(name, dims, MemoryMarshal.Cast<byte, sbyte>(quantized.AsSpan()))
            : TensorValues.FromUInt8(name, dims, quantized);
        return new QuantizedConstant(data, scales, zeroPoint, axis);
    }

    /// <summary>The smallest weight scale per channel that keeps the int32 bias in range.</summary>
    public static float[] MinimumWeightScalesForBias(float[] bias, float inputScale, int channels)
    {
        var minimum = new float[channels];
        for (var c = 0; c < channels; c++)
        {
            var b = channels == 1 ? bias.Max(Math.Abs) : Math.Abs(bias[c]);
            minimum[c] = (float)(b / (Int32Headroom * inputScale));
        }

        return minimum;
    }

    public static QuantizedConstant QuantizeBias(string name, TensorProto bias, float inputScale, float[] weightScales)
    {
        var values = TensorValues.ReadFloats(bias);
        var scales = new float[weightScales.Length];
        var quantized = new int[values.Length];
        for (var i = 0; i < values.Length; i++)
        {
            var c = weightScales.Length == 1 ? 0 : i;
            scales[c] = inputScale * weightScales[c];
            quantized[i] = (int)Math.Clamp(Math.Round(values[i] / (double)scales[c], MidpointRounding.ToEven), int.MinValue, int.MaxValue);
        }

        var data = TensorValues.FromInt32(name, bias.Dims.ToArray(), quantized);
        return new QuantizedConstant(data, scales, 0, weightScales.Length == 1 ? null : 0);
    }

    /// <summary>A constant operand of Add/Mul/Concat: quantized like an activation (same type as the other inputs).</summary>
    public static (QuantizedConstant Constant, QuantParams Params) QuantizeAsActivation(string name, TensorProto constant, QuantType type)
    {
        var values = TensorValues.ReadFloats(constant);
        var qp = QuantMath.ForRange(values.DefaultIfEmpty(0f).Min(), values.DefaultIfEmpty(0f).Max(), type, symmetric: false);
        var (qmin, qmax) = QuantMath.Limits(type, symmetric: false);
        var q = values.Select(v => QuantMath.Quantize(v, qp.Scale, qp.ZeroPoint, qmin, qmax)).ToArray();
        var dims = constant.Dims.ToArray();
        var data = type == QuantType.Int8
            ? TensorValues.FromInt8(name, dims, q.Select(v => (sbyte)v).ToArray())
            : TensorValues.FromUInt8(name, dims, q.Select(v => (byte)v).ToArray());
        return (new QuantizedConstant(data, [qp.Scale], qp.ZeroPoint, null), qp);
    }

    /// <summary>The pair bound of each quantization channel: per output channel when the axis is the output's, else the whole tensor's.</summary>
    private static float[] PairSumsPerChannel(float[] values, long[] dims, KOrder order, int? axis, int channels)
    {
        var perOutput = SaturationBound.PairSums(values, dims, order);
        var outputAxis = order == KOrder.Columns ? dims.Length - 1 : 0;
        return axis == outputAxis && perOutput.Length == channels ? perOutput : Enumerable.Repeat(perOutput.DefaultIfEmpty(0f).Max(), channels).ToArray();
    }
}
