using Quantize.Onnx.Model;
using Quantize.Onnx.Model.Proto;

namespace Quantize.Onnx.Preparation;

/// <summary>
/// Raises a model's default-domain opset to 13, the first with per-channel QuantizeLinear. Ops whose
/// signature changed between the model's opset and 13 (attributes that became inputs, changed
/// defaults) are rewritten; ops known to be unchanged pass through. Any other op, or a version
/// older than 7 (broadcasting rules changed), makes the upgrade refuse rather than guess:
/// <see cref="TryUpgrade"/> then returns false with the reason, and the model is left untouched.
/// </summary>
internal static class OpsetUpgrader
{
    public const long TargetOpset = 13;

    // Ops whose semantics for the inputs a model can hold are identical from opset 7 to 13; later
    // versions only added element types, optional inputs or attributes with backward-compatible defaults.
    private static readonly HashSet<string> Unchanged = new(StringComparer.Ordinal)
    {
        "Abs", "Acos", "Acosh", "Add", "And", "ArgMax", "ArgMin", "Asin", "Asinh", "Atan", "Atanh",
        "AveragePool", "BatchNormalization", "Cast", "Ceil", "Concat", "Constant", "ConstantOfShape",
        "Conv", "ConvTranspose", "Cos", "Cosh", "DepthToSpace", "Div", "Einsum", "Elu", "Equal",
        "Erf", "Exp", "Expand", "EyeLike", "Flatten", "Floor", "GRU", "Gather", "GatherElements",
        "GatherND", "Gemm", "GlobalAveragePool", "GlobalLpPool", "GlobalMaxPool", "Greater",
        "GreaterOrEqual", "HardSigmoid", "Identity", "InstanceNormalization", "IsInf", "IsNaN", "LRN",
        "LSTM", "LeakyRelu", "Less", "LessOrEqual", "Log", "LpNormalization", "LpPool", "MatMul", "Max",
        "MaxPool", "Mean", "Min", "Mod", "Mul", "Neg", "NonZero", "Not", "Or", "PRelu", "Pow", "RNN",
        "Range", "Reciprocal", "ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceMax",
        "ReduceMean", "ReduceMin", "ReduceProd", "ReduceSumSquare", "Relu", "Reshape", "Round",
        "ScatterElements", "ScatterND", "Selu", "Shape", "Shrink", "Sigmoid", "Sign", "Sin", "Sinh",
        "Size", "Softplus", "Softsign", "SpaceToDepth", "Sqrt", "Sub", "Sum", "Tan", "Tanh",
        "ThresholdedRelu", "Tile", "Transpose", "Where", "Xor",
    };

    public static bool TryUpgrade(ModelProto model, TensorTypes types, out string reason)
    {
        var from = model.DefaultOpset();
        if (from >= TargetOpset)
        {
            reason = "";
            return true;
        }

        if (from < 7)
        {
            reason = $"opset {from} predates ONNX's broadcasting rules (opset 7)";
            return false;
        }

        if (model.Graph.Node.FirstOrDefault(n => n.HasSubgraph()) is { } control)
        {
            reason = $"node '{control.Name}' ({control.OpType}) holds a subgraph, which the upgrade does not rewrite";
            return false;
        }

        var work = model.Graph.Clone();
        var names = new NameAllocator(new GraphView(work).AllNames());
        var added = new List<TensorProto>();
        var initializers = work.Initializer.ToDictionary(t => t.Name, StringComparer.Ordinal);
        foreach (var node in work.Node.Where(n => n.Domain is "" or "ai.onnx"))
        {
            if (!TryRewrite(node, from, types, names, added, initializers.GetValueOrDefault, out reason))
            {
                reason = $"node '{node.Name}' ({node.OpType}): {reason}";
                return false;
            }
        }

        work.Initializer.Add(added);
        model.Graph = work;
        foreach (var opset in model.OpsetImport.Where(o => o.Domain is "" or "ai.onnx"))
        {
            opset.Version = TargetOpset;
        }

        reason = "";
        return true;
    }

