using Quantize.Onnx.Model;
using Quantize.Onnx.Quantization;

namespace Quantize.Onnx.Tuning;

/// <summary>
/// Quantized units that can be kept float: an anchor with the elementwise activation only it feeds, or a quantized
/// elementwise node — in the main graph and in the control-flow bodies the engine quantizes (If branches, Loop/Scan
/// bodies: a speech model's convs may all live there), main graph first, each body in pre-order; body nodes are kept
/// float by name like any other. With uint8 outputs (<see cref="QuantizationOptions.UInt8Outputs"/>) the units whose QuantizeLinear
/// writes a graph output's bytes are none: kept float, they would leave that output with no measured bytes (QNT1532), so
/// the tuner never proposes them — not in a float set, nor among the "all other units float" of its damage probes.
/// </summary>
internal static class FloatUnits
{
    public static List<string[]> Of(Candidate candidate)
    {
        var main = new GraphView(candidate.Fp32.Graph);
        var pinned = candidate.Options.UInt8Outputs ? OutputWriters(main) : [];
        var units = new List<string[]>();
        foreach (var graph in ControlFlowBodies.Of(candidate.Fp32).Select(b => b.Graph).Prepend(candidate.Fp32.Graph))
        {
            units.AddRange(In(ReferenceEquals(graph, main.Graph) ? main : new GraphView(graph), candidate.QuantizedNodeNames).Where(u => !u.Any(pinned.Contains)));
        }

        return units;
    }

    /// <summary>The units of one graph's own nodes (an activation is paired with the anchor before it in the same graph only).</summary>
    private static List<string[]> In(GraphView graph, IReadOnlySet<string> quantized)
    {
        var units = new List<string[]>();
        var taken = new HashSet<string>(StringComparer.Ordinal);
        foreach (var node in graph.Graph.Node)
        {
            if (!quantized.Contains(node.Name) || taken.Contains(node.Name) || OpRules.Find(node) is not { Kind: OpKind.Anchor or OpKind.Elementwise } rule)
            {
                continue;
            }

            var unit = new List<string> { node.Name };
            if (rule.Kind == OpKind.Anchor && graph.Consumers(node.Output[0]) is [var (next, _)] && quantized.Contains(next.Name)
                && OpRules.Find(next) is { Kind: OpKind.Elementwise } && next.Input.Count == 1)
            {
                unit.Add(next.Name);
            }

            taken.UnionWith(unit);
            units.Add([.. unit]);
        }

        return units;
    }

    /// <summary>
    /// Per graph output, the node whose quantized output becomes its bytes: its producer, or, through a Relu/Clip folded
    /// into the producer's grid or a data-movement op that keeps its input's grid, the op before it.
    /// </summary>
    private static HashSet<string> OutputWriters(GraphView graph)
    {
        var writers = new HashSet<string>(StringComparer.Ordinal);
        foreach (var output in graph.Graph.Output)
        {
            var node = graph.Producer(output.Name);
            while (node is not null && OpRules.Find(node)?.Kind is OpKind.RemovableActivation or OpKind.DataMovement)
            {
                node = graph.Producer(node.Input[0]);
            }

            if (node is not null)
            {
                writers.Add(node.Name);
            }
        }

        return writers;
    }
}
