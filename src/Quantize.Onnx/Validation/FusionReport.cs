using Microsoft.ML.OnnxRuntime;
using Quantize.Onnx.Model;
using Quantize.Onnx.Model.Proto;
using Quantize.Onnx.Preparation;

namespace Quantize.Onnx.Validation;

/// <summary>
/// What ONNX Runtime made of the QDQ model: how many integer kernels it formed (MatMulNBits counts as one), and which quantized
/// node groups stayed DequantizeLinear → float op → QuantizeLinear (bigger and slower than FP32).
/// </summary>
public sealed record FusionReport(
    IReadOnlyDictionary<string, int> IntegerKernels,
    IReadOnlyList<string> UnfusedNodes,
    int RemainingQuantizeLinear,
    int RemainingDequantizeLinear)
{
    public int FusedCount => IntegerKernels.Values.Sum();

    private static readonly HashSet<string> IntegerOps = new(StringComparer.Ordinal)
    {
        "QLinearConv", "QLinearMatMul", "MatMulIntegerToFloat", "DynamicQuantizeMatMul", "QGemm", "QLinearAdd", "QLinearMul",
        "QLinearConcat", "QLinearAveragePool", "QLinearGlobalAveragePool", "QLinearLeakyRelu",
        "QLinearSigmoid", "QLinearSoftmax", "QLinearWhere", "QLinearConvTranspose", "ConvInteger", "MatMulInteger", "DynamicQuantizeLSTM",

        // Weight-only 4-bit (weight4 mode): block-quantized weights unpacked inside the kernel (int8 compute at
        // accuracy level 4), and ORT's fusions of it with a following activation.
        "MatMulNBits", "MatMulNBitsSiluMul",
    };

    /// <summary>
    /// Loads the model with ORT's extended optimisations (where the QDQ fusions run, without the
    /// hardware-specific layout changes of the "all" level) and reads the optimised graph back.
    /// </summary>
    /// <param name="quantized">The QDQ model.</param>
    /// <param name="quantizedNodes">Names of the nodes the writer meant to run as integer kernels; float
    /// ops at the border of a quantized region also sit between DQ and Q but are float by design.</param>
    public static FusionReport Analyze(ModelProto quantized, IReadOnlySet<string> quantizedNodes) =>
        FromOptimizedGraph(OrtGraphOptimizer.Run(quantized, GraphOptimizationLevel.ORT_ENABLE_EXTENDED).Graph, quantizedNodes);

    internal static FusionReport FromOptimizedGraph(GraphProto graph, IReadOnlySet<string> quantizedNodes)
    {
        // Control-flow bodies are optimised and fused by ORT like the main graph: their kernels count too (names are unique model-wide).
        var nodes = ControlFlowBodies.AllNodes(graph).ToList();
        var producers = new Dictionary<string, NodeProto>(StringComparer.Ordinal);
        var consumers = new Dictionary<string, List<NodeProto>>(StringComparer.Ordinal);
        foreach (var node in nodes)
        {
            foreach (var o in node.Output)
            {
                producers[o] = node;
            }

            foreach (var i in node.Input)
            {
                if (!consumers.TryGetValue(i, out var list))
                {
                    consumers[i] = list = [];
                }

                list.Add(node);
            }
        }

        var kernels = new SortedDictionary<string, int>(StringComparer.Ordinal);
        var unfused = new List<string>();
        foreach (var node in nodes)
        {
            if (IntegerOps.Contains(node.OpType))
            {
                kernels[node.OpType] = kernels.GetValueOrDefault(node.OpType) + 1;
                continue;
            }

            if (node.OpType is "QuantizeLinear" or "DequantizeLinear" || !quantizedNodes.Contains(node.Name))
            {
                continue;
            }

            // A float op between DequantizeLinear inputs and a QuantizeLinear output is a node unit
            // the writer meant to be integer and ORT did not fuse.
            var readsDequantized = node.Input.Any(i => producers.TryGetValue(i, out var p) && p.OpType == "DequantizeLinear");
            var feedsQuantize = node.Output.Any(o => consumers.TryGetValue(o, out var c) && c.Count > 0 && c.All(n => n.OpType == "QuantizeLinear"));
            if (readsDequantized && feedsQuantize)
            {
                unfused.Add($"{node.Name} ({node.OpType})");
            }
        }

        return new FusionReport(
            kernels,
            unfused,
            nodes.Count(n => n.OpType == "QuantizeLinear"),
            nodes.Count(n => n.OpType == "DequantizeLinear"));
    }
}
