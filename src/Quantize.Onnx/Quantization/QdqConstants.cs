using Quantize.Onnx.Model;
using Quantize.Onnx.Model.Proto;

namespace Quantize.Onnx.Quantization;

/// <summary>
/// The constant inputs of one quantized node, for a <see cref="QdqWriter"/>: weights int8 (per output channel when
/// asked, saturation-safe when the targets need it), bias int32 with scale = input scale × weight scale, and constants
/// read as activations on the activation grid; each stored quantized behind its own DequantizeLinear.
/// </summary>
internal sealed class QdqConstants(GraphView graph, QuantizationPlan plan, QuantizationOptions options, bool perChannel, QdqGraphEdits edits)
{
    /// <summary>Quantizes the constant inputs of <paramref name="node"/> (a quantized, not absorbed node).</summary>
    public void Quantize(NodeProto node)
    {
        var rule = OpRules.Find(node)!;
        if (rule.Kind == OpKind.Anchor)
        {
            QuantizeWeightAndBias(node, rule);
            return;
        }

        foreach (var index in OpRules.ActivationInputs(node, rule).Where(i => i < node.Input.Count && graph.IsInitializer(node.Input[i])))
        {
            var constant = graph.Initializers[node.Input[index]];
            var (q, _) = WeightQuantizer.QuantizeAsActivation(edits.NewName(constant.Name + "_quantized"), constant, options.ActivationType);
            AddDequantizedConstant(node, index, constant.Name, q);
        }
    }

    private void QuantizeWeightAndBias(NodeProto node, OpRule rule)
    {
        var weight = graph.Initializers[node.Input[rule.WeightInput]];
        var axis = WeightAxis(node, weight);
        var channels = axis is { } a ? (int)weight.Dims[a] : 1;
        var inputScale = plan.ActivationParams[node.Input[0]].Scale;

        TensorProto? bias = null;
        if (rule.BiasInput >= 0 && node.Input.Count > rule.BiasInput && node.Input[rule.BiasInput].Length > 0)
        {
            bias = graph.Initializers[node.Input[rule.BiasInput]];
        }

        // Enlarge weight scales where the int32 bias would otherwise overflow.
        var minimumScales = bias is null ? null : WeightQuantizer.MinimumWeightScalesForBias(TensorValues.ReadFloats(bias), inputScale, channels);
        var q = WeightQuantizer.QuantizeWeight(edits.NewName(weight.Name + "_quantized"), weight, options.WeightType, axis, minimumScales, options.ReduceRange, SaturationOrder(node));
        AddDequantizedConstant(node, rule.WeightInput, weight.Name, q);

        if (bias is not null)
        {
            var qb = WeightQuantizer.QuantizeBias(edits.NewName(bias.Name + "_quantized"), bias, inputScale, q.Scales);
            AddDequantizedConstant(node, rule.BiasInput, bias.Name, qb);
        }
    }

    /// <summary>How K runs in this node's weight, when the targets need saturation-safe weights (see <see cref="SaturationBound"/>).</summary>
    private KOrder? SaturationOrder(NodeProto node) => !options.SaturationSafeWeights ? null : node.OpType switch
    {
        "Conv" => KOrder.Conv,
        "Gemm" when node.GetInt("transB", 0) == 1 => KOrder.Rows,
        "Gemm" or "MatMul" => KOrder.Columns,
        _ => KOrder.Rows, // ConvTranspose: no integer kernel on CPU; any order is as good
    };

    private int? WeightAxis(NodeProto node, TensorProto weight)
    {
        if (!perChannel)
        {
            return null;
        }

        return node.OpType switch
        {
            "Conv" => 0,
            "Gemm" => node.GetInt("transB", 0) == 1 ? 0 : 1,
            "MatMul" when weight.Dims.Count == 2 => 1,
            _ => null,
        };
    }

    private void AddDequantizedConstant(NodeProto node, int index, string originalName, QuantizedConstant q)
    {
        edits.AddInitializer(q.Data);
        var scaleDims = q.Axis is null ? Array.Empty<long>() : [q.Scales.Length];
        var scale = edits.NewName(originalName + "_scale");
        edits.AddInitializer(TensorValues.FromFloats(scale, scaleDims, q.Scales));
        var zeroPoint = edits.NewName(originalName + "_zero_point");
        edits.AddInitializer(QdqGraphEdits.ZeroPointTensor(zeroPoint, (TensorProto.Types.DataType)q.Data.DataType, q.ZeroPoint, q.Axis is null ? 0 : q.Scales.Length));

        var dequantized = edits.NewName(originalName + "_dequantized");
        edits.InsertBefore(node, [edits.MakeNode("DequantizeLinear", [q.Data.Name, scale, zeroPoint], dequantized, q.Axis)]);
        edits.Rewire(node, index, dequantized);
    }
}
