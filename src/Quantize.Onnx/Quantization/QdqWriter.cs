using Quantize.Onnx.Model;
using Quantize.Onnx.Model.Proto;

namespace Quantize.Onnx.Quantization;

/// <summary>
/// Rewrites a graph into QDQ form following a <see cref="QuantizationPlan"/>, in the shapes ORT's CPU
/// QDQ transformers fuse: every quantized tensor gets one QuantizeLinear; each consumer reads it
/// through its own DequantizeLinear; a quantized node's output feeds only its QuantizeLinear (a graph
/// output is re-created by a final DequantizeLinear under the original name); weights are stored as
/// int8 initializers behind a DequantizeLinear; bias as int32 with scale = input scale × weight scale.
/// </summary>
internal sealed class QdqWriter
{
    private readonly GraphView _graph;
    private readonly QuantizationPlan _plan;
    private readonly QuantizationOptions _options;
    private readonly bool _perChannel;
    private readonly NameAllocator _names;
    private readonly List<TensorProto> _newInitializers = [];

    // Per original node: DequantizeLinear nodes to emit before it, and the rewired input names.
    private readonly Dictionary<NodeProto, List<NodeProto>> _before = new(ReferenceEqualityComparer.Instance);
    private readonly Dictionary<NodeProto, Dictionary<int, string>> _inputRewires = new(ReferenceEqualityComparer.Instance);

    // Per original node: QuantizeLinear (and graph-output DequantizeLinear) nodes to emit after it.
    private readonly Dictionary<NodeProto, List<NodeProto>> _after = new(ReferenceEqualityComparer.Instance);
    private readonly Dictionary<NodeProto, Dictionary<int, string>> _outputRenames = new(ReferenceEqualityComparer.Instance);
    private readonly List<NodeProto> _atStart = [];

    public QdqWriter(GraphView graph, QuantizationPlan plan, QuantizationOptions options, bool perChannel)
    {
        _graph = graph;
        _plan = plan;
        _options = options;
        _perChannel = perChannel;
        _names = new NameAllocator(graph.AllNames());
    }

    public GraphProto Write()
    {
        // An absorbed Relu/Clip hands its output name to its producer.
        foreach (var activation in _plan.AbsorbedActivations)
        {
            var producer = _graph.Producer(activation.Input[0])!;
            RenameOutput(producer, producer.Output.IndexOf(activation.Input[0]), activation.Output[0]);
        }

        foreach (var tensor in QuantizedActivations())
        {
            QuantizeActivation(tensor);
        }

        foreach (var node in _graph.Graph.Node.Where(n => _plan.QuantizedNodes.Contains(n) && !_plan.AbsorbedActivations.Contains(n)))
        {
            QuantizeConstantInputs(node);
        }

        return Assemble();
    }

    /// <summary>Activations (by their final names) that get a QuantizeLinear, in graph order.</summary>
    private List<string> QuantizedActivations()
    {
        var result = new List<string>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        void Add(string tensor)
        {
            if (tensor.Length > 0 && !_graph.IsInitializer(tensor) && seen.Add(tensor))
            {
                result.Add(tensor);
            }
        }

        foreach (var input in _graph.Inputs)
        {
            if (_graph.Consumers(input).Any(c => IsQuantizedActivationInput(c.Node, c.Index)))
            {
                Add(input);
            }
        }

        foreach (var node in _graph.Graph.Node)
        {
            if (!_plan.QuantizedNodes.Contains(node) || _plan.AbsorbedActivations.Contains(node))
            {
                // Float producers of quantized inputs are found through the consumers below.
                foreach (var output in node.Output.Where(o => _graph.Consumers(o).Any(c => IsQuantizedActivationInput(c.Node, c.Index))))
                {
                    Add(output);
                }

                continue;
            }

            if (_plan.FloatOutputNodes.Contains(node))
            {
                continue; // its float output is read as it is (MatMulIntegerToFloat)
            }

            for (var i = 0; i < node.Output.Count; i++)
            {
                Add(FinalOutputName(node, i));
            }

            // Inputs from float producers are handled above; graph inputs at the start.
        }

        return result;
    }

