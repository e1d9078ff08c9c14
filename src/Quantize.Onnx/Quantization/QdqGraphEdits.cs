using Quantize.Onnx.Model;
using Quantize.Onnx.Model.Proto;

namespace Quantize.Onnx.Quantization;

/// <summary>
/// The edits of a <see cref="QdqWriter"/>, recorded per original node and applied at once by <see cref="Assemble"/>:
/// the QuantizeLinear/DequantizeLinear nodes around each node, rewired inputs, renamed outputs and the new
/// initializers (scales, zero points, quantized constants), every name allocated so it collides with none in the graph.
/// </summary>
internal sealed class QdqGraphEdits
{
    private readonly GraphView _graph;
    private readonly NameAllocator _names;
    private readonly List<TensorProto> _newInitializers = [];

    // Per original node: DequantizeLinear nodes to emit before it, and the rewired input names.
    private readonly Dictionary<NodeProto, List<NodeProto>> _before = new(ReferenceEqualityComparer.Instance);
    private readonly Dictionary<NodeProto, Dictionary<int, string>> _inputRewires = new(ReferenceEqualityComparer.Instance);

    // Per original node: QuantizeLinear (and graph-output DequantizeLinear) nodes to emit after it.
    private readonly Dictionary<NodeProto, List<NodeProto>> _after = new(ReferenceEqualityComparer.Instance);
    private readonly Dictionary<NodeProto, Dictionary<int, string>> _outputRenames = new(ReferenceEqualityComparer.Instance);
    private readonly List<NodeProto> _atStart = [];

    public QdqGraphEdits(GraphView graph, NameAllocator? names = null)
    {
        _graph = graph;
        // Names stay unique across the model's subgraphs too: control-flow bodies are quantized with ranges keyed by name.
        _names = names ?? new NameAllocator(graph.AllNames().Concat(ControlFlowBodies.AllNames(graph.Graph)));
    }

    /// <summary><paramref name="wanted"/>, or the first free variant of it.</summary>
    public string NewName(string wanted) => _names.Next(wanted);

    public void AddInitializer(TensorProto tensor) => _newInitializers.Add(tensor);

    /// <summary>Emits <paramref name="nodes"/> just before original node <paramref name="node"/>.</summary>
    public void InsertBefore(NodeProto node, IEnumerable<NodeProto> nodes) => Append(_before, node, nodes);

    /// <summary>Emits <paramref name="nodes"/> just after original node <paramref name="node"/>.</summary>
    public void InsertAfter(NodeProto node, IEnumerable<NodeProto> nodes) => Append(_after, node, nodes);

    /// <summary>Emits <paramref name="nodes"/> before every original node (they read graph inputs).</summary>
    public void InsertAtStart(IEnumerable<NodeProto> nodes) => _atStart.AddRange(nodes);

    /// <summary>The name output <paramref name="index"/> of <paramref name="node"/> has after the renames.</summary>
    public string FinalOutputName(NodeProto node, int index) =>
        _outputRenames.TryGetValue(node, out var renames) && renames.TryGetValue(index, out var name) ? name : node.Output[index];

    public void RenameOutput(NodeProto node, int index, string name)
    {
        if (!_outputRenames.TryGetValue(node, out var renames))
        {
            _outputRenames[node] = renames = [];
        }

        renames[index] = name;
    }

    /// <summary>Finds who produces a tensor by its final name (absorbed activations move outputs).</summary>
    public (NodeProto Node, int Index)? FinalProducer(string tensor)
    {
        foreach (var (node, renames) in _outputRenames)
        {
            foreach (var (index, name) in renames)
            {
                if (name == tensor)
                {
                    return (node, index);
                }
            }
        }

        return _graph.Producer(tensor) is { } producer ? (producer, producer.Output.IndexOf(tensor)) : null;
    }

    /// <summary>Original node <paramref name="node"/> reads input <paramref name="index"/> from <paramref name="name"/> instead.</summary>
    public void Rewire(NodeProto node, int index, string name)
    {
        if (!_inputRewires.TryGetValue(node, out var rewires))
        {
            _inputRewires[node] = rewires = [];
        }

        rewires[index] = name;
    }

