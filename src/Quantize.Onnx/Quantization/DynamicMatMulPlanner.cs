using Quantize.Onnx.Model;
using Quantize.Onnx.Model.Proto;
using Quantize.Onnx.Preparation;

namespace Quantize.Onnx.Quantization;

/// <summary>
/// One MatMul or Gemm with a constant 2-D weight that dynamic quantization turns into
/// DynamicQuantizeLinear → MatMulInteger → Cast → Mul (→ Add bias). <see cref="Bias"/> is the constant
/// [N] bias of a following Add (or of the Gemm) that joins the unit, <see cref="BiasAdd"/> that Add
/// node (null for a Gemm's own bias), <see cref="Output"/> the tensor the unit finally writes.
/// </summary>
internal sealed record DynamicMatMul(NodeProto Node, TensorProto Weight, bool TransposeWeight, TensorProto? Bias, NodeProto? BiasAdd, string Output);

/// <summary>
/// Finds the nodes dynamic quantization runs on integer kernels: MatMul and Gemm with a constant float
/// weight, the ops ORT's CPU provider fuses into DynamicQuantizeMatMul / MatMulIntegerToFloat. Conv
/// stays float (ORT's ConvInteger is slower than its float Conv), and so does everything else:
/// MatMul of two activations, LayerNormalization (decomposed or not), Softmax, GELU.
/// </summary>
internal sealed class DynamicMatMulPlanner(GraphView graph, TensorTypes types, QuantizationOptions options)
{
    public List<DynamicMatMul> Plan()
    {
        var units = new List<DynamicMatMul>();
        foreach (var node in graph.Graph.Node)
        {
            if (options.Excludes(node) || node.Domain is not ("" or "ai.onnx"))
            {
                continue;
            }

            var unit = node.OpType switch
            {
                "MatMul" => MatMulUnit(node),
                "Gemm" => GemmUnit(node),
                _ => null,
            };
            if (unit is not null)
            {
                units.Add(unit);
            }
        }

        return units;
    }

    private DynamicMatMul? MatMulUnit(NodeProto node)
    {
        if (ConstantWeight(node) is not { } weight)
        {
            return null;
        }

        // A following Add of a constant [N] bias joins the unit: ORT fuses it into the integer kernel.
        var output = node.Output[0];
        var n = weight.Dims[1];
        if (!graph.Outputs.Contains(output) && graph.Consumers(output) is [var (add, index)] && add.OpType == "Add" && add.Domain is "" or "ai.onnx"
            && !options.ExcludedNodes.Contains(add.Name) && graph.Initializers.TryGetValue(add.Input[1 - index], out var bias)
            && IsBiasOf(bias, n))
        {
            return new DynamicMatMul(node, weight, false, bias, add, add.Output[0]);
        }

        return new DynamicMatMul(node, weight, false, null, null, output);
    }

    private DynamicMatMul? GemmUnit(NodeProto node)
    {
        // alpha would need another Mul, transA a transposed activation: both are rare in exports.
        if (node.GetFloat("alpha", 1f) != 1f || node.GetInt("transA", 0) != 0 || ConstantWeight(node) is not { } weight)
        {
            return null;
        }

        var transpose = node.GetInt("transB", 0) == 1;
        var n = transpose ? weight.Dims[0] : weight.Dims[1];
        TensorProto? bias = null;
        if (node.Input.Count > 2 && node.Input[2].Length > 0)
        {
            if (node.GetFloat("beta", 1f) != 1f || !graph.Initializers.TryGetValue(node.Input[2], out bias) || !IsBiasOf(bias, n))
            {
                return null;
            }
        }

        return new DynamicMatMul(node, weight, transpose, bias, null, node.Output[0]);
    }

    private TensorProto? ConstantWeight(NodeProto node)
    {
        if (node.Input.Count < 2 || !types.IsFloat32(node.Input[0]) || graph.IsInitializer(node.Input[0]) || !types.IsFloat32(node.Output[0])
            || !graph.Initializers.TryGetValue(node.Input[1], out var weight) || weight.DataType != (int)TensorProto.Types.DataType.Float || weight.Dims.Count != 2)
        {
            return null;
        }

        return weight;
    }

    private static bool IsBiasOf(TensorProto bias, long n) =>
        bias.DataType == (int)TensorProto.Types.DataType.Float && bias.Dims.Count == 1 && bias.Dims[0] == n;
}
