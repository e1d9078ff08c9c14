using Quantize.Onnx.Model;
using Quantize.Onnx.Model.Proto;

namespace Quantize.Onnx.Quantization;

/// <summary>
/// The nodes the engine leaves float because of what they are, not because of a setting, worded for warning
/// QNT2005 so no part of a model is silently left unquantized: control flow (If/Loop/Scan: calibration and the
/// QDQ form cover the main graph; a subgraph runs a data-dependent number of times or not at all, so its
/// activation ranges cannot be calibrated like the main graph's) and recurrent layers (LSTM/GRU/RNN: ORT's
/// CPU provider has no QDQ integer kernel for them).
/// </summary>
internal static class StaysFloat
{
    private static readonly HashSet<string> Recurrent = new(StringComparer.Ordinal) { "LSTM", "GRU", "RNN" };

    public static string? Describe(ModelProto model)
    {
        var parts = new List<string>();
        foreach (var node in model.Graph.Node)
        {
            if (node.HasSubgraph())
            {
                var inner = Subgraphs(node).SelectMany(AllNodes).ToList();
                var heavy = inner.Where(n => OpRules.Find(n) is { Kind: OpKind.Anchor }).GroupBy(n => n.OpType, StringComparer.Ordinal)
                    .Select(g => $"{g.Count()} {g.Key}").ToList();
                parts.Add($"{node.OpType} '{node.Name}' ({inner.Count} node(s) in its subgraphs{(heavy.Count == 0 ? "" : ", " + string.Join(", ", heavy))}: " +
                    "calibration and QDQ cover the main graph, and a subgraph's activations depend on which branch or how many iterations run)");
            }
            else if (node.Domain is "" or "ai.onnx" && Recurrent.Contains(node.OpType))
            {
                parts.Add($"{node.OpType} '{node.Name}' (ONNX Runtime's CPU provider has no integer QDQ kernel for recurrent layers)");
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
