using Quantize.Onnx.Model;
using Quantize.Onnx.Model.Proto;

namespace Quantize.Onnx.Quantization;

/// <summary>
/// Stores large embedding tables (a Gather on axis 0 of a constant float [rows, width] table, e.g. a
/// transformer's word embeddings, half of MiniLM's size) as int8 with one symmetric scale per row,
/// and reads them back in standard ONNX ops, only for the rows the indices pick:
/// <code>
/// Cast(Gather(table_int8, ids), float) * Gather(row_scales [rows, 1], ids)
/// </code>
/// Per-row scales keep each looked-up vector within half a step of its own range (a per-tensor scale
/// would flatten the many small rows). The cost is one extra Gather, Cast and Mul on the looked-up rows.
/// </summary>
internal static class EmbeddingQuantizer
{
    /// <summary>Smaller tables are left float: they barely count in the model's size.</summary>
    public const int MinimumElements = 65536;

    /// <summary>Rewrites every eligible Gather of <paramref name="graph"/> in place; returns the names of the Gathers rewritten.</summary>
    public static List<string> Rewrite(GraphProto graph, QuantizationOptions options)
    {
        var view = new GraphView(graph);
        var names = new NameAllocator(view.AllNames());
        var rewritten = new List<string>();
        var replaced = new HashSet<string>(StringComparer.Ordinal);
        var nodes = new List<NodeProto>();
        foreach (var node in graph.Node)
        {
            if (!IsEmbeddingLookup(node, view, options, out var table))
            {
                nodes.Add(node);
                continue;
            }

            var prefix = node.Name.Length > 0 ? node.Name : node.Output[0];
            var (quantized, scales) = QuantizeRows(table, names.Next(table.Name + "_quantized"), names.Next(table.Name + "_row_scale"));
            graph.Initializer.Add(quantized);
            graph.Initializer.Add(scales);
            var (rows, rowsFloat, rowScales) = (names.Next(prefix + "_int8_rows"), names.Next(prefix + "_rows"), names.Next(prefix + "_row_scales"));
            nodes.Add(new NodeProto { OpType = "Gather", Name = names.Next(prefix + "_int8"), Input = { quantized.Name, node.Input[1] }, Output = { rows } });
            var cast = new NodeProto { OpType = "Cast", Name = names.Next(prefix + "_to_float"), Input = { rows }, Output = { rowsFloat } };
            cast.SetInt("to", (int)TensorProto.Types.DataType.Float);
            nodes.Add(cast);
            nodes.Add(new NodeProto { OpType = "Gather", Name = names.Next(prefix + "_scales"), Input = { scales.Name, node.Input[1] }, Output = { rowScales } });
            nodes.Add(new NodeProto { OpType = "Mul", Name = names.Next(prefix + "_dequantize"), Input = { rowsFloat, rowScales }, Output = { node.Output[0] } });
            rewritten.Add(node.Name);
            replaced.Add(table.Name);
        }

        if (rewritten.Count == 0)
        {
            return rewritten;
        }

        graph.Node.Clear();
        graph.Node.Add(nodes);

        UnitRewriter.DropUnread(graph, replaced);
        return rewritten;
    }

    private static bool IsEmbeddingLookup(NodeProto node, GraphView view, QuantizationOptions options, out TensorProto table)
    {
        table = null!;
        if (node.OpType != "Gather" || node.Domain is not ("" or "ai.onnx") || node.GetInt("axis", 0) != 0 || node.Input.Count != 2
            || options.ExcludedNodes.Contains(node.Name) || options.ExcludedOpTypes.Contains("Gather")
            || !view.Initializers.TryGetValue(node.Input[0], out var t) || t.DataType != (int)TensorProto.Types.DataType.Float
            || t.Dims.Count != 2 || t.Dims[0] * t.Dims[1] < MinimumElements)
        {
            return false;
        }

        table = t;
        return true;
    }

    private static (TensorProto Data, TensorProto Scales) QuantizeRows(TensorProto table, string dataName, string scaleName)
    {
        var values = TensorValues.ReadFloats(table);
        var (rows, width) = ((int)table.Dims[0], (int)table.Dims[1]);
        var q = new sbyte[values.Length];
        var scales = new float[rows];
        for (var r = 0; r < rows; r++)
        {
            var row = values.AsSpan(r * width, width);
            var absMax = 0f;
            foreach (var v in row)
            {
                absMax = Math.Max(absMax, Math.Abs(v));
            }

            scales[r] = absMax > 0 ? absMax / 127f : 1f;
            for (var i = 0; i < width; i++)
            {
                q[(r * width) + i] = (sbyte)QuantMath.Quantize(row[i], scales[r], 0, -127, 127);
            }
        }

        return (TensorValues.FromInt8(dataName, [rows, width], q), TensorValues.FromFloats(scaleName, [rows, 1], scales));
    }
}
