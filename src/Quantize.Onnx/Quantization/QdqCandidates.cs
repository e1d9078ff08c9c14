using Quantize.Onnx.Calibration;
using Quantize.Onnx.Model;
using Quantize.Onnx.Model.Proto;
using Quantize.Onnx.Preparation;

namespace Quantize.Onnx.Quantization;

/// <summary>
/// Which nodes may run quantized at all, before any region is formed: an op with an integer kernel, float activations
/// with calibrated ranges, constant weights in the shapes ORT's integer kernels take, and not excluded by the options.
/// </summary>
internal sealed class QdqCandidates(GraphView graph, TensorTypes types, IReadOnlyDictionary<string, TensorRange> ranges, QuantizationOptions options)
{
    /// <summary>The names of a node's activation inputs (optional inputs left empty skipped).</summary>
    public static IEnumerable<string> ActivationInputs(NodeProto node, OpRule rule) =>
        OpRules.ActivationInputs(node, rule).Where(i => i < node.Input.Count && node.Input[i].Length > 0).Select(i => node.Input[i]);

    /// <summary>Whether <paramref name="node"/> may run quantized (the planner then decides whether it does).</summary>
    public bool IsCandidate(NodeProto node)
    {
        var rule = OpRules.Find(node);
        if (rule is null || node.HasSubgraph() || options.Excludes(node))
        {
            return false;
        }

        if (options.FastKernelsOnly && OpRules.IsSlowWhenQuantized(node, graph))
        {
            return false;
        }

        // Every float activation must have a calibrated range and every output must be float.
        if (ActivationInputs(node, rule).Any(i => !types.IsFloat32(i) || (!graph.IsInitializer(i) && !HasRange(i))))
        {
            return false;
        }

        if (node.Output.Count == 0 || node.Output.Any(o => o.Length == 0 || !types.IsFloat32(o) || !HasRange(o)))
        {
            return false;
        }

        // ORT runs only nearest Resize directly on uint8; linear/cubic would stay DQ → Resize → Q.
        if (node.OpType == "Resize" && node.GetString("mode", "nearest") != "nearest")
        {
            return false;
        }

        return rule.Kind switch
        {
            OpKind.Anchor => IsQuantizableAnchor(node, rule),
            // A cheap op that produces a graph output stays float: its Q/DQ would only cost precision. A data-movement op
            // whose output a subgraph reads may run quantized: it keeps its input's grid, so the value the subgraph reads
            // (re-created by a DequantizeLinear) is exactly the float op's (QdqPlanner.PruneDeadEnds says why it must).
            OpKind.Elementwise => !node.Output.Any(graph.KeptNames.Contains),
            OpKind.DataMovement => !node.Output.Any(graph.Outputs.Contains),
            _ => true,
        };
    }

    private bool HasRange(string tensor) => ranges.TryGetValue(tensor, out var r) && r.IsFinite;

    private bool IsQuantizableAnchor(NodeProto node, OpRule rule)
    {
        var weight = node.Input.Count > rule.WeightInput ? node.Input[rule.WeightInput] : "";
        if (!graph.Initializers.TryGetValue(weight, out var w) || w.DataType != (int)TensorProto.Types.DataType.Float)
        {
            // Only constant weights get int8 initializers; a MatMul of two activations stays float for now.
            return false;
        }

        if (node.OpType == "Gemm")
        {
            // QGemm needs alpha=1 folded into scales it does not have, and beta=1 for an int32 bias of shape [N].
            if (node.GetFloat("alpha", 1f) != 1f || node.GetInt("transA", 0) != 0 || w.Dims.Count != 2)
            {
                return false;
            }

            if (node.Input.Count > 2 && node.Input[2].Length > 0)
            {
                var n = node.GetInt("transB", 0) == 1 ? w.Dims[0] : w.Dims[1];
                if (node.GetFloat("beta", 1f) != 1f || !graph.Initializers.TryGetValue(node.Input[2], out var c) || c.Dims.Count != 1 || c.Dims[0] != n)
                {
                    return false;
                }
            }
        }

        if (rule.BiasInput >= 0 && node.Input.Count > rule.BiasInput && node.Input[rule.BiasInput].Length > 0 && !graph.IsInitializer(node.Input[rule.BiasInput]))
        {
            return false;
        }

        return true;
    }
}
