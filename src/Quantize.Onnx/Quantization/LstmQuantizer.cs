using Quantize.Onnx.Model;
using Quantize.Onnx.Model.Proto;

namespace Quantize.Onnx.Quantization;

/// <summary>
/// Rewrites LSTM layers with constant weights into ONNX Runtime's <c>com.microsoft.DynamicQuantizeLSTM</c>:
/// the input (W [D, 4H, I]) and recurrent (R [D, 4H, H]) weights become int8, symmetric, one scale per gate
/// row (per direction when per-tensor), stored transposed ([D, I, 4H], [D, H, 4H]) as the kernel reads them;
/// the kernel quantizes each step's input and hidden state itself. QDQ has no recurrent form ORT fuses, and a
/// static range for the hidden state would have to cover every time step, so this is the same in static and
/// dynamic mode. Bias, peepholes and states stay float.
/// </summary>
internal static class LstmQuantizer
{
    public const string Domain = "com.microsoft";

    /// <summary>
    /// Attributes DynamicQuantizeLSTM shares with LSTM; an LSTM with any other stays float. Opset 14's <c>layout</c> it
    /// lacks: at 0 (sequence first, the default, as torch exports write it; ORT's CPU provider runs no other) it is dropped.
    /// </summary>
    private static readonly HashSet<string> KernelAttributes = new(StringComparer.Ordinal)
    {
        "activation_alpha", "activation_beta", "activations", "clip", "direction", "hidden_size", "input_forget",
    };

    /// <summary>True when <paramref name="node"/> is an LSTM this rewriter turns into DynamicQuantizeLSTM.</summary>
    public static bool CanQuantize(NodeProto node, IReadOnlyDictionary<string, TensorProto> initializers) =>
        node.OpType == "LSTM" && node.Domain is "" or "ai.onnx"
        && node.Input.Count >= 3
        && node.Attribute.All(a => KernelAttributes.Contains(a.Name) || IsDefaultLayout(a))
        && IsWeight(node.Input[1], initializers) && IsWeight(node.Input[2], initializers);

    /// <summary>
    /// Rewrites every eligible LSTM of <paramref name="model"/>'s main graph and of its control-flow bodies
    /// (<see cref="ControlFlowBodies"/>, any depth) in place; returns their names. A body's LSTM may read its weights from
    /// the outer scope: its int8 weights are placed in the main graph, which every body sees, with names unique in the whole model.
    /// </summary>
    public static List<string> Rewrite(ModelProto model, QuantizationOptions options)
    {
        var graph = model.Graph;
        var view = new GraphView(graph);
        var replaced = new HashSet<string>(StringComparer.Ordinal);
        var rewritten = RewriteGraph(graph, view.Initializers, new NameAllocator(view.AllNames()), options, graph, replaced);
        var bodies = ControlFlowBodies.Of(model);
        if (bodies.Count > 0)
        {
            var names = new NameAllocator(ControlFlowBodies.AllNames(graph));
            foreach (var body in bodies)
            {
                var visible = ControlFlowBodies.VisibleInitializers(body, graph, own: true);
                rewritten.AddRange(RewriteGraph(body.Graph, visible, names, options, graph, replaced));
            }

            // A weight an LSTM read from an enclosing body is dropped there once nothing reads it.
            BodyQuantizer.RemoveUnread(model, replaced);
        }

        if (rewritten.Count == 0)
        {
            return rewritten;
        }

        if (!model.OpsetImport.Any(o => o.Domain == Domain))
        {
            model.OpsetImport.Add(new OperatorSetIdProto { Domain = Domain, Version = 1 });
        }

        UnitRewriter.DropUnread(graph, replaced);
        return rewritten;
    }

