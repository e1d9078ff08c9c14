using Quantize.Onnx.Model;
using Quantize.Onnx.Model.Proto;
using Quantize.Onnx.Preparation;

namespace Quantize.Onnx.Calibration;

/// <summary>
/// After the MinMax pass: a branch tensor no calibration sample computed has an empty range (+inf, −inf, see
/// <see cref="BranchRangeOutputs"/>) and is dropped, so its nodes stay float; a branch none of whose tensors ran is
/// named in warning QNT2103, since it will run float in the shipped model whenever its condition holds.
/// </summary>
internal static class UntakenBranches
{
    public static Diagnostic? Drop(ModelProto model, TensorTypes types, Dictionary<string, TensorRange> ranges, string calibrationSet)
    {
        var untaken = new List<string>();
        foreach (var branch in IfBranches.Of(model))
        {
            var tensors = BranchRangeOutputs.FloatTensors(branch.Graph, types).ToList();
            var ran = false;
            foreach (var tensor in tensors)
            {
                if (ranges.TryGetValue(tensor, out var r) && r.Min <= r.Max)
                {
                    ran = true;
                }
                else
                {
                    ranges.Remove(tensor);
                }
            }

            if (!ran && tensors.Count > 0)
            {
                untaken.Add(branch.Describe());
            }
        }

        return untaken.Count == 0 ? null : new Diagnostic(ErrorCodes.BranchNotCalibrated, null,
            $"No sample of calibration set '{calibrationSet}' takes {string.Join("; ", untaken)}: it stays float (its convolutions run in FP32 " +
            "whenever its condition holds). Add calibration samples that take it.");
    }
}
