using Quantize.Onnx.Model.Proto;

namespace Quantize.Onnx.Quantization;

/// <summary>
/// Recognises a model that is already quantized — a QAT or QDQ export (QuantizeLinear /
/// DequantizeLinear), an operator-form model (QLinear*, QGemm, ...) or a dynamically quantized one
/// (MatMulInteger, ConvInteger, DynamicQuantizeLinear, ...) — so it is not quantized a second time.
/// </summary>
internal static class QuantizedOps
{
    private static readonly HashSet<string> Names = new(StringComparer.Ordinal)
    {
        "QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "MatMulInteger", "ConvInteger",
        "QGemm", "QAttention", "QEmbedLayerNormalization", "DynamicQuantizeMatMul", "MatMulIntegerToFloat",
        "DynamicQuantizeLSTM", "MatMulNBits", "GatherBlockQuantized",
    };

    /// <summary>The quantized op types in the graph (subgraphs included) with their counts, by op type; empty for a float model.</summary>
    public static SortedDictionary<string, int> Find(GraphProto graph)
    {
        var found = new SortedDictionary<string, int>(StringComparer.Ordinal);
        Count(graph, found);
        return found;
    }

    public static string Describe(IReadOnlyDictionary<string, int> found) =>
        string.Join(", ", found.Select(kv => $"{kv.Key} x{kv.Value}"));

    private static void Count(GraphProto graph, SortedDictionary<string, int> found)
    {
        foreach (var node in graph.Node)
        {
            if (Names.Contains(node.OpType) || node.OpType.StartsWith("QLinear", StringComparison.Ordinal))
            {
                found[node.OpType] = found.GetValueOrDefault(node.OpType) + 1;
            }

            foreach (var attribute in node.Attribute)
            {
                foreach (var g in attribute.Graphs.Append(attribute.G).OfType<GraphProto>())
                {
                    Count(g, found);
                }
            }
        }
    }
}
