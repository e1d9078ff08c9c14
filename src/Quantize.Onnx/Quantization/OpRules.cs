using Quantize.Onnx.Model;
using Quantize.Onnx.Model.Proto;

namespace Quantize.Onnx.Quantization;

/// <summary>How the QDQ writer treats an op type.</summary>
internal enum OpKind
{
    /// <summary>Heavy compute with weights (Conv, MatMul, ...): always worth an integer kernel.</summary>
    Anchor,

    /// <summary>Cheap op with its own output scale (Add, Concat, pooling, activations): quantized only inside a quantized region.</summary>
    Elementwise,

    /// <summary>Moves or selects values without arithmetic: runs on int8 when input and output share one scale.</summary>
    DataMovement,

    /// <summary>Relu/Clip: disappears into the producer's output range where saturation reproduces it exactly.</summary>
    RemovableActivation,
}

/// <summary>
/// The quantization rule of one op type: which inputs carry activations, which carry weights and bias.
/// Every rule here matches a node unit that ORT's CPU QDQ transformers turn into an integer kernel
/// (QLinearConv, QLinearMatMul, QGemm, QLinearAdd, QLinearConcat, ...) or run directly on uint8/int8.
/// </summary>
internal sealed record OpRule(OpKind Kind, int[] ActivationInputs, int WeightInput = -1, int BiasInput = -1, bool AllInputsAreActivations = false);

internal static class OpRules
{
    private static readonly Dictionary<string, OpRule> Rules = new(StringComparer.Ordinal)
    {
        ["Conv"] = new(OpKind.Anchor, [0], WeightInput: 1, BiasInput: 2),
        ["ConvTranspose"] = new(OpKind.Anchor, [0], WeightInput: 1, BiasInput: 2),
        ["MatMul"] = new(OpKind.Anchor, [0], WeightInput: 1),
        ["Gemm"] = new(OpKind.Anchor, [0], WeightInput: 1, BiasInput: 2),
        ["Add"] = new(OpKind.Elementwise, [0, 1]),
        ["Mul"] = new(OpKind.Elementwise, [0, 1]),
        ["Concat"] = new(OpKind.Elementwise, [], AllInputsAreActivations: true),
        ["AveragePool"] = new(OpKind.Elementwise, [0]),
        ["GlobalAveragePool"] = new(OpKind.Elementwise, [0]),
        ["LeakyRelu"] = new(OpKind.Elementwise, [0]),
        ["Sigmoid"] = new(OpKind.Elementwise, [0]),
        ["Softmax"] = new(OpKind.Elementwise, [0]),
        ["MaxPool"] = new(OpKind.DataMovement, [0]),
        ["Reshape"] = new(OpKind.DataMovement, [0]),
        ["Transpose"] = new(OpKind.DataMovement, [0]),
        ["Flatten"] = new(OpKind.DataMovement, [0]),
        ["Squeeze"] = new(OpKind.DataMovement, [0]),
        ["Unsqueeze"] = new(OpKind.DataMovement, [0]),
        ["Resize"] = new(OpKind.DataMovement, [0]),
        ["Slice"] = new(OpKind.DataMovement, [0]),
        ["Gather"] = new(OpKind.DataMovement, [0]),
        ["Split"] = new(OpKind.DataMovement, [0]),
        ["Relu"] = new(OpKind.RemovableActivation, [0]),
        ["Clip"] = new(OpKind.RemovableActivation, [0]),
    };

    public static OpRule? Find(NodeProto node) =>
        node.Domain is "" or "ai.onnx" && Rules.TryGetValue(node.OpType, out var rule) ? rule : null;

    public static IEnumerable<int> ActivationInputs(NodeProto node, OpRule rule) =>
        rule.AllInputsAreActivations ? Enumerable.Range(0, node.Input.Count) : rule.ActivationInputs;

    /// <summary>
    /// Ops whose quantized form ORT 1.31 runs slower than float on x86: QLinearMul and depthwise
    /// convolutions larger than 3×3 (measured), and ConvTranspose, which ORT's CPU provider does not
    /// fuse at all (it would run as DQ → float ConvTranspose → Q).
    /// </summary>
    public static bool IsSlowWhenQuantized(NodeProto node, GraphView graph)
    {
        if (node.OpType is "Mul" or "ConvTranspose")
        {
            return true;
        }

        if (node.OpType != "Conv" || node.GetInt("group", 1) == 1 || !graph.Initializers.TryGetValue(node.Input[1], out var weight))
        {
            return false;
        }

        var depthwise = weight.Dims.Count == 4 && weight.Dims[1] == 1;
        var kernelArea = weight.Dims.Skip(2).Aggregate(1L, (a, b) => a * b);
        return depthwise && kernelArea > 9;
    }
}
