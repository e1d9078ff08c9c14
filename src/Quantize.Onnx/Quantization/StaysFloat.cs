using Quantize.Onnx.Model;
using Quantize.Onnx.Model.Proto;

namespace Quantize.Onnx.Quantization;

/// <summary>
/// The nodes the engine leaves float because of what they are, not because of a setting, worded for warning
/// QNT2005 so no part of a model is silently left unquantized: control flow (If/Loop/Scan: calibration and the
/// QDQ form cover the main graph and its If branches (<see cref="IfBranches"/>); Loop/Scan bodies run a data-dependent
/// number of times and are not calibrated yet) and recurrent layers ORT has no integer kernel
/// for (GRU, RNN, and LSTMs <see cref="LstmQuantizer"/> cannot rewrite).
/// </summary>
internal static class StaysFloat
{
    private static readonly HashSet<string> Recurrent = new(StringComparer.Ordinal) { "LSTM", "GRU", "RNN" };

    public static string? Describe(ModelProto model)
    {
        var parts = new List<string>();
        var initializers = new GraphView(model.Graph).Initializers;
        var quantizedIfs = IfBranches.Of(model).Select(b => b.If).ToHashSet(ReferenceEqualityComparer.Instance);
        foreach (var node in model.Graph.Node)
        {
            if (node.HasSubgraph() && !quantizedIfs.Contains(node))
            {
                var inner = Subgraphs(node).SelectMany(AllNodes).ToList();
                var heavy = inner.Where(n => OpRules.Find(n) is { Kind: OpKind.Anchor }).GroupBy(n => n.OpType, StringComparer.Ordinal)
                    .Select(g => $"{g.Count()} {g.Key}").ToList();
                parts.Add($"{node.OpType} '{node.Name}' ({inner.Count} node(s) in its subgraphs{(heavy.Count == 0 ? "" : ", " + string.Join(", ", heavy))}: " +
                    "calibration and QDQ cover the main graph and the branches of its If nodes; a Loop/Scan body runs a data-dependent number of times, " +
                    "and an If whose branches reuse a name defined elsewhere in the model, or nested in a subgraph, is not calibrated)");
            }
            else if (node.Domain is "" or "ai.onnx" && Recurrent.Contains(node.OpType) && !LstmQuantizer.CanQuantize(node, initializers))
            {
                parts.Add(node.OpType == "LSTM"
                    ? $"LSTM '{node.Name}' (only an LSTM with constant 3-D W and R weights and no 'layout' attribute becomes DynamicQuantizeLSTM)"
                    : $"{node.OpType} '{node.Name}' (ONNX Runtime's CPU provider has no integer kernel for GRU and RNN)");
            }
        }

        return parts.Count == 0 ? null
            : $"{parts.Count} node(s) stay float: {string.Join("; ", parts.Take(8))}{(parts.Count > 8 ? "; ..." : "")}. The rest of the model is quantized around them; their inputs and outputs stay float.";
    }

    private static IEnumerable<GraphProto> Subgraphs(NodeProto node) =>
        node.Attribute.SelectMany(a => a.Graphs.Append(a.G)).OfType<GraphProto>();

    private static IEnumerable<NodeProto> AllNodes(GraphProto graph) =>
        graph.Node.SelectMany(n => n.HasSubgraph() ? Subgraphs(n).SelectMany(AllNodes).Prepend(n) : [n]);
}