    /// <summary>Adds the per-tensor scale and zero point initializers of <paramref name="tensor"/>.</summary>
    public (string Scale, string ZeroPoint) AddParams(string tensor, float[] scales, int zeroPoint, TensorProto.Types.DataType type)
    {
        var scale = _names.Next(tensor + "_scale");
        _newInitializers.Add(TensorValues.FromFloats(scale, [], scales));
        var zp = _names.Next(tensor + "_zero_point");
        _newInitializers.Add(ZeroPointTensor(zp, type, zeroPoint, 0));
        return (scale, zp);
    }

    public static TensorProto ZeroPointTensor(string name, TensorProto.Types.DataType type, int zeroPoint, int channels)
    {
        long[] dims = channels == 0 ? [] : [channels];
        var count = Math.Max(channels, 1);
        return type switch
        {
            TensorProto.Types.DataType.Uint8 => TensorValues.FromUInt8(name, dims, Enumerable.Repeat((byte)zeroPoint, count).ToArray()),
            TensorProto.Types.DataType.Int8 => TensorValues.FromInt8(name, dims, Enumerable.Repeat((sbyte)zeroPoint, count).ToArray()),
            TensorProto.Types.DataType.Int32 => TensorValues.FromInt32(name, dims, Enumerable.Repeat(zeroPoint, count).ToArray()),
            _ => throw new ArgumentOutOfRangeException(nameof(type)),
        };
    }

    public NodeProto MakeNode(string opType, string[] inputs, string output, int? axis)
    {
        var node = new NodeProto { OpType = opType, Name = _names.Next(output + "_" + opType), Input = { inputs }, Output = { output } };
        if (axis is { } a)
        {
            node.SetInt("axis", a);
        }

        return node;
    }

    /// <summary>The rewritten graph: every edit applied, <paramref name="removed"/> nodes dropped, initializers no node reads any more removed.</summary>
    public GraphProto Assemble(IReadOnlySet<NodeProto> removed)
    {
        var result = _graph.Graph.Clone();
        result.Node.Clear();
        result.Node.Add(_atStart);
        foreach (var original in _graph.Graph.Node)
        {
            if (removed.Contains(original))
            {
                continue;
            }

            if (_before.TryGetValue(original, out var before))
            {
                result.Node.Add(before);
            }

            var node = original.Clone();
            if (_inputRewires.TryGetValue(original, out var rewires))
            {
                foreach (var (index, name) in rewires)
                {
                    node.Input[index] = name;
                }
            }

            if (_outputRenames.TryGetValue(original, out var renames))
            {
                foreach (var (index, name) in renames)
                {
                    node.Output[index] = name;
                }
            }

            result.Node.Add(node);
            if (_after.TryGetValue(original, out var after))
            {
                result.Node.Add(after);
            }
        }

        result.Initializer.Add(_newInitializers);
        RemoveUnusedInitializers(result);
        return result;
    }

    private static void Append(Dictionary<NodeProto, List<NodeProto>> map, NodeProto key, IEnumerable<NodeProto> nodes)
    {
        if (!map.TryGetValue(key, out var list))
        {
            map[key] = list = [];
        }

        list.AddRange(nodes);
    }

    private static void RemoveUnusedInitializers(GraphProto graph)
    {
        var used = graph.Node.SelectMany(n => n.Input).Concat(graph.Output.Select(o => o.Name)).ToHashSet(StringComparer.Ordinal);
        // Subgraphs (at any depth) may read outer-scope initializers by name; keep everything they mention.
        used.UnionWith(ControlFlowBodies.AllNodes(graph).SelectMany(n => n.Input));

        var unused = graph.Initializer.Where(t => !used.Contains(t.Name)).ToList();
        foreach (var tensor in unused)
        {
            graph.Initializer.Remove(tensor);
        }

        var removed = unused.Select(t => t.Name).ToHashSet(StringComparer.Ordinal);
        foreach (var input in graph.Input.Where(i => removed.Contains(i.Name)).ToList())
        {
            graph.Input.Remove(input);
        }
    }
}
