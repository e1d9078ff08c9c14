using Microsoft.ML.OnnxRuntime.Tensors;
using Quantize.Onnx.Model;
using Quantize.Onnx.Model.Proto;

namespace Quantize.Onnx.Preparation;

/// <summary>Rewrites one node at a time; nodes it adds go into <see cref="UpgradeEdits.Before"/>/<see cref="UpgradeEdits.After"/> the node, initializers into <see cref="UpgradeEdits.Added"/>.</summary>
internal sealed class NodeRewriter(GraphProto graph, long from, TensorTypes types, TensorRanks ranks)
{
    public UpgradeEdits Edits { get; } = new(graph);

    public bool TryRewrite(NodeProto node, out string reason)
    {
        Edits.Before.Clear();
        Edits.After.Clear();
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
                node.Input.Add(min is null ? "" : Edits.Scalar(node, "min", clipType, min.F));
                node.Input.Add(max is null ? "" : Edits.Scalar(node, "max", clipType, max.F));
                TrimTrailingEmptyInputs(node);
                return true;

            case "Slice" when from < 10:
                // Opset 10 moved starts/ends/axes from attributes to inputs.
                var starts = node.GetInts("starts");
                var ends = node.GetInts("ends");
                if (starts is null || ends is null)
                {
                    reason = "Slice without starts/ends attributes is not a valid opset-9 Slice; fix the model or " + OpsetUpgrader.ReExport;
                    return false;
                }

                node.Input.Add(Edits.Ints(node, "starts", starts));
                node.Input.Add(Edits.Ints(node, "ends", ends));
                if (node.GetInts("axes") is { } axes)
                {
                    node.Input.Add(Edits.Ints(node, "axes", axes));
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
                    node.Input.Add(Edits.Ints(node, "axes", axesList));
                }

                return true;

            case "Split":
                // Opset 13 moved split from an attribute to an input.
                if (node.GetInts("split") is { } split)
                {
                    node.RemoveAttribute("split");
                    node.Input.Add(Edits.Ints(node, "split", split));
                }

                return true;

            case "Pad" when from < 11:
                // Opset 11 moved pads/value from attributes to inputs.
                var pads = node.GetInts("pads");
                if (pads is null)
                {
                    reason = "Pad without a pads attribute is not a valid opset-2 Pad; fix the model or " + OpsetUpgrader.ReExport;
                    return false;
                }

                var value = node.GetFloat("value", 0f);
                node.RemoveAttribute("pads");
                node.RemoveAttribute("value");
                node.Input.Add(Edits.Ints(node, "pads", pads));
                if (value != 0f)
                {
                    node.Input.Add(Edits.Scalar(node, "value", types[node.Input[0]]?.ElementType ?? TensorElementType.Float, value));
                }

                return true;

            case "TopK" when from < 10:
                node.Input.Add(Edits.Ints(node, "k", [node.GetInt("k", 1)]));
                node.RemoveAttribute("k");
                return true;

            case "Dropout" when from < 12:
                return LegacyOpUpgrades.TryUpgradeDropout(Edits, node, out reason);

            case "Scatter":
                // Deprecated at 11 for ScatterElements: the same inputs and axis.
                node.OpType = "ScatterElements";
                return true;

            case "BatchNormalization" when from < 9:
                return LegacyOpUpgrades.TryUpgradeBatchNormalization(Edits, node, out reason);

            case "Resize" when from == 10:
                // Opset 10's Resize took (X, scales) and computed source coordinates as x_out / scale;
                // ORT's nearest rounds those down when upsampling and up when downsampling. Opset 11
                // needs that spelled out, and takes roi before scales.
                return LegacyOpUpgrades.TryUpgradeLegacyResize(Edits, node, upsamplesOnly: false, out reason);

            case "Upsample" when from < 10:
                // Upsample (deprecated at 10) is opset-10 Resize under another name, with the scales
                // as an attribute before opset 9, and scales of at least 1 (ORT refuses others).
                if (node.Find("scales") is { } floatScales)
                {
                    node.Input.Add(Edits.Floats(node, "scales", floatScales.Floats));
                    node.RemoveAttribute("scales");
                }

                node.OpType = "Resize";
                return LegacyOpUpgrades.TryUpgradeLegacyResize(Edits, node, upsamplesOnly: true, out reason);

            case "Softmax" or "LogSoftmax" or "Hardmax" when from < 13:
                LegacyOpUpgrades.UpgradeSoftmax(Edits, ranks, node);
                return true;

            case "Clip" or "Slice" or "Pad" or "TopK" or "Dropout" or "Resize" or "BatchNormalization" or "Softmax" or "LogSoftmax" or "Hardmax":
                return true;

            default:
                if (OpsetUpgrader.Unchanged.Contains(node.OpType))
                {
                    return true;
                }

                reason = $"the upgrade has no rule for {node.OpType} from opset {from} (its signature changed before 13, or it is not an op of opset {from}); {OpsetUpgrader.ReExport}";
                return false;
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
