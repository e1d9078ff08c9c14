using Quantize.Onnx.Calibration;
using Quantize.Onnx.Model;
using Quantize.Onnx.Model.Proto;
using Quantize.Onnx.Preparation;

namespace Quantize.Onnx.Quantization;

/// <summary>
/// Decides which nodes run quantized. Heavy ops with weights (Conv, MatMul, Gemm) always do. Cheap ops
/// (Add, Concat, pooling, LeakyRelu, ...) and data-movement ops only do inside a quantized region —
/// every activation input comes from a quantized producer and some consumer is quantized — because a
/// lone cheap op in int8 costs a QuantizeLinear and a DequantizeLinear more than it saves.
/// </summary>
/// <param name="fixedGrids">Activation grids decided before calibration (uint8 image inputs), used instead of their ranges.</param>
internal sealed class QdqPlanner(
    GraphView graph, TensorTypes types, IReadOnlyDictionary<string, TensorRange> ranges, QuantizationOptions options, IReadOnlyDictionary<string, QuantParams>? fixedGrids = null)
{
    public QuantizationPlan Plan()
    {
        var plan = new QuantizationPlan();
        var candidates = graph.Graph.Node.Where(new QdqCandidates(graph, types, ranges, options).IsCandidate).ToHashSet(ReferenceEqualityComparer.Instance);

        // Forward: anchors always; the rest when all their activation inputs are quantized outputs.
        foreach (var node in graph.Graph.Node)
        {
            if (!candidates.Contains(node))
            {
                continue;
            }

            var rule = OpRules.Find(node)!;
            switch (rule.Kind)
            {
                case OpKind.Anchor:
                    plan.QuantizedNodes.Add(node);
                    break;
                case OpKind.RemovableActivation:
                    if (CanAbsorb(node, plan))
                    {
                        plan.QuantizedNodes.Add(node);
                        plan.AbsorbedActivations.Add(node);
                    }

                    break;
                default:
                    if (QdqCandidates.ActivationInputs(node, rule).All(i => graph.IsInitializer(i) || IsQuantizedOutput(i, plan)))
                    {
                        plan.QuantizedNodes.Add(node);
                    }

                    break;
            }
        }

        PruneDeadEnds(plan);
        AssignParams(plan);
        KeepFloatOutputs(plan);
        return plan;
    }

    /// <summary>Whether ORT would fuse <paramref name="matMul"/> and the Add of a computed value reading it into a Gemm.</summary>
    private bool FusesIntoGemm(NodeProto matMul)
    {
        var consumers = graph.Consumers(matMul.Output[0]);
        return consumers.Count == 1 && consumers[0].Node is { OpType: "Add", Input.Count: 2 } add && !graph.KeptNames.Contains(matMul.Output[0])
            && add.Input[1 - consumers[0].Index] is var other && other.Length > 0 && !graph.IsInitializer(other);
    }

    /// <summary>
    /// A quantized MatMul whose output no quantized node reads keeps a float output: ORT runs DQ → MatMul
    /// as MatMulIntegerToFloat, so the output never passes through an 8-bit grid. This matters in
    /// transformers, whose MatMul outputs (before the bias and residual Adds) carry outlier channels that a
    /// per-tensor uint8 grid cannot hold (all-MiniLM-L6-v2: mean embedding cosine 0.943 with quantized
    /// outputs). Conv has no such kernel in ORT (DQ → Conv → float would run in float), so it keeps its Q.
    /// A MatMul read only by an Add of a computed value (an RNN step: x·W + h·R) keeps its Q too: ORT would fuse
    /// DQ → MatMul → Add into a float Gemm of dequantized weights (MatMulAddFusion runs before the QDQ fusions).
    /// </summary>
    private void KeepFloatOutputs(QuantizationPlan plan)
    {
        foreach (var node in graph.Graph.Node)
        {
            if (node.OpType == "MatMul" && plan.QuantizedNodes.Contains(node) && !plan.AbsorbedActivations.Contains(node)
                && !graph.Consumers(node.Output[0]).Any(c => plan.QuantizedNodes.Contains(c.Node)) && !FusesIntoGemm(node))
            {
                plan.FloatOutputNodes.Add(node);
                plan.ActivationParams.Remove(node.Output[0]);
            }
        }
    }

    private bool IsQuantizedOutput(string tensor, QuantizationPlan plan) =>
        graph.Producer(tensor) is { } producer && plan.QuantizedNodes.Contains(producer);

    /// <summary>
    /// Relu/Clip vanish when the producer is quantized and is their only reader: the producer's
    /// QuantizeLinear then uses the activation's output range, and saturation does the clipping.
    /// </summary>
    private bool CanAbsorb(NodeProto activation, QuantizationPlan plan)
    {
        var input = activation.Input[0];
        if (!IsQuantizedOutput(input, plan) || graph.KeptNames.Contains(input) || graph.Consumers(input).Count != 1)
        {
            return false;
        }

        var producer = graph.Producer(input)!;
        if (OpRules.Find(producer)!.Kind is OpKind.DataMovement or OpKind.RemovableActivation)
        {
            // Data-movement outputs must keep their input's scale; stacked activations are rare.
            return false;
        }

        if (!TryGetClipBounds(activation, out var low, out var high))
        {
            return false;
        }

        var r = ranges[activation.Output[0]];
        var qp = QuantMath.ForRange(r.Min, r.Max, options.ActivationType, options.SymmetricActivations);
        var (representableLow, representableHigh) = qp.RepresentableRange;
        var tolerance = qp.Scale * 1e-3f;

        // Exact only when the grid cannot represent anything the activation would have clipped away.
        return representableLow >= low - tolerance && representableHigh <= high + tolerance;
    }

    private bool TryGetClipBounds(NodeProto node, out float low, out float high)
    {
        low = float.NegativeInfinity;
        high = float.PositiveInfinity;
        if (node.OpType == "Relu")
        {
            low = 0f;
            return true;
        }

        for (var i = 1; i <= 2 && i < node.Input.Count; i++)
        {
            if (node.Input[i].Length == 0)
            {
                continue;
            }

            if (!graph.Initializers.TryGetValue(node.Input[i], out var bound))
            {
                return false;
            }

            var value = TensorValues.ReadFloats(bound)[0];
            if (i == 1)
            {
                low = value;
            }
            else
            {
                high = value;
            }
        }

        return true;
    }

    /// <summary>
    /// Cheap and data-movement ops with no quantized reader would only add Q/DQ: keep them float. Except a data-movement
    /// op in a quantized region whose output a subgraph reads: kept float, it would read a DequantizeLinear and feed the
    /// subgraph, and ORT's QDQPropagationTransformer, moving that DequantizeLinear past it, indexes the subgraph's
    /// implicit input as an explicit one and aborts the process (ORT 1.31; Silero VAD v4's Transpose before its LSTM If).
    /// </summary>
    private void PruneDeadEnds(QuantizationPlan plan)
    {
        bool changed;
        do
        {
            changed = false;
            foreach (var node in graph.Graph.Node.Reverse())
            {
                if (!plan.QuantizedNodes.Contains(node) || OpRules.Find(node)!.Kind == OpKind.Anchor)
                {
                    continue;
                }

                // A Relu/Clip folded into a heavy op's QuantizeLinear costs nothing: keep it folded.
                if (plan.AbsorbedActivations.Contains(node) && OpRules.Find(graph.Producer(node.Input[0])!)!.Kind == OpKind.Anchor)
                {
                    continue;
                }

                var feedsQuantized = node.Output.SelectMany(graph.Consumers).Any(c => plan.QuantizedNodes.Contains(c.Node));
                var feedsSubgraph = OpRules.Find(node)!.Kind == OpKind.DataMovement && node.Output.Any(graph.SubgraphReads.Contains);
                if (!feedsQuantized && !feedsSubgraph)
                {
                    plan.QuantizedNodes.Remove(node);
                    plan.AbsorbedActivations.Remove(node);
                    changed = true;
                }
            }
        }
        while (changed);
    }

    private void AssignParams(QuantizationPlan plan)
    {
        QuantParams FromRange(string tensor)
        {
            if (fixedGrids is not null && fixedGrids.TryGetValue(tensor, out var grid))
            {
                return grid;
            }

            var r = ranges[tensor];
            return QuantMath.ForRange(r.Min, r.Max, options.ActivationType, options.SymmetricActivations);
        }

        foreach (var node in graph.Graph.Node)
        {
            if (!plan.QuantizedNodes.Contains(node))
            {
                continue;
            }

            var rule = OpRules.Find(node)!;
            foreach (var input in QdqCandidates.ActivationInputs(node, rule).Where(i => !graph.IsInitializer(i)))
            {
                if (!plan.ActivationParams.ContainsKey(input))
                {
                    plan.ActivationParams[input] = FromRange(input);
                }
            }

            switch (rule.Kind)
            {
                case OpKind.DataMovement:
                    // Same grid in and out, so ORT can drop the Q/DQ and move the int8 values as they are.
                    var shared = plan.ActivationParams[node.Input[0]];
                    foreach (var output in node.Output)
                    {
                        plan.ActivationParams[output] = shared;
                    }

                    break;
                case OpKind.RemovableActivation:
                    // The producer's output takes the activation's (clipped) range.
                    plan.ActivationParams[node.Input[0]] = FromRange(node.Output[0]);
                    plan.ActivationParams[node.Output[0]] = plan.ActivationParams[node.Input[0]];
                    break;
                default:
                    foreach (var output in node.Output)
                    {
                        // Softmax keeps its exact [0, 1] grid (a symmetric one would waste half the levels).
                        plan.ActivationParams[output] = node.OpType == "Softmax"
                            ? QuantMath.ForRange(0f, 1f, options.ActivationType, symmetric: false)
                            : FromRange(output);
                    }

                    break;
            }
        }
    }
}