    private bool IsQuantizedActivationInput(NodeProto node, int index)
    {
        if (!_plan.QuantizedNodes.Contains(node) || _plan.AbsorbedActivations.Contains(node))
        {
            return false;
        }

        var rule = OpRules.Find(node)!;
        return OpRules.ActivationInputs(node, rule).Contains(index) && !_graph.IsInitializer(node.Input[index]);
    }

    private string FinalOutputName(NodeProto node, int index) =>
        _outputRenames.TryGetValue(node, out var renames) && renames.TryGetValue(index, out var name) ? name : node.Output[index];

    private void RenameOutput(NodeProto node, int index, string name)
    {
        if (!_outputRenames.TryGetValue(node, out var renames))
        {
            _outputRenames[node] = renames = [];
        }

        renames[index] = name;
    }

    /// <summary>Finds who produces a tensor by its final name (absorbed activations move outputs).</summary>
    private (NodeProto Node, int Index)? FinalProducer(string tensor)
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

    private void QuantizeActivation(string tensor)
    {
        var qp = _plan.ActivationParams[tensor];
        var (scale, zeroPoint) = AddParams(tensor, [qp.Scale], qp.ZeroPoint, qp.OnnxType);
        var producer = FinalProducer(tensor);
        var producerQuantized = producer is { } p && _plan.QuantizedNodes.Contains(p.Node);
        var quantized = _names.Next(tensor + "_quantized");
        var quantizeInput = tensor;

        var after = new List<NodeProto>();
        if (producerQuantized && _graph.KeptNames.Contains(tensor))
        {
            // The fused kernel's output may feed nothing but its QuantizeLinear, so the graph output
            // is re-created by a DequantizeLinear that keeps the user-visible name.
            quantizeInput = _names.Next(tensor + "_before_quantize");
            RenameOutput(producer!.Value.Node, producer.Value.Index, quantizeInput);
        }

        after.Add(MakeNode("QuantizeLinear", [quantizeInput, scale, zeroPoint], quantized, null));
        if (quantizeInput != tensor)
        {
            after.Add(MakeNode("DequantizeLinear", [quantized, scale, zeroPoint], tensor, null));
        }

        if (producer is { } owner)
        {
            Append(_after, owner.Node, after);
        }
        else
        {
            _atStart.AddRange(after);
        }

        foreach (var (consumer, index) in _graph.Consumers(tensor))
        {
            if (_plan.AbsorbedActivations.Contains(consumer))
            {
                continue;
            }

            if (producerQuantized || IsQuantizedActivationInput(consumer, index))
            {
                var dequantized = _names.Next(tensor + "_dequantized");
                var dequantize = FloatHeavyInputChannels(consumer, index) is { } channels
                    ? PerChannelActivationDequantize(tensor, quantized, qp, channels, dequantized)
                    : MakeNode("DequantizeLinear", [quantized, scale, zeroPoint], dequantized, null);
                Append(_before, consumer, [dequantize]);
                Rewire(consumer, index, dequantized);
            }
        }
    }

