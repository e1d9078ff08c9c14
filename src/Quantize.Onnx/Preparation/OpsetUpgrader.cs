using Quantize.Onnx.Model;
using Quantize.Onnx.Model.Proto;

namespace Quantize.Onnx.Preparation;

/// <summary>
/// Raises a model's default-domain opset to 13, the first with per-channel QuantizeLinear. Every op
/// whose signature or semantics changed between opset 7 and 13 (ONNX's Changelog, and the adapters of
/// its version converter) is rewritten:
/// <list type="bullet">
/// <item>attributes that became inputs: Slice (10), TopK k (10), Clip min/max and Pad pads/value (11),
/// Dropout ratio (12), Squeeze/Unsqueeze/ReduceSum axes and Split split (13); the other Reduce ops keep
/// their axes attribute until 18, so they stay as they are;</item>
/// <item>ops replaced: Upsample (deprecated at 10) and Resize-10 become Resize-11 with the rounding ORT
/// applied before; Scatter (deprecated at 11) becomes ScatterElements;</item>
/// <item>changed semantics: Softmax, LogSoftmax and Hardmax normalised the input flattened to 2-D at
/// <c>axis</c> before 13, one axis from 13 — the axis is proven last (from the rank; see
/// <see cref="TensorRanks"/>), else the node becomes Flatten → op → Reshape(original shape);
/// BatchNormalization lost <c>spatial</c> at 9 (spatial=0, per-activation statistics, is flattened
/// likewise).</item>
/// </list>
/// Ops known to be unchanged pass through (Gemm's and MatMul's broadcasting is the same from 7 to 13).
/// Any other op, a subgraph, or a version older than 7 (broadcasting rules changed) makes the upgrade
/// refuse rather than guess: <see cref="TryUpgrade(ModelProto, TensorTypes, ShapeProbe?, out string)"/>
/// then returns false with a reason that names the node and says what would fix it, and the model is left untouched.
/// </summary>
internal static class OpsetUpgrader
{
    public const long TargetOpset = 13;

    internal const string ReExport = "re-export the model with opset 13 or later";

    // Ops whose semantics for the inputs a model can hold are identical from opset 7 to 13; later
    // versions only added element types, optional inputs or attributes with backward-compatible defaults.
    internal static readonly HashSet<string> Unchanged = new(StringComparer.Ordinal)
    {
        "Abs", "Acos", "Acosh", "Add", "And", "ArgMax", "ArgMin", "Asin", "Asinh", "Atan", "Atanh",
        "AveragePool", "BitShift", "Cast", "Ceil", "Celu", "Compress", "Concat", "Constant", "ConstantOfShape",
        "Conv", "ConvTranspose", "Cos", "Cosh", "CumSum", "DepthToSpace", "Det", "Div", "Einsum", "Elu", "Equal",
        "Erf", "Exp", "Expand", "EyeLike", "Flatten", "Floor", "GRU", "Gather", "GatherElements",
        "GatherND", "Gemm", "GlobalAveragePool", "GlobalLpPool", "GlobalMaxPool", "Greater",
        "GreaterOrEqual", "HardSigmoid", "Identity", "InstanceNormalization", "IsInf", "IsNaN", "LRN",
        "LSTM", "LeakyRelu", "Less", "LessOrEqual", "Log", "LpNormalization", "LpPool", "MatMul", "Max",
        "MaxPool", "MaxRoiPool", "MaxUnpool", "Mean", "MeanVarianceNormalization", "Min", "Mod", "Mul", "Neg",
        "NonMaxSuppression", "NonZero", "Not", "OneHot", "Or", "PRelu", "Pow", "RNN",
        "Range", "Reciprocal", "ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceMax",
        "ReduceMean", "ReduceMin", "ReduceProd", "ReduceSumSquare", "Relu", "Reshape", "ReverseSequence",
        "RoiAlign", "Round", "ScatterElements", "ScatterND", "Selu", "Shape", "Shrink", "Sigmoid", "Sign", "Sin", "Sinh",
        "Size", "Softplus", "Softsign", "SpaceToDepth", "Sqrt", "Sub", "Sum", "Tan", "Tanh",
        "ThresholdedRelu", "Tile", "Transpose", "Unique", "Where", "Xor",
    };

    private static readonly HashSet<string> SoftmaxFamily = new(StringComparer.Ordinal) { "Softmax", "LogSoftmax", "Hardmax" };

    public static bool TryUpgrade(ModelProto model, TensorTypes types, out string reason) => TryUpgrade(model, types, probe: null, out reason);

    /// <param name="probe">Runs the model on a real sample for the ranks static inference left unknown; null: no sample.</param>
    public static bool TryUpgrade(ModelProto model, TensorTypes types, ShapeProbe? probe, out string reason)
    {
        var from = model.DefaultOpset();
        if (from >= TargetOpset)
        {
            reason = "";
            return true;
        }

        if (from < 7)
        {
            reason = $"opset {from} predates ONNX's broadcasting rules (opset 7); {ReExport}";
            return false;
        }

        if (model.Graph.Node.FirstOrDefault(n => n.HasSubgraph()) is { } control)
        {
            reason = $"node '{control.Name}' ({control.OpType}) holds a subgraph, which the upgrade does not rewrite; {ReExport}";
            return false;
        }

        var ranks = new TensorRanks(model.Graph, types, probe);
        ranks.Observe(model.Graph.Node
            .Where(n => IsDefaultDomain(n) && SoftmaxFamily.Contains(n.OpType) && n.GetInt("axis", 1) != -1)
            .Select(n => n.Input[0]));

        var work = model.Graph.Clone();
        var rewriter = new NodeRewriter(work, from, types, ranks);
        var nodes = new List<NodeProto>(work.Node.Count);
        foreach (var node in work.Node)
        {
            if (IsDefaultDomain(node))
            {
                var opType = node.OpType; // Upsample and Scatter are renamed
                if (!rewriter.TryRewrite(node, out reason))
                {
                    reason = $"node '{node.Name}' ({opType}): {reason}";
                    return false;
                }

                nodes.AddRange(rewriter.Edits.Before);
                nodes.Add(node);
                nodes.AddRange(rewriter.Edits.After);
            }
            else
            {
                nodes.Add(node);
            }
        }

        work.Node.Clear();
        work.Node.Add(nodes);
        work.Initializer.Add(rewriter.Edits.Added);
        model.Graph = work;
        foreach (var opset in model.OpsetImport.Where(o => o.Domain is "" or "ai.onnx"))
        {
            opset.Version = TargetOpset;
        }

        reason = "";
        return true;
    }

    private static bool IsDefaultDomain(NodeProto node) => node.Domain is "" or "ai.onnx";
}
