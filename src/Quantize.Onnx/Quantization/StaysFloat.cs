using Quantize.Onnx.Model;
using Quantize.Onnx.Model.Proto;
using Quantize.Onnx.Preparation;

namespace Quantize.Onnx.Quantization;

/// <summary>
/// The nodes the engine leaves float because of what they are, not because of a setting, worded for warning
/// QNT2005 so no part of a model is silently left unquantized: control flow whose bodies are not calibrated (an If,
/// Loop or Scan whose bodies reuse a name defined elsewhere in the model, a Scan of opset 8, other ops with subgraphs;
/// see <see cref="ControlFlowBodies"/>; a body ORT cannot type on its own, see <see cref="BodyTypeProbe"/>) and recurrent layers ORT has no integer kernel for (GRU, RNN, and LSTMs
/// <see cref="LstmQuantizer"/> cannot rewrite), in the main graph or in a quantized body.
/// </summary>
internal static class StaysFloat
{
    private static readonly HashSet<string> Recurrent = new(StringComparer.Ordinal) { "LSTM", "GRU", "RNN" };

    public static string? Describe(ModelProto model, TensorTypes types)
    {
        var parts = new List<string>();
        var bodies = ControlFlowBodies.Of(model);
        var untyped = bodies.Where(b => types.UntypedBodies.ContainsKey(b.Describe())).ToList();
        foreach (var body in untyped)
        {
            parts.Add($"the {body.Describe()} (ONNX Runtime could not type its tensors on their own: {types.UntypedBodies[body.Describe()]}; it is not calibrated)");
        }

        var owners = bodies.Select(b => b.Owner).ToHashSet(ReferenceEqualityComparer.Instance);
        var scopes = bodies.Select(b => (b.Graph, (Body?)b)).Prepend((model.Graph, null));
        foreach (var (graph, body) in scopes)
        {
            var initializers = body is null ? new GraphView(graph).Initializers : ControlFlowBodies.VisibleInitializers(body, model.Graph, own: true);
            var where = body is null ? "" : $" in the {body.Describe()}";
            foreach (var node in graph.Node)
            {
                if (node.HasSubgraph() && !owners.Contains(node))
                {
                    var inner = ControlFlowBodies.Subgraphs(node).SelectMany(ControlFlowBodies.AllNodes).ToList();
                    var heavy = inner.Where(n => OpRules.Find(n) is { Kind: OpKind.Anchor }).GroupBy(n => n.OpType, StringComparer.Ordinal)
                        .Select(g => $"{g.Count()} {g.Key}").ToList();
                    parts.Add($"{node.OpType} '{node.Name}'{where} ({inner.Count} node(s) in its subgraphs{(heavy.Count == 0 ? "" : ", " + string.Join(", ", heavy))}: " +
                        "the bodies of If, Loop and Scan (opset 9+) are calibrated and quantized unless they reuse a name defined elsewhere in the model; rename it)");
                }
                else if (node.Domain is "" or "ai.onnx" && Recurrent.Contains(node.OpType) && !LstmQuantizer.CanQuantize(node, initializers))
                {
                    parts.Add(node.OpType == "LSTM"
                        ? $"LSTM '{node.Name}'{where} (only an LSTM with constant 3-D W and R weights and no attribute beyond DynamicQuantizeLSTM's ('layout' 0 aside) becomes DynamicQuantizeLSTM)"
                        : $"{node.OpType} '{node.Name}'{where} (ONNX Runtime's CPU provider has no integer kernel for GRU and RNN)");
                }
            }
        }

        return parts.Count == 0 ? null
            : $"{parts.Count} {(untyped.Count > 0 ? "part(s) of the model" : "node(s)")} stay float: {string.Join("; ", parts.Take(8))}{(parts.Count > 8 ? "; ..." : "")}. The rest of the model is quantized around them; their inputs and outputs stay float.";
    }
}
