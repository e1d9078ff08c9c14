using Quantize.Onnx.Model.Proto;

namespace Quantize.Onnx.Model;

/// <summary>
/// Appends a per-channel reduction (ReduceMin/ReduceMax/ReduceMean over every axis but 1) of a tensor
/// to a graph, for statistics computed inside ORT: the output is a [C] vector however large the tensor.
/// </summary>
internal static class ChannelReduction
{
    /// <returns>The name of the [C] output.</returns>
    public static string Add(GraphProto graph, NameAllocator names, string op, string tensor, long opset)
    {
        // [N, C, ...] → [N, C, rest], so one reduction over axes 0 and 2 serves every rank ≥ 2.
        var shape = names.Next(tensor + "_ncx_shape");
        graph.Initializer.Add(TensorValues.FromInt64(shape, [3], [0, 0, -1]));
        var reshaped = names.Next(tensor + "_ncx");
        graph.Node.Add(new NodeProto { OpType = "Reshape", Name = reshaped, Input = { tensor, shape }, Output = { reshaped } });

        var output = names.Next($"{tensor}_channel_{op}");
        var node = new NodeProto { OpType = op, Name = output, Input = { reshaped }, Output = { output } };
        node.SetInt("keepdims", 0);
        long[] axes = [0, 2];
        if (opset >= 18)
        {
            // From opset 18 the axes of every Reduce op are an input.
            var axesName = names.Next(output + "_axes");
            graph.Initializer.Add(TensorValues.FromInt64(axesName, [axes.Length], axes));
            node.Input.Add(axesName);
        }
        else
        {
            node.Attribute.Add(new AttributeProto { Name = "axes", Type = AttributeProto.Types.AttributeType.Ints, Ints = { axes } });
        }

        graph.Node.Add(node);
        return output;
    }
}
