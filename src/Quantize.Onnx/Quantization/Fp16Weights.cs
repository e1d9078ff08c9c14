using Quantize.Onnx.Model;
using Quantize.Onnx.Model.Proto;

namespace Quantize.Onnx.Quantization;

/// <summary>How nodes that stay float store their weights.</summary>
public enum FloatPrecision
{
    Fp32,

    /// <summary>
    /// FLOAT16 initializers read through a Cast to float: half the bytes; ONNX Runtime folds the Cast when it
    /// loads the model, so on CPU the math (and the speed) stay FP32 and only the rounding of the weights changes.
    /// </summary>
    Fp16,
}

/// <summary>Stores the float weights of a model as FLOAT16 (<see cref="FloatPrecision.Fp16"/>).</summary>
internal static class Fp16Weights
{
    /// <summary>Smaller tensors (shapes, scalars, scales) stay FP32: they save nothing and may be read as attributes-like constants.</summary>
    private const int MinElements = 16;

    /// <summary>
    /// Replaces every FP32 initializer of at least <see cref="MinElements"/> values that no Q/DQ node reads and
    /// whose values fit FLOAT16's range by a FLOAT16 initializer and a Cast producing the original name.
    /// Graph inputs and outputs keep their types. Returns how many tensors were converted.
    /// </summary>
    public static int Convert(ModelProto model)
    {
        var graph = model.Graph;
        var view = new GraphView(graph);
        var names = new NameAllocator(view.AllNames());
        var casts = new List<NodeProto>();
        var converted = 0;
        for (var i = 0; i < graph.Initializer.Count; i++)
        {
            var tensor = graph.Initializer[i];
            var consumers = view.Consumers(tensor.Name);
            if (tensor.DataType != (int)TensorProto.Types.DataType.Float || view.Outputs.Contains(tensor.Name) || consumers.Count == 0
                || consumers.Any(c => c.Node.OpType is "QuantizeLinear" or "DequantizeLinear") || !TensorElementInfo.TryGetElementCount(tensor.Dims, out var count)
                || count < MinElements || graph.Input.Any(x => x.Name == tensor.Name))
            {
                continue;
            }

            var values = TensorValues.ReadFloats(tensor);
            if (values.Any(v => !float.IsFinite(v) || Math.Abs(v) > (float)Half.MaxValue))
            {
                continue;
            }

            var half = TensorValues.FromHalfs(names.Next(tensor.Name + "_fp16"), tensor.Dims.ToArray(), values);
            casts.Add(new NodeProto
            {
                OpType = "Cast",
                Name = names.Next(tensor.Name + "_to_fp32"),
                Input = { half.Name },
                Output = { tensor.Name },
                Attribute = { new AttributeProto { Name = "to", Type = AttributeProto.Types.AttributeType.Int, I = (long)TensorProto.Types.DataType.Float } },
            });
            graph.Initializer[i] = half;
            converted++;
        }

        // Casts first: they read only initializers, so the graph stays topologically sorted.
        for (var i = casts.Count - 1; i >= 0; i--)
        {
            graph.Node.Insert(0, casts[i]);
        }

        return converted;
    }
}
