using Quantize.Onnx.Model;
using Quantize.Onnx.Quantization;

namespace Quantize.Onnx.Tuning;

/// <summary>Quantized units that can be kept float: an anchor with the elementwise activation only it feeds, or a quantized elementwise node.</summary>
internal static class FloatUnits
{
    public static List<string[]> Of(Candidate candidate)
    {
        var graph = new GraphView(candidate.Fp32.Graph);
        var quantized = candidate.QuantizedNodeNames;
        var units = new List<string[]>();
        var taken = new HashSet<string>(StringComparer.Ordinal);
        foreach (var node in candidate.Fp32.Graph.Node)
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
}