    /// <summary>
    /// ORT's WeightBiasQuantization pass quantizes a float Conv/ConvTranspose/Gemm on its own (int8
    /// per tensor) when its input comes from a DequantizeLinear with a scalar scale and its output
    /// leads to a QuantizeLinear. A node we keep float on purpose (excluded, or slower in int8) must
    /// stay float, so its input DequantizeLinear gets the same scale repeated per channel (axis 1):
    /// numerically identical, but no longer a scalar scale. Returns the channel count, or null.
    /// </summary>
    private int? FloatHeavyInputChannels(NodeProto consumer, int index)
    {
        if (index != 0 || _plan.QuantizedNodes.Contains(consumer) || consumer.Domain is not ("" or "ai.onnx")
            || consumer.OpType is not ("Conv" or "ConvTranspose" or "Gemm") || consumer.Input.Count < 2
            || !_graph.Initializers.TryGetValue(consumer.Input[1], out var weight) || weight.Dims.Count < 2)
        {
            return null;
        }

        return consumer.OpType switch
        {
            "Conv" => (int)(weight.Dims[1] * consumer.GetInt("group", 1)),
            "ConvTranspose" => (int)weight.Dims[0],
            _ when consumer.GetInt("transA", 0) != 0 => null,
            _ => (int)(consumer.GetInt("transB", 0) == 1 ? weight.Dims[1] : weight.Dims[0]),
        };
    }

    private NodeProto PerChannelActivationDequantize(string tensor, string quantized, QuantParams qp, int channels, string output)
    {
        var scale = _names.Next(tensor + "_scale_per_channel");
        _newInitializers.Add(TensorValues.FromFloats(scale, [channels], Enumerable.Repeat(qp.Scale, channels).ToArray()));
        var zeroPoint = _names.Next(tensor + "_zero_point_per_channel");
        _newInitializers.Add(ZeroPointTensor(zeroPoint, qp.OnnxType, qp.ZeroPoint, channels));
        return MakeNode("DequantizeLinear", [quantized, scale, zeroPoint], output, 1);
    }

    private void QuantizeConstantInputs(NodeProto node)
    {
        var rule = OpRules.Find(node)!;
        if (rule.Kind == OpKind.Anchor)
        {
            QuantizeWeightAndBias(node, rule);
            return;
        }

        foreach (var index in OpRules.ActivationInputs(node, rule).Where(i => i < node.Input.Count && _graph.IsInitializer(node.Input[i])))
        {
            var constant = _graph.Initializers[node.Input[index]];
            var (q, _) = WeightQuantizer.QuantizeAsActivation(_names.Next(constant.Name + "_quantized"), constant, _options.ActivationType);
            AddDequantizedConstant(node, index, constant.Name, q);
        }
    }

    private void QuantizeWeightAndBias(NodeProto node, OpRule rule)
    {
        var weight = _graph.Initializers[node.Input[rule.WeightInput]];
        var axis = WeightAxis(node, weight);
        var channels = axis is { } a ? (int)weight.Dims[a] : 1;
        var inputScale = _plan.ActivationParams[node.Input[0]].Scale;

        TensorProto? bias = null;
        if (rule.BiasInput >= 0 && node.Input.Count > rule.BiasInput && node.Input[rule.BiasInput].Length > 0)
        {
            bias = _graph.Initializers[node.Input[rule.BiasInput]];
        }

        // Enlarge weight scales where the int32 bias would otherwise overflow.
        var minimumScales = bias is null ? null : WeightQuantizer.MinimumWeightScalesForBias(TensorValues.ReadFloats(bias), inputScale, channels);
        var q = WeightQuantizer.QuantizeWeight(_names.Next(weight.Name + "_quantized"), weight, _options.WeightType, axis, minimumScales, _options.ReduceRange, SaturationOrder(node));
        AddDequantizedConstant(node, rule.WeightInput, weight.Name, q);

        if (bias is not null)
        {
            var qb = WeightQuantizer.QuantizeBias(_names.Next(bias.Name + "_quantized"), bias, inputScale, q.Scales);
            AddDequantizedConstant(node, rule.BiasInput, bias.Name, qb);
        }
    }

    /// <summary>How K runs in this node's weight, when the targets need saturation-safe weights (see <see cref="SaturationBound"/>).</summary>
    private KOrder? SaturationOrder(NodeProto node) => !_options.SaturationSafeWeights ? null : node.OpType switch
    {
        "Conv" => KOrder.Conv,
        "Gemm" when node.GetInt("transB", 0) == 1 => KOrder.Rows,
        "Gemm" or "MatMul" => KOrder.Columns,
        _ => KOrder.Rows, // ConvTranspose: no integer kernel on CPU; any order is as good
    };

