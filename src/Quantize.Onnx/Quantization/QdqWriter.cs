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
    private readonly QdqGraphEdits _edits;
    private readonly QdqConstants _constants;
    private readonly long _opset;

    /// <param name="opset">The model's default-domain opset (DequantizeLinear takes an axis from 13).</param>
    /// <param name="names">Names taken across the whole model (an If branch is written after the main graph); null: the graph's own and its subgraphs'.</param>
    public QdqWriter(GraphView graph, QuantizationPlan plan, QuantizationOptions options, bool perChannel, long opset, NameAllocator? names = null)
    {
        _graph = graph;
        _plan = plan;
        _opset = opset;
        _edits = new QdqGraphEdits(graph, names);
        _constants = new QdqConstants(graph, plan, options, perChannel, _edits);
    }

    public GraphProto Write()
    {
        // An absorbed Relu/Clip hands its output name to its producer.
        foreach (var activation in _plan.AbsorbedActivations)
        {
            var producer = _graph.Producer(activation.Input[0])!;
            _edits.RenameOutput(producer, producer.Output.IndexOf(activation.Input[0]), activation.Output[0]);
        }

        foreach (var tensor in QuantizedActivations())
        {
            QuantizeActivation(tensor);
        }

        foreach (var node in _graph.Graph.Node.Where(n => _plan.QuantizedNodes.Contains(n) && !_plan.AbsorbedActivations.Contains(n)))
        {
            _constants.Quantize(node);
        }

        return _edits.Assemble(_plan.AbsorbedActivations);
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
                Add(_edits.FinalOutputName(node, i));
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

    private void QuantizeActivation(string tensor)
    {
        var qp = _plan.ActivationParams[tensor];
        var (scale, zeroPoint) = _edits.AddParams(tensor, [qp.Scale], qp.ZeroPoint, qp.OnnxType);
        var producer = _edits.FinalProducer(tensor);
        var producerQuantized = producer is { } p && _plan.QuantizedNodes.Contains(p.Node);
        var quantized = _edits.NewName(tensor + "_quantized");
        var quantizeInput = tensor;

        var after = new List<NodeProto>();
        if (producerQuantized && _graph.KeptNames.Contains(tensor))
        {
            // The fused kernel's output may feed nothing but its QuantizeLinear, so the graph output
            // is re-created by a DequantizeLinear that keeps the user-visible name.
            quantizeInput = _edits.NewName(tensor + "_before_quantize");
            _edits.RenameOutput(producer!.Value.Node, producer.Value.Index, quantizeInput);
        }

        after.Add(_edits.MakeNode("QuantizeLinear", [quantizeInput, scale, zeroPoint], quantized, null));
        if (quantizeInput != tensor)
        {
            after.Add(_edits.MakeNode("DequantizeLinear", [quantized, scale, zeroPoint], tensor, null));
        }

        if (producer is { } owner)
        {
            _edits.InsertAfter(owner.Node, after);
        }
        else
        {
            _edits.InsertAtStart(after);
        }

        foreach (var (consumer, index) in _graph.Consumers(tensor))
        {
            if (_plan.AbsorbedActivations.Contains(consumer))
            {
                continue;
            }

            if (producerQuantized || IsQuantizedActivationInput(consumer, index))
            {
                var dequantized = _edits.NewName(tensor + "_dequantized");
                var dequantize = FloatHeavyInputChannels(consumer, index) is { } channels
                    ? PerChannelActivationDequantize(tensor, quantized, qp, channels, dequantized)
                    : _edits.MakeNode("DequantizeLinear", [quantized, scale, zeroPoint], dequantized, null);
                _edits.InsertBefore(consumer, [dequantize]);
                _edits.Rewire(consumer, index, dequantized);
            }
        }
    }

    /// <summary>
    /// ORT's WeightBiasQuantization pass quantizes a float Conv/ConvTranspose/Gemm on its own (int8
    /// per tensor) when its input comes from a DequantizeLinear with a scalar scale and its output
    /// leads to a QuantizeLinear. A node we keep float on purpose (excluded, or slower in int8) must
    /// stay float, so its input DequantizeLinear gets the same scale repeated per channel (axis 1):
    /// numerically identical, but no longer a scalar scale. Returns the channel count, or null.
    /// Below opset 13 (a model with If/Loop/Scan kept at opset 10–12, per tensor) DequantizeLinear has no axis, and the
    /// model would not load (fuzz: an excluded conv in an If branch at opset 12): the scalar form stays.
    /// </summary>
    private int? FloatHeavyInputChannels(NodeProto consumer, int index)
    {
        if (_opset < Preparation.OpsetUpgrader.TargetOpset || index != 0 || _plan.QuantizedNodes.Contains(consumer) || consumer.Domain is not ("" or "ai.onnx")
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
        var scale = _edits.NewName(tensor + "_scale_per_channel");
        _edits.AddInitializer(TensorValues.FromFloats(scale, [channels], Enumerable.Repeat(qp.Scale, channels).ToArray()));
        var zeroPoint = _edits.NewName(tensor + "_zero_point_per_channel");
        _edits.AddInitializer(QdqGraphEdits.ZeroPointTensor(zeroPoint, qp.OnnxType, qp.ZeroPoint, channels));
        return _edits.MakeNode("DequantizeLinear", [quantized, scale, zeroPoint], output, 1);
    }
}
