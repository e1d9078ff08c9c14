using Microsoft.ML.OnnxRuntime.Tensors;
using Quantize.Onnx.Model.Proto;
using Quantize.Onnx.Samples;
using Quantize.Onnx.Samples.Images;

namespace Quantize.Onnx.Quantization;

/// <summary>
/// One graph input that ships as uint8 image bytes (<see cref="QuantizationOptions.UInt8Inputs"/>): the image preprocessing
/// the samples declare, x = (u · Scale − Mean[c]) / Std[c], resolved against the input's shape.
/// </summary>
/// <param name="Layout">Where the channel axis is; <paramref name="Rank"/> 4 has a batch axis first.</param>
internal sealed record UInt8Input(string Name, ImageLayout Layout, int Rank, int Channels, double Scale, double[] Mean, double[] Std)
{
    /// <summary>
    /// The input's activation grid when bytes map onto it exactly: one mean and one std, and Mean/Scale an integer in
    /// [0, 255]. Then s = Scale/Std and zero point Mean/Scale give QuantizeLinear(x) = u for every x made from a byte u,
    /// so the shipped model (the byte read by the DequantizeLinear directly) computes what the measured one does. Null
    /// otherwise: the shipped model computes x in float (<see cref="UInt8FrontEnd"/>), up to float32 rounding.
    /// </summary>
    public QuantParams? ExactGrid(QuantType activationType)
    {
        if (activationType != QuantType.UInt8 || Mean.Distinct().Count() != 1 || Std.Distinct().Count() != 1)
        {
            return null;
        }

        var zeroPoint = Mean[0] / Scale;
        var rounded = Math.Round(zeroPoint);
        return Math.Abs(zeroPoint - rounded) <= 1e-6 && rounded is >= 0 and <= 255
            ? new QuantParams((float)(Scale / Std[0]), (int)rounded, QuantType.UInt8)
            : null;
    }

    /// <summary>Per channel, x = u · A[c] + B[c].</summary>
    public (float[] A, float[] B) Affine() => (
        Enumerable.Range(0, Channels).Select(c => (float)(Scale / Of(Std, c))).ToArray(),
        Enumerable.Range(0, Channels).Select(c => (float)(-Of(Mean, c) / Of(Std, c))).ToArray());

    private static double Of(double[] values, int channel) => values.Length == 1 ? values[0] : values[channel];

    /// <summary>
    /// Every graph input of <paramref name="model"/>, resolved against the image options (null: the defaults, scale
    /// 1/255). An input that is not float, or not image-like, is error <see cref="ErrorCodes.UInt8InputNotImage"/>.
    /// </summary>
    public static IReadOnlyDictionary<string, UInt8Input> Resolve(ModelProto model, ImageOptions? images, string modelPath)
    {
        var options = images ?? new ImageOptions();
        var result = new Dictionary<string, UInt8Input>(StringComparer.Ordinal);
        foreach (var spec in QuantizeSession.ModelInputs(model))
        {
            result[spec.Name] = Resolve(spec, options, modelPath);
        }

        return result;
    }

    private static UInt8Input Resolve(InputSpec spec, ImageOptions options, string modelPath)
    {
        string Why(string reason) => $"--uint8-inputs (QuantizeUInt8Inputs): model input '{spec.Name}' {spec.FormatShape()} cannot take image bytes: {reason} " +
            "uint8 inputs are for image inputs fed by the calibration folder's images; quantize without the option for this model.";

        if (spec.ElementType != TensorElementType.Float)
        {
            throw new QuantizeException(ErrorCodes.UInt8InputNotImage, modelPath, Why($"it takes {ElementTypes.Describe(spec.ElementType)}, not float32."));
        }

        if (!spec.RankKnown)
        {
            throw new QuantizeException(ErrorCodes.UInt8InputNotImage, modelPath, Why("it declares no shape, so the channel axis is unknown."));
        }

        ImageInputShape shape;
        try
        {
            shape = ImageInputShape.Resolve(spec, options, modelPath);
        }
        catch (QuantizeException e) when (e.Code == ErrorCodes.ImagePreprocessingMismatch)
        {
            throw new QuantizeException(ErrorCodes.UInt8InputNotImage, modelPath, Why(e.Message));
        }

        var scale = options.Scale ?? (1.0 / 255);
        return new UInt8Input(spec.Name, shape.Layout, spec.Dims.Count, shape.ChannelCount, scale, [.. options.Mean], [.. options.Std]);
    }

    /// <summary>The fixed activation grids of the inputs whose bytes map onto them exactly (planned before any other range).</summary>
    public static Dictionary<string, QuantParams> ExactGrids(IReadOnlyDictionary<string, UInt8Input>? inputs, QuantType activationType) =>
        inputs is null
            ? new(StringComparer.Ordinal)
            : inputs.Values.Select(i => (i.Name, Grid: i.ExactGrid(activationType))).Where(p => p.Grid is not null)
                .ToDictionary(p => p.Name, p => p.Grid!.Value, StringComparer.Ordinal);
}
