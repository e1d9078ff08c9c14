using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Quantize.Onnx.Model.Proto;
using Quantize.Onnx.Samples;

namespace Quantize.Onnx.Preparation;

/// <summary>
/// Refuses a model whose activations would be absurdly large on the calibration samples, before ONNX
/// Runtime runs it: a valid-looking model can ask for terabytes at run time (a <c>Pad</c> of 262,151
/// pixels, a huge <c>Resize</c> scale or <c>Expand</c> shape), which ORT would try to allocate and then
/// compute on for hours. ORT's shape inference, with the graph inputs fixed to the first sample's
/// shapes, gives every tensor whose shape follows from them; none may exceed <see cref="MaxTensorBytes"/>.
/// Tensors whose shapes depend on computed values stay unknown and are not checked.
/// </summary>
internal static class ActivationBudget
{
    /// <summary>Far above any activation of a model a build quantizes (a 1024×1024 segmentation net's are hundreds of MB).</summary>
    public const long MaxTensorBytes = 4L << 30;

    public static void Check(ModelProto model, IReadOnlyList<string> inputNames, InputSample sample, string modelPath)
    {
        var probe = model.Clone();
        for (int i = 0; i < inputNames.Count; i++)
        {
            var input = probe.Graph.Input.FirstOrDefault(v => v.Name == inputNames[i]);
            if (input?.Type?.TensorType is not { } tensorType)
            {
                continue;
            }

            tensorType.Shape = new TensorShapeProto();
            foreach (long dim in sample.Inputs[i].Shape)
            {
                tensorType.Shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = dim });
            }
        }

        TensorTypes types;
        try
        {
            types = TensorTypes.Infer(probe);
        }
        catch (OnnxRuntimeException)
        {
            return; // a model ORT cannot load: preparation reports it, with the original shapes (QNT1005)
        }

        foreach (var name in probe.Graph.Node.SelectMany(n => n.Output).Where(o => o.Length > 0))
        {
            if (types[name] is not { Shape: { } shape } type || shape.Any(d => d is null) || (TryGetBytes(type.ElementType, shape, out long bytes) && bytes <= MaxTensorBytes))
            {
                continue;
            }

            throw new QuantizeException(ErrorCodes.ActivationsTooLarge, modelPath,
                $"Tensor '{name}' of '{modelPath}' would have shape [{string.Join(", ", shape)}] on calibration sample '{sample.Source}', " +
                $"over {MaxTensorBytes >> 30} GB: a size in the model (e.g. Pad pads, Resize scales, Expand or Tile sizes) is absurd. Check the model, or calibrate with smaller samples.");
        }
    }

    private static bool TryGetBytes(TensorElementType type, IReadOnlyList<long?> shape, out long bytes)
    {
        bytes = type switch
        {
            TensorElementType.Double or TensorElementType.Int64 or TensorElementType.UInt64 => 8,
            TensorElementType.Float or TensorElementType.Int32 or TensorElementType.UInt32 => 4,
            TensorElementType.Float16 or TensorElementType.BFloat16 or TensorElementType.Int16 or TensorElementType.UInt16 => 2,
            _ => 1,
        };
        try
        {
            foreach (long? d in shape)
            {
                bytes = checked(bytes * d!.Value);
            }

            return true;
        }
        catch (OverflowException)
        {
            return false;
        }
    }
}
