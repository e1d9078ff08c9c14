using Quantize.Onnx.Model;
using Quantize.Onnx.Model.Proto;

namespace Quantize.Onnx.Calibration;

/// <summary>
/// Ops between a tensor and a saturating consumer that the saturation search looks through: cutting the
/// tensor at a bound b (clamping it to [b, ∞) or (−∞, b]) and then applying the op gives what the consumer
/// would get from the op's output cut at b. The op's output shares the input's grid in the quantized graph
/// (data movement keeps its scale), so this is where such a consumer's cut must be made.
/// </summary>
internal static class ValueMovingOps
{
    public enum Through
    {
        /// <summary>Not looked through.</summary>
        None,

        /// <summary>Commutes with clamping exactly: each output is one input value (reshapes, slices, nearest Resize) or a max of them (MaxPool).</summary>
        Exact,

        /// <summary>
        /// Linear Resize: each output is a convex combination of neighbouring inputs, so clamping first differs from clamping after
        /// where a stencil mixes values on both sides of the bound. Only a Sigmoid, cut at −T (T = <see cref="ConsumerResponse.SigmoidSaturation"/>),
        /// is looked through: if the neighbours of such a stencil differ by at most d, every one of them is below d − T, so the
        /// interpolated logit is below d − T cut or not, and the mask moves by less than sigmoid(d − T) (symmetrically at +T).
        /// That is below half a uint8 step of [0, 1] (2.0e-3) while d &lt; 10.8 logits between neighbouring input pixels, and
        /// exactly 0 wherever the whole stencil lies on one side of the bound. A Relu or Clip, whose bound is where its
        /// output starts to move, is not looked through.
        /// </summary>
        SigmoidOnly,
    }

    public static Through Of(NodeProto node)
    {
        if (node.Domain is not ("" or "ai.onnx") || node.Output.Count == 0 || node.Output.Skip(1).Any(o => o.Length > 0))
        {
            return Through.None;
        }

        return node.OpType switch
        {
            "Identity" or "Reshape" or "Transpose" or "Flatten" or "Squeeze" or "Unsqueeze" or "Slice" or "Gather"
                or "DepthToSpace" or "SpaceToDepth" or "MaxPool" => Through.Exact,
            "Resize" or "Upsample" => node.GetString("mode", "nearest") switch
            {
                "nearest" => Through.Exact,
                "linear" or "bilinear" => Through.SigmoidOnly,
                _ => Through.None, // cubic overshoots its neighbours
            },
            _ => Through.None,
        };
    }

    /// <summary>A consumer's response seen through a linear interpolation: a Sigmoid keeps its bounds, anything else is not cut.</summary>
    public static ConsumerResponse AfterInterpolation(ConsumerResponse response) =>
        response.Kind == ConsumerResponse.Sigmoid.Kind ? response : ConsumerResponse.Identity;
}