    private static bool TryRewrite(NodeProto node, long from, TensorTypes types, NameAllocator names, List<TensorProto> added, Func<string, TensorProto?> graphConstant, out string reason)
    {
        reason = "";
        TensorProto? constant(string name) => graphConstant(name) ?? added.FirstOrDefault(t => t.Name == name);
        string AddInts(string suffix, IReadOnlyList<long> values)
        {
            var name = names.Next($"{node.Name}_{suffix}");
            added.Add(TensorValues.FromInt64(name, [values.Count], values.ToArray()));
            return name;
        }

        string AddFloats(string suffix, IReadOnlyList<float> values)
        {
            var name = names.Next($"{node.Name}_{suffix}");
            added.Add(TensorValues.FromFloats(name, [values.Count], values.ToArray()));
            return name;
        }

        string AddScalar(string suffix, float value)
        {
            var name = names.Next($"{node.Name}_{suffix}");
            added.Add(TensorValues.FromFloats(name, [], [value]));
            return name;
        }

        switch (node.OpType)
        {
            case "Clip" when from < 11:
                // Opset 11 moved min/max from attributes to optional inputs.
                var min = node.Find("min");
                var max = node.Find("max");
                node.RemoveAttribute("min");
                node.RemoveAttribute("max");
                node.Input.Add(min is null ? "" : AddScalar("min", min.F));
                node.Input.Add(max is null ? "" : AddScalar("max", max.F));
                TrimTrailingEmptyInputs(node);
                return true;

            case "Clip":
                return true;

            case "Slice" when from < 10:
                // Opset 10 moved starts/ends/axes from attributes to inputs.
                var starts = node.GetInts("starts");
                var ends = node.GetInts("ends");
                if (starts is null || ends is null)
                {
                    reason = "Slice without starts/ends";
                    return false;
                }

                node.Input.Add(AddInts("starts", starts));
                node.Input.Add(AddInts("ends", ends));
                if (node.GetInts("axes") is { } axes)
                {
                    node.Input.Add(AddInts("axes", axes));
                }

                foreach (var attribute in new[] { "starts", "ends", "axes" })
                {
                    node.RemoveAttribute(attribute);
                }

                return true;

            case "Slice":
                return true;

            case "Squeeze" or "Unsqueeze" or "ReduceSum":
                // Opset 13 moved axes from an attribute to an input.
                if (node.GetInts("axes") is { } axesList)
                {
                    node.RemoveAttribute("axes");
                    node.Input.Add(AddInts("axes", axesList));
                }

                return true;

            case "Split":
                // Opset 13 moved split from an attribute to an input.
                if (node.GetInts("split") is { } split)
                {
                    node.RemoveAttribute("split");
                    node.Input.Add(AddInts("split", split));
                }

                return true;

            case "Pad" when from < 11:
                // Opset 11 moved pads/value from attributes to inputs.
                var pads = node.GetInts("pads");
                if (pads is null)
                {
                    reason = "Pad without pads";
                    return false;
                }

                var value = node.GetFloat("value", 0f);
                node.RemoveAttribute("pads");
                node.RemoveAttribute("value");
                node.Input.Add(AddInts("pads", pads));
                if (value != 0f)
                {
                    node.Input.Add(AddScalar("value", value));
                }

                return true;

            case "Pad":
                return true;

            case "TopK" when from < 10:
                node.Input.Add(AddInts("k", [node.GetInt("k", 1)]));
                node.RemoveAttribute("k");
                return true;

            case "TopK":
                return true;

            case "Resize" when from == 10:
                // Opset 10's Resize took (X, scales) and computed source coordinates as x_out / scale;
                // ORT's nearest rounds those down when upsampling and up when downsampling. Opset 11
                // needs that spelled out, and takes roi before scales.
                return TryUpgradeLegacyResize(node, constant, out reason);

            case "Upsample" when from < 10:
                // Upsample (deprecated at 10) is opset-10 Resize under another name, with the scales
                // as an attribute before opset 9.
                if (node.Find("scales") is { } floatScales)
                {
                    node.Input.Add(AddFloats("scales", floatScales.Floats));
                    node.RemoveAttribute("scales");
                }

                node.OpType = "Resize";
                return TryUpgradeLegacyResize(node, constant, out reason);

            case "Resize":
                return true;

            case "Softmax" or "LogSoftmax" or "Hardmax":
                // Before 13 these flatten the input to 2-D at `axis`; from 13 they reduce one axis.
                // Both agree when the axis is the last one.
                var rank = types[node.Input[0]]?.Rank;
                var axis = node.GetInt("axis", 1);
                if (rank is null)
                {
                    reason = "input rank unknown";
                    return false;
                }

                if (axis < 0)
                {
                    axis += rank.Value;
                }

                if (axis != rank - 1)
                {
                    reason = $"axis {axis} is not the last of rank {rank}";
                    return false;
                }

                node.SetInt("axis", -1);
                return true;

            default:
                if (Unchanged.Contains(node.OpType))
                {
                    return true;
                }

                reason = $"no upgrade rule from opset {from}";
                return false;
        }
    }

    private static bool TryUpgradeLegacyResize(NodeProto node, Func<string, TensorProto?> constant, out string reason)
    {
        reason = "";
        var mode = node.GetString("mode", "nearest");
        node.SetString("coordinate_transformation_mode", "asymmetric");
        if (mode == "nearest")
        {
            var scales = node.Input.Count > 1 && constant(node.Input[1]) is { } tensor ? TensorValues.ReadFloats(tensor) : null;
            if (scales is null)
            {
                reason = "nearest resize with scales that are not constant";
                return false;
            }

            var changed = scales.Where(v => v != 1f).ToList();
            if (changed.Any(v => v > 1f) && changed.Any(v => v < 1f))
            {
                reason = "nearest resize that upsamples one axis and downsamples another";
                return false;
            }

            node.SetString("nearest_mode", changed.Any(v => v < 1f) ? "ceil" : "floor");
        }

        node.Input.Insert(1, "");
        return true;
    }

    private static void TrimTrailingEmptyInputs(NodeProto node)
    {
        while (node.Input.Count > 0 && node.Input[^1].Length == 0)
        {
            node.Input.RemoveAt(node.Input.Count - 1);
        }
    }
}
