using Quantize.Onnx.Model;
using Quantize.Onnx.Model.Proto;

namespace Quantize.Onnx.Calibration;

/// <summary>
/// What one consumer does to a tensor's values: the function it applies (as far as quantization
/// error is concerned), its slope, and the interval outside which its output no longer changes
/// (it saturates). Clipping a value beyond a saturation bound costs nothing.
/// </summary>
public sealed record ConsumerResponse(string Kind, double SaturatesBelow, double SaturatesAbove, Func<double, double> Apply, Func<double, double> Slope)
{
    public static readonly ConsumerResponse Identity = new("identity", double.NegativeInfinity, double.PositiveInfinity, x => x, _ => 1);

    public static ConsumerResponse Clip(double low, double high) =>
        new("clip", low, high, x => Math.Clamp(x, low, high), x => x > low && x < high ? 1 : 0);

    public static ConsumerResponse Relu { get; } = new("relu", 0, double.PositiveInfinity, x => Math.Max(x, 0), x => x > 0 ? 1 : 0);

    /// <summary>max(0, min(1, alpha·x + beta)), flat outside [−beta/alpha, (1−beta)/alpha].</summary>
    public static ConsumerResponse HardSigmoid(double alpha, double beta) => new(
        "hard-sigmoid", -beta / alpha, (1 - beta) / alpha, x => Math.Clamp((alpha * x) + beta, 0, 1), x => (alpha * x) + beta is > 0 and < 1 ? alpha : 0);

    /// <summary>x · clip(x + shift, 0, high) (hard-swish, up to a constant factor): zero for x ≤ −shift.</summary>
    public static ConsumerResponse HardSwish(double shift, double high) => new(
        "hard-swish", -shift, double.PositiveInfinity, x => x * Math.Clamp(x + shift, 0, high),
        x => x + shift <= 0 ? 0 : x + shift >= high ? high : (2 * x) + shift);

    /// <summary>
    /// Where a Sigmoid counts as flat: |x| ≥ 17. sigmoid(−17) = 4.1e-8, so cutting there moves the output by less
    /// than 2⁻²⁴ = 6.0e-8, the float32 spacing just below 1 (sigmoid(17) rounds to within one ulp of 1), and about
    /// 50,000× less than half a uint8 step of [0, 1] (1/510 = 2.0e-3). The cut is invisible in a float32 mask.
    /// </summary>
    public const double SigmoidSaturation = 17;

    public static ConsumerResponse Sigmoid { get; } = new(
        "sigmoid", -SigmoidSaturation, SigmoidSaturation, x => 1 / (1 + Math.Exp(-x)), x => Math.Exp(-x) / Math.Pow(1 + Math.Exp(-x), 2));

    /// <summary>This response seen through y = scale·x + shift (a scalar affine op in front of the consumer).</summary>
    public ConsumerResponse ThroughAffine(double scale, double shift)
    {
        var (low, high) = ((SaturatesBelow - shift) / scale, (SaturatesAbove - shift) / scale);
        return new(Kind, scale > 0 ? low : high, scale > 0 ? high : low, x => Apply((scale * x) + shift), x => scale * Slope((scale * x) + shift));
    }

    public bool Saturates => !double.IsNegativeInfinity(SaturatesBelow) || !double.IsPositiveInfinity(SaturatesAbove);
}

/// <summary>
/// Finds, for a tensor, the responses of all its consumers (ops that read it). Recognised: Relu, Clip
/// with constant bounds, HardSigmoid, HardSwish, Sigmoid, and hard-swish written out as
/// x · Clip(x + 3, 0, 6) [/ 6] (Add → Clip → optional Div/Mul by a constant → Mul with x), where the
/// Add and the Mul together are one consumer. A scalar affine op (Mul, Add, Sub, Div by a constant
/// scalar, e.g. PP-LCNet's learnable affine blocks) is looked through to its own consumers, and so is
/// data movement that keeps the values (see <see cref="ValueMovingOps"/>: e.g. a segmentation head's
/// Conv → Resize → Sigmoid). Anything else (or a graph output) is the identity.
/// </summary>
internal static class ConsumerResponses
{
    private const int MaxLookThroughDepth = 4;

    public static IReadOnlyList<ConsumerResponse> Of(GraphView graph, string tensor) => Of(graph, tensor, 0);

    private static IReadOnlyList<ConsumerResponse> Of(GraphView graph, string tensor, int depth)
    {
        // A subgraph (If branch) may read the tensor by name and quantize it with this range: nothing may be cut.
        if (graph.Outputs.Contains(tensor) || graph.SubgraphReads.Contains(tensor))
        {
            return [ConsumerResponse.Identity];
        }

        var covered = new HashSet<NodeProto>(ReferenceEqualityComparer.Instance);
        var result = new List<ConsumerResponse>();

        // Patterns first: a hard-swish's Mul may come before its Add in the consumer list.
        foreach (var (node, _) in graph.Consumers(tensor))
        {
            if (!covered.Contains(node) && HardSwishPattern(graph, tensor, node) is { } pattern)
            {
                covered.UnionWith(pattern.Nodes);
                result.Add(pattern.Response);
            }
        }

        foreach (var (node, index) in graph.Consumers(tensor))
        {
            if (covered.Contains(node))
            {
                continue;
            }

            if (depth < MaxLookThroughDepth && Affine(graph, node, tensor) is { } affine)
            {
                result.AddRange(Of(graph, node.Output[0], depth + 1).Select(r => r.ThroughAffine(affine.Scale, affine.Shift)));
                continue;
            }

            if (depth < MaxLookThroughDepth && index == 0 && ValueMovingOps.Of(node) is var through and not ValueMovingOps.Through.None)
            {
                var beyond = Of(graph, node.Output[0], depth + 1);
                result.AddRange(through == ValueMovingOps.Through.Exact ? beyond : beyond.Select(ValueMovingOps.AfterInterpolation));
                continue;
            }

            result.Add(index == 0 ? Single(graph, node) : ConsumerResponse.Identity);
        }

        return result.Count == 0 ? [ConsumerResponse.Identity] : result;
    }