    /// <summary>Rewrites the LSTMs of <paramref name="graph"/>, their int8 weights stored in <paramref name="store"/>.</summary>
    private static List<string> RewriteGraph(
        GraphProto graph, IReadOnlyDictionary<string, TensorProto> initializers, NameAllocator names, QuantizationOptions options, GraphProto store, HashSet<string> replaced)
    {
        var rewritten = new List<string>();
        for (var i = 0; i < graph.Node.Count; i++)
        {
            var node = graph.Node[i];
            if (!CanQuantize(node, initializers) || options.ExcludedNodes.Contains(node.Name) || options.ExcludedOpTypes.Contains("LSTM"))
            {
                continue;
            }

            var prefix = node.Name.Length > 0 ? node.Name : node.Output[0];
            var w = Quantize(initializers[node.Input[1]], names, options, store);
            var r = Quantize(initializers[node.Input[2]], names, options, store);
            var quantized = new NodeProto
            {
                OpType = "DynamicQuantizeLSTM",
                Domain = Domain,
                Name = names.Next(prefix + "_quant"),
                Input = { node.Input[0], w.Data, r.Data },
                Output = { node.Output },
            };
            for (var k = 3; k < 8; k++)
            {
                quantized.Input.Add(k < node.Input.Count ? node.Input[k] : "");
            }

            quantized.Input.Add([w.Scale, w.ZeroPoint, r.Scale, r.ZeroPoint]);
            quantized.Attribute.Add(node.Attribute.Where(a => !IsDefaultLayout(a)));
            graph.Node[i] = quantized;
            rewritten.Add(node.Name);
            replaced.Add(node.Input[1]);
            replaced.Add(node.Input[2]);
        }

        return rewritten;
    }

    private static bool IsDefaultLayout(AttributeProto attribute) => attribute is { Name: "layout", I: 0 };

    private static bool IsWeight(string name, IReadOnlyDictionary<string, TensorProto> initializers) =>
        initializers.TryGetValue(name, out var t) && t.DataType == (int)TensorProto.Types.DataType.Float && t.Dims.Count == 3 && t.Dims.All(d => d > 0);

    /// <summary>[D, 4H, K] float → int8 [D, K, 4H] with scales and zero points [D, 4H] (per row) or [D] (per direction).</summary>
    private static (string Data, string Scale, string ZeroPoint) Quantize(TensorProto weight, NameAllocator names, QuantizationOptions options, GraphProto graph)
    {
        var perRow = options.PerChannel;
        var (qmin, qmax) = QuantMath.Limits(QuantType.Int8, symmetric: true, options.ReduceRange);
        var (directions, rows, depth) = ((int)weight.Dims[0], (int)weight.Dims[1], (int)weight.Dims[2]);
        var values = TensorValues.ReadFloats(weight);
        var groups = perRow ? directions * rows : directions;
        var groupSize = values.Length / groups;
        var scales = new float[groups];
        var safeRows = options.SaturationSafeWeights ? SaturationBound.PairSums(values, [directions * rows, depth], KOrder.Rows) : null;
        for (var g = 0; g < groups; g++)
        {
            var absMax = 0f;
            foreach (var v in values.AsSpan(g * groupSize, groupSize))
            {
                absMax = Math.Max(absMax, Math.Abs(v));
            }

            scales[g] = absMax > 0 ? absMax / qmax : 1f;
            if (safeRows is not null && absMax > 0)
            {
                // Every row of the group sums its products along K (the kernel's B is this weight transposed, [K, 4H]).
                var rowsPerGroup = rows * directions / groups;
                scales[g] = Math.Max(scales[g], SaturationBound.SafeScale(safeRows.AsSpan(g * rowsPerGroup, rowsPerGroup).ToArray().Max()));
            }
        }

        var transposed = new sbyte[values.Length];
        for (var d = 0; d < directions; d++)
        {
            for (var row = 0; row < rows; row++)
            {
                var step = scales[perRow ? (d * rows) + row : d];
                for (var k = 0; k < depth; k++)
                {
                    var value = values[((((long)d * rows) + row) * depth) + k];
                    transposed[((((long)d * depth) + k) * rows) + row] = (sbyte)QuantMath.Quantize(value, step, 0, qmin, qmax);
                }
            }
        }

        long[] scaleDims = perRow ? [directions, rows] : [directions];
        var data = TensorValues.FromInt8(names.Next(weight.Name + "_quantized"), [directions, depth, rows], transposed);
        var scale = TensorValues.FromFloats(names.Next(weight.Name + "_scale"), scaleDims, scales);
        var zeroPoint = TensorValues.FromInt8(names.Next(weight.Name + "_zero_point"), scaleDims, new sbyte[groups]);
        graph.Initializer.Add([data, scale, zeroPoint]);
        return (data.Name, scale.Name, zeroPoint.Name);
    }
}
