using Microsoft.ML.OnnxRuntime.Tensors;
using Quantize.Onnx.Model;
using Quantize.Onnx.Model.Proto;

namespace Quantize.Onnx.Preparation;

/// <summary>The opset upgrades that rewrite more than an attribute: ops whose meaning, not only signature, changed before 13.</summary>
internal static class LegacyOpUpgrades
{
    /// <summary>
    /// Before 13 the op normalised its input flattened to 2-D at <c>axis</c> ([d0·…·d(axis−1), d(axis)·…]);
    /// from 13 it normalises one axis. They agree when the axis is the last one — proven by the rank
    /// (static, or from a sample where the graph fixes it) or by axis −1. Otherwise the old meaning is
    /// spelled out, for any rank: Flatten(axis) → op(axis −1) → Reshape(Shape(input)).
    /// </summary>
    public static void UpgradeSoftmax(UpgradeEdits edits, TensorRanks ranks, NodeProto node)
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
        var shape = edits.Add(edits.Before, "Shape", $"{node.Name}_input_shape", [input]);
        node.Input[0] = edits.Add(edits.Before, "Flatten", $"{node.Name}_flatten", [input], axis);
        node.Output[0] = edits.Names.Next($"{node.Name}_2d");
        node.SetInt("axis", -1);
        edits.After.Add(new NodeProto { OpType = "Reshape", Name = edits.Names.Next($"{node.Name}_reshape"), Input = { node.Output[0], shape }, Output = { output } });
    }

    /// <summary>
    /// Opset 12 moved ratio from an attribute to an input; inference ignores it either way. The mask
    /// output, though, is filled with zeros by ORT before opset 12 and with ones from 12: a model
    /// that reads it is refused.
    /// </summary>
    public static bool TryUpgradeDropout(UpgradeEdits edits, NodeProto node, out string reason)
    {
        if (node.Output.Count > 1 && node.Output[1].Length > 0 && edits.Read.Contains(node.Output[1]))
        {
            reason = "its mask output is read, and ONNX Runtime fills that mask with zeros before opset 12 and with ones from 12; "
                + "remove the Dropout (inference does not need it) or " + OpsetUpgrader.ReExport;
            return false;
        }

        node.RemoveAttribute("is_test");
        if (node.Find("ratio") is { } ratio)
        {
            node.RemoveAttribute("ratio");
            node.Input.Add(edits.Scalar(node, "ratio", TensorElementType.Float, ratio.F));
        }

        reason = "";
        return true;
    }

    /// <summary>
    /// Opset 9 dropped <c>spatial</c>: statistics are per channel. spatial=0 (statistics per
    /// activation, shaped C×D1×…×Dn) is the same computation on the input flattened to [N, C·D1·…·Dn]
    /// with flattened statistics, reshaped back afterwards.
    /// </summary>
    public static bool TryUpgradeBatchNormalization(UpgradeEdits edits, NodeProto node, out string reason)
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
            reason = $"spatial=0 with training outputs (mean, variance) cannot be flattened; {OpsetUpgrader.ReExport}";
            return false;
        }

        var input = node.Input[0];
        var output = node.Output[0];
        var shape = edits.Add(edits.Before, "Shape", $"{node.Name}_input_shape", [input]);
        node.Input[0] = edits.Add(edits.Before, "Flatten", $"{node.Name}_flatten", [input], axis: 1);
        string? minusOne = null;
        for (var i = 1; i < node.Input.Count; i++)
        {
            if (edits.Initializers.GetValueOrDefault(node.Input[i]) is { } statistic)
            {
                var flat = statistic.Clone();
                flat.Name = edits.Names.Next($"{statistic.Name}_flat");
                flat.Dims.Clear();
                flat.Dims.Add(statistic.Dims.Aggregate(1L, (a, d) => a * d));
                edits.Added.Add(flat);
                node.Input[i] = flat.Name;
            }
            else
            {
                minusOne ??= edits.Ints(node, "flat_shape", [-1]);
                node.Input[i] = edits.Add(edits.Before, "Reshape", $"{node.Input[i]}_flat", [node.Input[i], minusOne]);
            }
        }

        node.Output[0] = edits.Names.Next($"{node.Name}_2d");
        edits.After.Add(new NodeProto { OpType = "Reshape", Name = edits.Names.Next($"{node.Name}_reshape"), Input = { node.Output[0], shape }, Output = { output } });
        return true;
    }

    /// <param name="upsamplesOnly">Upsample: its scales are at least 1 (ONNX says so, ORT enforces it), so nearest rounds down even when they are computed at run time.</param>
    public static bool TryUpgradeLegacyResize(UpgradeEdits edits, NodeProto node, bool upsamplesOnly, out string reason)
    {
        reason = "";
        var mode = node.GetString("mode", "nearest");
        node.SetString("coordinate_transformation_mode", "asymmetric");
        if (mode == "nearest")
        {
            var scales = node.Input.Count > 1 && edits.Constant(node.Input[1]) is { } tensor ? TensorValues.ReadFloats(tensor)
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
}