    private int? WeightAxis(NodeProto node, TensorProto weight)
    {
        if (!_perChannel)
        {
            return null;
        }

        return node.OpType switch
        {
            "Conv" => 0,
            "Gemm" => node.GetInt("transB", 0) == 1 ? 0 : 1,
            "MatMul" when weight.Dims.Count == 2 => 1,
            _ => null,
        };
    }

    private void AddDequantizedConstant(NodeProto node, int index, string originalName, QuantizedConstant q)
    {
        _newInitializers.Add(q.Data);
        var scaleDims = q.Axis is null ? Array.Empty<long>() : [q.Scales.Length];
        var scale = _names.Next(originalName + "_scale");
        _newInitializers.Add(TensorValues.FromFloats(scale, scaleDims, q.Scales));
        var zeroPoint = _names.Next(originalName + "_zero_point");
        _newInitializers.Add(ZeroPointTensor(zeroPoint, (TensorProto.Types.DataType)q.Data.DataType, q.ZeroPoint, q.Axis is null ? 0 : q.Scales.Length));

        var dequantized = _names.Next(originalName + "_dequantized");
        Append(_before, node, [MakeNode("DequantizeLinear", [q.Data.Name, scale, zeroPoint], dequantized, q.Axis)]);
        Rewire(node, index, dequantized);
    }

    private (string Scale, string ZeroPoint) AddParams(string tensor, float[] scales, int zeroPoint, TensorProto.Types.DataType type)
    {
        var scale = _names.Next(tensor + "_scale");
        _newInitializers.Add(TensorValues.FromFloats(scale, [], scales));
        var zp = _names.Next(tensor + "_zero_point");
        _newInitializers.Add(ZeroPointTensor(zp, type, zeroPoint, 0));
        return (scale, zp);
    }

    private static TensorProto ZeroPointTensor(string name, TensorProto.Types.DataType type, int zeroPoint, int channels)
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

    private NodeProto MakeNode(string opType, string[] inputs, string output, int? axis)
    {
        var node = new NodeProto { OpType = opType, Name = _names.Next(output + "_" + opType), Input = { inputs }, Output = { output } };
        if (axis is { } a)
        {
            node.SetInt("axis", a);
        }

        return node;
    }

    private static void Append(Dictionary<NodeProto, List<NodeProto>> map, NodeProto key, IEnumerable<NodeProto> nodes)
    {
        if (!map.TryGetValue(key, out var list))
        {
            map[key] = list = [];
        }

        list.AddRange(nodes);
    }

    private void Rewire(NodeProto node, int index, string name)
    {
        if (!_inputRewires.TryGetValue(node, out var rewires))
        {
            _inputRewires[node] = rewires = [];
        }

        rewires[index] = name;
    }

    private GraphProto Assemble()
    {
        var result = _graph.Graph.Clone();
        result.Node.Clear();
        result.Node.Add(_atStart);
        foreach (var original in _graph.Graph.Node)
        {
            if (_plan.AbsorbedActivations.Contains(original))
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

    private static void RemoveUnusedInitializers(GraphProto graph)
    {
        var used = graph.Node.SelectMany(n => n.Input).Concat(graph.Output.Select(o => o.Name)).ToHashSet(StringComparer.Ordinal);
        foreach (var node in graph.Node.Where(n => n.HasSubgraph()))
        {
            // Subgraphs may read outer-scope initializers by name; keep everything they mention.
            foreach (var attribute in node.Attribute)
            {
                foreach (var g in attribute.Graphs.Append(attribute.G).OfType<GraphProto>())
                {
                    used.UnionWith(g.Node.SelectMany(n => n.Input));
                }
            }
        }

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