    /// <summary>The interval outside which every consumer saturates: [min of lower bounds, max of upper bounds].</summary>
    public static (double Low, double High) SaturationBounds(IReadOnlyList<ConsumerResponse> responses) =>
        (responses.Min(r => r.SaturatesBelow), responses.Max(r => r.SaturatesAbove));

    private static ConsumerResponse Single(GraphView graph, NodeProto node)
    {
        if (node.Domain is not ("" or "ai.onnx"))
        {
            return ConsumerResponse.Identity;
        }

        switch (node.OpType)
        {
            case "Relu":
                return ConsumerResponse.Relu;
            case "Clip" when ClipBounds(graph, node) is { } bounds:
                return ConsumerResponse.Clip(bounds.Low, bounds.High);
            case "HardSigmoid":
                var alpha = node.GetFloat("alpha", 0.2f);
                return alpha > 0 ? ConsumerResponse.HardSigmoid(alpha, node.GetFloat("beta", 0.5f)) : ConsumerResponse.Identity;
            case "HardSwish":
                return ConsumerResponse.HardSwish(3, 6);
            case "Sigmoid":
                return ConsumerResponse.Sigmoid;
            default:
                return ConsumerResponse.Identity;
        }
    }

    /// <summary>y = scale·x + shift when <paramref name="node"/> is Mul/Add/Sub/Div of <paramref name="x"/> and a constant scalar.</summary>
    private static (double Scale, double Shift)? Affine(GraphView graph, NodeProto node, string x)
    {
        if (node.Domain is not ("" or "ai.onnx") || node.Input.Count != 2 || node.Output.Count != 1 || node.Input[0] == node.Input[1])
        {
            return null;
        }

        var xFirst = node.Input[0] == x;
        if (ScalarConstant(graph, xFirst ? node.Input[1] : node.Input[0]) is not { } c)
        {
            return null;
        }

        return node.OpType switch
        {
            "Mul" when c != 0 => (c, 0),
            "Add" => (1, c),
            "Sub" => xFirst ? (1, -c) : (-1, c),
            "Div" when xFirst && c != 0 => (1 / c, 0),
            _ => null,
        };
    }

    /// <summary>Clip's bounds from inputs 1 and 2 (opset ≥ 11, constants) or attributes min/max (older opsets).</summary>
    private static (double Low, double High)? ClipBounds(GraphView graph, NodeProto node)
    {
        double low = node.GetFloat("min", float.NegativeInfinity), high = node.GetFloat("max", float.PositiveInfinity);
        for (var i = 1; i <= 2 && i < node.Input.Count; i++)
        {
            if (node.Input[i].Length == 0)
            {
                continue;
            }

            if (ScalarConstant(graph, node.Input[i]) is not { } value)
            {
                return null;
            }

            if (i == 1)
            {
                low = value;
            }
            else
            {
                high = value;
            }
        }

        return (low, high);
    }

    private static double? ScalarConstant(GraphView graph, string name) =>
        graph.Initializers.TryGetValue(name, out var t) && t.DataType == (int)TensorProto.Types.DataType.Float
            && TensorElementInfo.TryGetElementCount(t.Dims, out long count) && count == 1 // not a weight read from disk to find out
            && TensorValues.ReadFloats(t) is { Length: 1 } v ? v[0] : null;

    /// <summary>x → Add(x, c) → Clip(0, h) [→ Div/Mul by a constant] → Mul(x, ·): hard-swish, zero for x ≤ −c.</summary>
    private static (ConsumerResponse Response, NodeProto[] Nodes)? HardSwishPattern(GraphView graph, string x, NodeProto add)
    {
        if (add.OpType != "Add" || add.Domain is not ("" or "ai.onnx") || add.Input.Count != 2)
        {
            return null;
        }

        var other = add.Input[0] == x ? add.Input[1] : add.Input[0];
        if (ScalarConstant(graph, other) is not { } shift || graph.Outputs.Contains(add.Output[0]))
        {
            return null;
        }

        var clipConsumers = graph.Consumers(add.Output[0]);
        if (clipConsumers.Count != 1 || clipConsumers[0].Node.OpType != "Clip" || clipConsumers[0].Index != 0
            || ClipBounds(graph, clipConsumers[0].Node) is not { Low: 0, High: var high } || double.IsInfinity(high))
        {
            return null;
        }

        var clip = clipConsumers[0].Node;
        var gate = clip.Output[0];
        var nodes = new List<NodeProto> { add, clip };
        var gateConsumers = graph.Consumers(gate);
        if (gateConsumers is [{ Node: { OpType: "Div" or "Mul", Input.Count: 2 } scale, Index: 0 }]
            && ScalarConstant(graph, scale.Input[1]) is > 0 && !scale.Input.Contains(x) && !graph.Outputs.Contains(gate))
        {
            // x * (Clip(x + 3, 0, 6) / 6): the scaled gate feeds the Mul.
            nodes.Add(scale);
            gate = scale.Output[0];
            gateConsumers = graph.Consumers(gate);
        }

        if (gateConsumers.Count != 1 || gateConsumers[0].Node is not { OpType: "Mul" } mul || mul.Input.Count != 2
            || !mul.Input.Contains(x) || graph.Outputs.Contains(gate))
        {
            return null;
        }

        nodes.Add(mul);
        return (ConsumerResponse.HardSwish(shift, high), nodes.ToArray());
    }
}
