using Quantize.Onnx.Model;
using Quantize.Onnx.Model.Proto;
using Quantize.Onnx.Preparation;
using Quantize.Onnx.Quantization;

namespace Quantize.Onnx.Calibration;

/// <summary>
/// After the MinMax pass: a body tensor no calibration sample computed has an empty range (+inf, −inf, see
/// <see cref="BodyRangeOutputs"/>) and is dropped, so its nodes stay float. An If branch none of whose tensors ran is
/// named in warning QNT2103, a Loop/Scan body that ran no iteration on any sample in QNT2104, since it will run float
/// in the shipped model whenever it runs; a body nested in one already named is not named again, nor one without an op
/// that needs calibrated ranges (torch exports test ranks in Ifs whose branches hold a Squeeze, or an LSTM, whose
/// kernel quantizes at run time).
/// </summary>
internal static class UntakenBodies
{
    public static List<Diagnostic> Drop(ModelProto model, TensorTypes types, Dictionary<string, TensorRange> ranges, string calibrationSet)
    {
        var untaken = new List<Body>();
        foreach (var body in ControlFlowBodies.Of(model))
        {
            var tensors = BodyRangeOutputs.FloatTensors(body.Graph, types).ToList();
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

            if (!ran && tensors.Count > 0 && !body.Ancestors().Any(untaken.Contains)
                && ControlFlowBodies.AllNodes(body.Graph).Any(n => OpRules.Find(n) is { Kind: OpKind.Anchor }))
            {
                untaken.Add(body);
            }
        }

        var diagnostics = new List<Diagnostic>();
        var branches = untaken.Where(b => b.IsBranch).Select(b => b.Describe()).ToList();
        if (branches.Count > 0)
        {
            diagnostics.Add(new Diagnostic(ErrorCodes.BranchNotCalibrated, null,
                $"No sample of calibration set '{calibrationSet}' takes {string.Join("; ", branches)}: it stays float (its convolutions run in FP32 " +
                "whenever its condition holds). Add calibration samples that take it."));
        }

        var loops = untaken.Where(b => !b.IsBranch).Select(b => b.Describe()).ToList();
        if (loops.Count > 0)
        {
            diagnostics.Add(new Diagnostic(ErrorCodes.LoopBodyNotCalibrated, null,
                $"No sample of calibration set '{calibrationSet}' runs an iteration of the {string.Join("; ", loops)}: it stays float (it runs in FP32 " +
                "whenever it iterates). Add calibration samples on which it iterates (e.g. longer sequences, or a trip count above 0)."));
        }

        return diagnostics;
    }
}
