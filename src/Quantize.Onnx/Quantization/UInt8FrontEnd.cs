using Quantize.Onnx.Model;
using Quantize.Onnx.Model.Proto;
using Quantize.Onnx.Samples.Images;

namespace Quantize.Onnx.Quantization;

/// <summary>
/// The model that ships with uint8 inputs, made from the one that was measured (float inputs): each input becomes a
/// uint8 tensor of the same name and shape. With an exact grid (<see cref="UInt8Input.ExactGrid"/>) the input's
/// QuantizeLinear goes and its DequantizeLinears read the bytes directly (ORT fuses them into the first QLinearConv);
/// a Pad that keeps the grid runs on the bytes (<see cref="UInt8Pads"/>); a float reader of the input gets
/// DequantizeLinear(u) = (u − zp) · s. Otherwise the float input is computed in
/// the graph, Cast(u) · a + b, per channel in the input's layout, and the rest of the model is as measured.
/// </summary>
internal static class UInt8FrontEnd
{
    public static ModelProto Ship(ModelProto measured, IReadOnlyDictionary<string, UInt8Input> inputs, QuantType activationType)
    {
        var model = measured.Clone();
        var graph = model.Graph;
        var names = new NameAllocator(graph.Node.SelectMany(n => n.Output.Concat(n.Input).Append(n.Name))
            .Concat(graph.Initializer.Select(t => t.Name)).Concat(graph.Input.Select(i => i.Name)).Concat(graph.Output.Select(o => o.Name)));
        var front = new List<NodeProto>();
        foreach (var input in graph.Input.Where(i => inputs.ContainsKey(i.Name)))
        {
            var spec = inputs[input.Name];
            input.Type.TensorType.ElemType = (int)TensorProto.Types.DataType.Uint8;
            var grid = spec.ExactGrid(activationType);
            var dropped = grid is { } g ? QuantizeLinearsOn(graph, spec.Name, g) : [];
            var padded = grid is { } onGrid ? UInt8Pads.Carry(graph, names, spec.Name, onGrid) : [];
            var floatReaders = graph.Node.Where(n => !dropped.Contains(n) && !padded.Contains(n) && n.Input.Contains(spec.Name)).ToList();
            if (floatReaders.Count > 0)
            {
                var normalized = names.Next(spec.Name + "_normalized");
                Rename(floatReaders, spec.Name, normalized);
                front.AddRange(grid is { } exact ? Dequantize(graph, names, spec.Name, normalized, exact) : Affine(graph, names, spec, normalized));
            }

            foreach (var q in dropped)
            {
                graph.Node.Remove(q);
                Rename(graph.Node, q.Output[0], spec.Name);
            }
        }

        for (var i = front.Count - 1; i >= 0; i--)
        {
            graph.Node.Insert(0, front[i]);
        }

        return model;
    }

    /// <summary>The QuantizeLinear nodes reading <paramref name="input"/> on <paramref name="grid"/>: they go, and their readers read the bytes.</summary>
    private static List<NodeProto> QuantizeLinearsOn(GraphProto graph, string input, QuantParams grid)
    {
        var initializers = graph.Initializer.ToDictionary(t => t.Name, StringComparer.Ordinal);
        return graph.Node.Where(n => n.OpType == "QuantizeLinear" && n.Input[0] == input && OnGrid(n, initializers, grid)).ToList();
    }

    /// <summary>Whether the QuantizeLinear <paramref name="q"/> quantizes onto <paramref name="grid"/> (uint8, per tensor).</summary>
    internal static bool OnGrid(NodeProto q, Dictionary<string, TensorProto> initializers, QuantParams grid) => q.Input.Count == 3
        && initializers.TryGetValue(q.Input[1], out var scale) && TensorValues.ReadFloats(scale) is [var s] && s == grid.Scale
        && initializers.TryGetValue(q.Input[2], out var zeroPoint) && zeroPoint.DataType == (int)TensorProto.Types.DataType.Uint8
        && zeroPoint.RawData.Length == 1 && zeroPoint.RawData[0] == grid.ZeroPoint;

    private static void Rename(IEnumerable<NodeProto> nodes, string from, string to)
    {
        foreach (var node in nodes)
        {
            for (var i = 0; i < node.Input.Count; i++)
            {
                if (node.Input[i] == from)
                {
                    node.Input[i] = to;
                }
            }
        }
    }

    private static IEnumerable<NodeProto> Dequantize(GraphProto graph, NameAllocator names, string input, string output, QuantParams grid)
    {
        var scale = names.Next(input + "_bytes_scale");
        var zeroPoint = names.Next(input + "_bytes_zero_point");
        graph.Initializer.Add(TensorValues.FromFloats(scale, [], [grid.Scale]));
        graph.Initializer.Add(TensorValues.FromUInt8(zeroPoint, [], [(byte)grid.ZeroPoint]));
        yield return Node("DequantizeLinear", names.Next(input + "_bytes_dequantize"), [input, scale, zeroPoint], output);
    }

    private static IEnumerable<NodeProto> Affine(GraphProto graph, NameAllocator names, UInt8Input spec, string output)
    {
        var (a, b) = spec.Affine();
        var per = a.Distinct().Count() == 1 && b.Distinct().Count() == 1;
        long[] dims = per ? [] : spec.Layout == ImageLayout.Nhwc ? [spec.Channels] : spec.Rank == 4 ? [1, spec.Channels, 1, 1] : [spec.Channels, 1, 1];
        var (aName, bName) = (names.Next(spec.Name + "_bytes_scale"), names.Next(spec.Name + "_bytes_offset"));
        graph.Initializer.Add(TensorValues.FromFloats(aName, dims, per ? [a[0]] : a));
        graph.Initializer.Add(TensorValues.FromFloats(bName, dims, per ? [b[0]] : b));
        var (cast, scaled) = (names.Next(spec.Name + "_float"), names.Next(spec.Name + "_scaled"));
        var toFloat = Node("Cast", names.Next(spec.Name + "_bytes_cast"), [spec.Name], cast);
        toFloat.Attribute.Add(new AttributeProto { Name = "to", Type = AttributeProto.Types.AttributeType.Int, I = (long)TensorProto.Types.DataType.Float });
        yield return toFloat;
        yield return Node("Mul", names.Next(spec.Name + "_bytes_mul"), [cast, aName], scaled);
        yield return Node("Add", names.Next(spec.Name + "_bytes_add"), [scaled, bName], output);
    }

    private static NodeProto Node(string opType, string name, string[] inputs, string output)
    {
        var node = new NodeProto { OpType = opType, Name = name };
        node.Input.AddRange(inputs);
        node.Output.Add(output);
        return node;
    }
}
