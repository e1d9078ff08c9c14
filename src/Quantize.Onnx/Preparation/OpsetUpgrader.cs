using Microsoft.ML.OnnxRuntime.Tensors;
using Quantize.Onnx.Model;
using Quantize.Onnx.Model.Proto;
using DataType = Quantize.Onnx.Model.Proto.TensorProto.Types.DataType;

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

    private const string ReExport = "re-export the model with opset 13 or later";

    // Ops whose semantics for the inputs a model can hold are identical from opset 7 to 13; later
    // versions only added element types, optional inputs or attributes with backward-compatible defaults.
    private static readonly HashSet<string> Unchanged = new(StringComparer.Ordinal)
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

                nodes.AddRange(rewriter.Before);
                nodes.Add(node);
                nodes.AddRange(rewriter.After);
            }
            else
            {
                nodes.Add(node);
            }
        }

        work.Node.Clear();
        work.Node.Add(nodes);
        work.Initializer.Add(rewriter.Added);
        model.Graph = work;
        foreach (var opset in model.OpsetImport.Where(o => o.Domain is "" or "ai.onnx"))
        {
            opset.Version = TargetOpset;
        }

        reason = "";
        return true;
    }

    private static bool IsDefaultDomain(NodeProto node) => node.Domain is "" or "ai.onnx";

    /// <summary>Rewrites one node at a time; nodes it adds go into <see cref="Before"/>/<see cref="After"/> the node, initializers into <see cref="Added"/>.</summary>
    private sealed class NodeRewriter(GraphProto graph, long from, TensorTypes types, TensorRanks ranks)
    {
        private readonly NameAllocator _names = new(new GraphView(graph).AllNames());
        private readonly Dictionary<string, TensorProto> _initializers = graph.Initializer.ToDictionary(t => t.Name, StringComparer.Ordinal);
        private readonly HashSet<string> _read = graph.Node.SelectMany(n => n.Input).Concat(graph.Output.Select(o => o.Name)).ToHashSet(StringComparer.Ordinal);

        public List<TensorProto> Added { get; } = [];

        public List<NodeProto> Before { get; } = [];

        public List<NodeProto> After { get; } = [];

        public bool TryRewrite(NodeProto node, out string reason)
        {
            Before.Clear();
            After.Clear();
            reason = "";
            switch (node.OpType)
            {
                case "Clip" when from < 11:
                    // Opset 11 moved min/max from attributes to optional inputs (scalars of the input's type).
                    var min = node.Find("min");
                    var max = node.Find("max");
                    node.RemoveAttribute("min");
                    node.RemoveAttribute("max");
                    var clipType = types[node.Input[0]]?.ElementType ?? TensorElementType.Float;
                    node.Input.Add(min is null ? "" : Scalar(node, "min", clipType, min.F));
                    node.Input.Add(max is null ? "" : Scalar(node, "max", clipType, max.F));
                    TrimTrailingEmptyInputs(node);
                    return true;

                case "Slice" when from < 10:
                    // Opset 10 moved starts/ends/axes from attributes to inputs.
                    var starts = node.GetInts("starts");
                    var ends = node.GetInts("ends");
                    if (starts is null || ends is null)
                    {
                        reason = "Slice without starts/ends attributes is not a valid opset-9 Slice; fix the model or " + ReExport;
                        return false;
                    }

                    node.Input.Add(Ints(node, "starts", starts));
                    node.Input.Add(Ints(node, "ends", ends));
                    if (node.GetInts("axes") is { } axes)
                    {
                        node.Input.Add(Ints(node, "axes", axes));
                    }

                    foreach (var attribute in new[] { "starts", "ends", "axes" })
                    {
                        node.RemoveAttribute(attribute);
                    }

                    return true;

                case "Squeeze" or "Unsqueeze" or "ReduceSum":
                    // Opset 13 moved axes from an attribute to an input.
                    if (node.GetInts("axes") is { } axesList)
                    {
                        node.RemoveAttribute("axes");
                        node.Input.Add(Ints(node, "axes", axesList));
                    }

                    return true;

                case "Split":
                    // Opset 13 moved split from an attribute to an input.
                    if (node.GetInts("split") is { } split)
                    {
                        node.RemoveAttribute("split");
                        node.Input.Add(Ints(node, "split", split));
                    }

                    return true;

                case "Pad" when from < 11:
                    // Opset 11 moved pads/value from attributes to inputs.
                    var pads = node.GetInts("pads");
                    if (pads is null)
                    {
                        reason = "Pad without a pads attribute is not a valid opset-2 Pad; fix the model or " + ReExport;
                        return false;
                    }

                    var value = node.GetFloat("value", 0f);
                    node.RemoveAttribute("pads");
                    node.RemoveAttribute("value");
                    node.Input.Add(Ints(node, "pads", pads));
                    if (value != 0f)
                    {
                        node.Input.Add(Scalar(node, "value", types[node.Input[0]]?.ElementType ?? TensorElementType.Float, value));
                    }

                    return true;

                case "TopK" when from < 10:
                    node.Input.Add(Ints(node, "k", [node.GetInt("k", 1)]));
                    node.RemoveAttribute("k");
                    return true;

                case "Dropout" when from < 12:
                    return TryUpgradeDropout(node, out reason);

                case "Scatter":
                    // Deprecated at 11 for ScatterElements: the same inputs and axis.
                    node.OpType = "ScatterElements";
                    return true;

                case "BatchNormalization" when from < 9:
                    return TryUpgradeBatchNormalization(node, out reason);

                case "Resize" when from == 10:
                    // Opset 10's Resize took (X, scales) and computed source coordinates as x_out / scale;
                    // ORT's nearest rounds those down when upsampling and up when downsampling. Opset 11
                    // needs that spelled out, and takes roi before scales.
                    return TryUpgradeLegacyResize(node, upsamplesOnly: false, out reason);

                case "Upsample" when from < 10:
                    // Upsample (deprecated at 10) is opset-10 Resize under another name, with the scales
                    // as an attribute before opset 9, and scales of at least 1 (ORT refuses others).
                    if (node.Find("scales") is { } floatScales)
                    {
                        node.Input.Add(Floats(node, "scales", floatScales.Floats));
                        node.RemoveAttribute("scales");
                    }

                    node.OpType = "Resize";
                    return TryUpgradeLegacyResize(node, upsamplesOnly: true, out reason);

                case "Softmax" or "LogSoftmax" or "Hardmax" when from < 13:
                    UpgradeSoftmax(node);
                    return true;

                case "Clip" or "Slice" or "Pad" or "TopK" or "Dropout" or "Resize" or "BatchNormalization" or "Softmax" or "LogSoftmax" or "Hardmax":
                    return true;

                default:
                    if (Unchanged.Contains(node.OpType))
                    {
                        return true;
                    }

                    reason = $"the upgrade has no rule for {node.OpType} from opset {from} (its signature changed before 13, or it is not an op of opset {from}); {ReExport}";
                    return false;
            }
        }

        /// <summary>
        /// Before 13 the op normalised its input flattened to 2-D at <c>axis</c> ([d0·…·d(axis−1), d(axis)·…]);
        /// from 13 it normalises one axis. They agree when the axis is the last one — proven by the rank
        /// (static, or from a sample where the graph fixes it) or by axis −1. Otherwise the old meaning is
        /// spelled out, for any rank: Flatten(axis) → op(axis −1) → Reshape(Shape(input)).
        /// </summary>
        private void UpgradeSoftmax(NodeProto node)
        {
            var axis = node.GetInt("axis", 1);
            var (rank, _) = ranks[node.Input[0]];
            if (axis == -1 || (rank is { } r && (axis < 0 ? axis + r : axis) == r - 1))
            {
                node.SetInt("axis", -1);
                return;
            }

            var input = node.Input[0];
            var output = node.Output[0];
            var shape = Add(Before, "Shape", $"{node.Name}_input_shape", [input]);
            node.Input[0] = Add(Before, "Flatten", $"{node.Name}_flatten", [input], axis);
            node.Output[0] = _names.Next($"{node.Name}_2d");
            node.SetInt("axis", -1);
            After.Add(new NodeProto { OpType = "Reshape", Name = _names.Next($"{node.Name}_reshape"), Input = { node.Output[0], shape }, Output = { output } });
        }

        /// <summary>
        /// Opset 12 moved ratio from an attribute to an input; inference ignores it either way. The mask
        /// output, though, is filled with zeros by ORT before opset 12 and with ones from 12: a model
        /// that reads it is refused.
        /// </summary>
        private bool TryUpgradeDropout(NodeProto node, out string reason)
        {
            if (node.Output.Count > 1 && node.Output[1].Length > 0 && _read.Contains(node.Output[1]))
            {
                reason = "its mask output is read, and ONNX Runtime fills that mask with zeros before opset 12 and with ones from 12; "
                    + "remove the Dropout (inference does not need it) or " + ReExport;
                return false;
            }

            node.RemoveAttribute("is_test");
            if (node.Find("ratio") is { } ratio)
            {
                node.RemoveAttribute("ratio");
                node.Input.Add(Scalar(node, "ratio", TensorElementType.Float, ratio.F));
            }

            reason = "";
            return true;
        }

        /// <summary>
        /// Opset 9 dropped <c>spatial</c>: statistics are per channel. spatial=0 (statistics per
        /// activation, shaped C×D1×…×Dn) is the same computation on the input flattened to [N, C·D1·…·Dn]
        /// with flattened statistics, reshaped back afterwards.
        /// </summary>
        private bool TryUpgradeBatchNormalization(NodeProto node, out string reason)
        {
            reason = "";
            node.RemoveAttribute("is_test");
            var spatial = node.GetInt("spatial", 1);
            node.RemoveAttribute("spatial");
            if (spatial != 0)
            {
                return true;
            }

            if (node.Output.Skip(1).Any(o => o.Length > 0))
            {
                reason = $"spatial=0 with training outputs (mean, variance) cannot be flattened; {ReExport}";
                return false;
            }

            var input = node.Input[0];
            var output = node.Output[0];
            var shape = Add(Before, "Shape", $"{node.Name}_input_shape", [input]);
            node.Input[0] = Add(Before, "Flatten", $"{node.Name}_flatten", [input], axis: 1);
            string? minusOne = null;
            for (var i = 1; i < node.Input.Count; i++)
            {
                if (_initializers.GetValueOrDefault(node.Input[i]) is { } statistic)
                {
                    var flat = statistic.Clone();
                    flat.Name = _names.Next($"{statistic.Name}_flat");
                    flat.Dims.Clear();
                    flat.Dims.Add(statistic.Dims.Aggregate(1L, (a, d) => a * d));
                    Added.Add(flat);
                    node.Input[i] = flat.Name;
                }
                else
                {
                    minusOne ??= Ints(node, "flat_shape", [-1]);
                    node.Input[i] = Add(Before, "Reshape", $"{node.Input[i]}_flat", [node.Input[i], minusOne]);
                }
            }

            node.Output[0] = _names.Next($"{node.Name}_2d");
            After.Add(new NodeProto { OpType = "Reshape", Name = _names.Next($"{node.Name}_reshape"), Input = { node.Output[0], shape }, Output = { output } });
            return true;
        }

        /// <param name="upsamplesOnly">Upsample: its scales are at least 1 (ONNX says so, ORT enforces it), so nearest rounds down even when they are computed at run time.</param>
        private bool TryUpgradeLegacyResize(NodeProto node, bool upsamplesOnly, out string reason)
        {
            reason = "";
            var mode = node.GetString("mode", "nearest");
            node.SetString("coordinate_transformation_mode", "asymmetric");
            if (mode == "nearest")
            {
                var scales = node.Input.Count > 1 && Constant(node.Input[1]) is { } tensor ? TensorValues.ReadFloats(tensor)
                    : upsamplesOnly ? []
                    : null;
                if (scales is null)
                {
                    reason = "a nearest resize whose scales are computed at run time: opset 10 rounds each axis down when it upsamples and up when it downsamples, "
                        + "which opset 13 can only state for known scales; make the scales constant or re-export the model with opset 11 or later";
                    return false;
                }

                var changed = scales.Where(v => v != 1f).ToList();
                if (changed.Any(v => v > 1f) && changed.Any(v => v < 1f))
                {
                    reason = "a nearest resize that upsamples one axis and downsamples another: opset 10 rounds them in opposite directions, "
                        + "which opset 13's single nearest_mode cannot state; re-export the model with opset 11 or later";
                    return false;
                }

                node.SetString("nearest_mode", changed.Any(v => v < 1f) ? "ceil" : "floor");
            }

            node.Input.Insert(1, "");
            return true;
        }

        private TensorProto? Constant(string name) => _initializers.GetValueOrDefault(name) ?? Added.FirstOrDefault(t => t.Name == name);

        /// <summary>Adds a one-output node named after <paramref name="name"/> to <paramref name="list"/>; returns its output.</summary>
        private string Add(List<NodeProto> list, string opType, string name, string[] inputs, long? axis = null)
        {
            var added = new NodeProto { OpType = opType, Name = _names.Next(name), Input = { inputs } };
            added.Output.Add(_names.Next(name));
            if (axis is { } a)
            {
                added.SetInt("axis", a);
            }

            list.Add(added);
            return added.Output[0];
        }

        private string Ints(NodeProto node, string suffix, IReadOnlyList<long> values)
        {
            var name = _names.Next($"{node.Name}_{suffix}");
            Added.Add(TensorValues.FromInt64(name, [values.Count], values.ToArray()));
            return name;
        }

        private string Floats(NodeProto node, string suffix, IReadOnlyList<float> values)
        {
            var name = _names.Next($"{node.Name}_{suffix}");
            Added.Add(TensorValues.FromFloats(name, [values.Count], values.ToArray()));
            return name;
        }

        /// <summary>A scalar initializer of <paramref name="type"/> (the ops that take one accept float16, float and double).</summary>
        private string Scalar(NodeProto node, string suffix, TensorElementType type, float value)
        {
            var name = _names.Next($"{node.Name}_{suffix}");
            Added.Add(type switch
            {
                TensorElementType.Float16 => TensorValues.FromHalfs(name, [], [value]),
                TensorElementType.Double => new TensorProto { Name = name, DataType = (int)DataType.Double, DoubleData = { value } },
                _ => TensorValues.FromFloats(name, [], [value]),
            });
            return name;
        }
    }

    private static void TrimTrailingEmptyInputs(NodeProto node)
    {
        while (node.Input.Count > 0 && node.Input[^1].Length == 0)
        {
            node.Input.RemoveAt(node.Input.Count - 1);
        }
    }
}
