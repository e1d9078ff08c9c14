using Microsoft.ML.OnnxRuntime.Tensors;
using Quantize.Onnx.Model;
using Quantize.Onnx.Model.Proto;
using DataType = Quantize.Onnx.Model.Proto.TensorProto.Types.DataType;

namespace Quantize.Onnx.Preparation;

/// <summary>What an opset upgrade adds around the node it rewrites: nodes <see cref="Before"/>/<see cref="After"/> it, initializers in <see cref="Added"/>.</summary>
internal sealed class UpgradeEdits(GraphProto graph)
{
    public NameAllocator Names { get; } = new(new GraphView(graph).AllNames());

    public Dictionary<string, TensorProto> Initializers { get; } = graph.Initializer.ToDictionary(t => t.Name, StringComparer.Ordinal);

    /// <summary>Every tensor some node or the graph's outputs read.</summary>
    public HashSet<string> Read { get; } = graph.Node.SelectMany(n => n.Input).Concat(graph.Output.Select(o => o.Name)).ToHashSet(StringComparer.Ordinal);

    public List<TensorProto> Added { get; } = [];

    public List<NodeProto> Before { get; } = [];

    public List<NodeProto> After { get; } = [];

    public TensorProto? Constant(string name) => Initializers.GetValueOrDefault(name) ?? Added.FirstOrDefault(t => t.Name == name);

    /// <summary>Adds a one-output node named after <paramref name="name"/> to <paramref name="list"/>; returns its output.</summary>
    public string Add(List<NodeProto> list, string opType, string name, string[] inputs, long? axis = null)
    {
        var added = new NodeProto { OpType = opType, Name = Names.Next(name), Input = { inputs } };
        added.Output.Add(Names.Next(name));
        if (axis is { } a)
        {
            added.SetInt("axis", a);
        }

        list.Add(added);
        return added.Output[0];
    }

    public string Ints(NodeProto node, string suffix, IReadOnlyList<long> values)
    {
        var name = Names.Next($"{node.Name}_{suffix}");
        Added.Add(TensorValues.FromInt64(name, [values.Count], values.ToArray()));
        return name;
    }

    public string Floats(NodeProto node, string suffix, IReadOnlyList<float> values)
    {
        var name = Names.Next($"{node.Name}_{suffix}");
        Added.Add(TensorValues.FromFloats(name, [values.Count], values.ToArray()));
        return name;
    }

    /// <summary>A scalar initializer of <paramref name="type"/> (the ops that take one accept float16, float and double).</summary>
    public string Scalar(NodeProto node, string suffix, TensorElementType type, float value)
    {
        var name = Names.Next($"{node.Name}_{suffix}");
        Added.Add(type switch
        {
            TensorElementType.Float16 => TensorValues.FromHalfs(name, [], [value]),
            TensorElementType.Double => new TensorProto { Name = name, DataType = (int)DataType.Double, DoubleData = { value } },
            _ => TensorValues.FromFloats(name, [], [value]),
        });
        return name;
    }
}
