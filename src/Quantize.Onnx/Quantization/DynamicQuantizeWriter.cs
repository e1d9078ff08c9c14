using Quantize.Onnx.Model;
using Quantize.Onnx.Model.Proto;

namespace Quantize.Onnx.Quantization;

/// <summary>
/// Rewrites each <see cref="DynamicMatMul"/> into the standard-ONNX shape ORT's CPU optimiser fuses
/// (MatMulIntegerToFloatFusion, then DynamicQuantizeMatMulFusion) into one DynamicQuantizeMatMul:
/// <code>
/// x → DynamicQuantizeLinear → (x_q, x_scale, x_zp)
/// MatMulInteger(x_q, W_q, x_zp, W_zp) → Cast(float) → Mul(·, Mul(x_scale, W_scale)) [→ Add(·, bias)]
/// </code>
/// Weights are int8 symmetric (one scale per output column when per-channel), activations uint8 with
/// their range taken at run time. Units reading the same activation (attention's Q, K and V) share one
/// DynamicQuantizeLinear, as ORT's common-subexpression pass would make them anyway; ORT then forms
/// MatMulIntegerToFloat for those and DynamicQuantizeMatMul for units with an input of their own.
/// </summary>
/// <param name="names">Names taken across the whole model (a control-flow body is written after the main graph); null: the graph's own.</param>
internal sealed class DynamicQuantizeWriter(GraphView graph, IReadOnlyList<DynamicMatMul> units, QuantizationOptions options, bool perChannel, NameAllocator? names = null)
{
    /// <summary>DynamicQuantizeLinear came with opset 11.</summary>
    public const int MinimumOpset = 11;

    private readonly NameAllocator _names = names ?? new(graph.AllNames());
    private readonly List<TensorProto> _initializers = [];
    private readonly Dictionary<string, (string Quantized, string Scale, string ZeroPoint)> _quantizedInputs = new(StringComparer.Ordinal);

    public GraphProto Write() => UnitRewriter.Rewrite(graph.Graph, units, Rewrite, _initializers);

    private IEnumerable<NodeProto> Rewrite(DynamicMatMul unit)
    {
        var node = unit.Node;
        var prefix = node.Name.Length > 0 ? node.Name : node.Output[0];
        var weight = unit.TransposeWeight ? Transposed(unit.Weight) : unit.Weight;
        var q = WeightQuantizer.QuantizeWeight(_names.Next(unit.Weight.Name + "_quantized"), weight, options.WeightType, perChannel ? 1 : null, null, options.ReduceRange, options.SaturationSafeWeights ? KOrder.Columns : null);
        _initializers.Add(q.Data);
        var weightScale = _names.Next(unit.Weight.Name + "_scale");
        _initializers.Add(TensorValues.FromFloats(weightScale, perChannel ? [q.Scales.Length] : [], q.Scales));
        var weightZeroPoint = _names.Next(unit.Weight.Name + "_zero_point");
        var zeroPoints = Enumerable.Repeat(q.ZeroPoint, q.Scales.Length).ToArray();
        long[] zeroPointDims = perChannel ? [q.Scales.Length] : [];
        _initializers.Add(options.WeightType == QuantType.Int8
            ? TensorValues.FromInt8(weightZeroPoint, zeroPointDims, zeroPoints.Select(z => (sbyte)z).ToArray())
            : TensorValues.FromUInt8(weightZeroPoint, zeroPointDims, zeroPoints.Select(z => (byte)z).ToArray()));

        var input = node.Input[0];
        if (!_quantizedInputs.TryGetValue(input, out var quantizedInput))
        {
            _quantizedInputs[input] = quantizedInput = (_names.Next(input + "_quantized"), _names.Next(input + "_scale"), _names.Next(input + "_zero_point"));
            yield return Make("DynamicQuantizeLinear", input + "_quantize", [input], [quantizedInput.Quantized, quantizedInput.Scale, quantizedInput.ZeroPoint]);
        }

        var (xq, xScale, xZeroPoint) = quantizedInput;
        var integer = _names.Next(prefix + "_int32");
        var asFloat = _names.Next(prefix + "_int32_float");
        var scale = _names.Next(prefix + "_output_scale");
        var scaled = unit.Bias is null ? unit.Output : _names.Next(prefix + "_before_bias");

        yield return Make("MatMulInteger", prefix + "_integer", [xq, q.Data.Name, xZeroPoint, weightZeroPoint], [integer]);
        var cast = Make("Cast", prefix + "_to_float", [integer], [asFloat]);
        cast.SetInt("to", (int)TensorProto.Types.DataType.Float);
        yield return cast;
        yield return Make("Mul", prefix + "_scale", [xScale, weightScale], [scale]);
        yield return Make("Mul", prefix + "_rescale", [asFloat, scale], [scaled]);
        if (unit.Bias is { } bias)
        {
            // The bias goes second: ORT's MatMulIntegerToFloatFusion reads it from the Add's input 1.
            yield return Make("Add", prefix + "_bias", [scaled, bias.Name], [unit.Output]);
        }
    }

    private NodeProto Make(string opType, string name, string[] inputs, string[] outputs) =>
        new() { OpType = opType, Name = _names.Next(name), Input = { inputs }, Output = { outputs } };

    /// <summary>A Gemm's [N, K] weight (transB=1) as the [K, N] matrix MatMulInteger multiplies by.</summary>
    private static TensorProto Transposed(TensorProto weight)
    {
        var values = TensorValues.ReadFloats(weight);
        var (rows, cols) = ((int)weight.Dims[0], (int)weight.Dims[1]);
        var transposed = new float[values.Length];
        for (var r = 0; r < rows; r++)
        {
            for (var c = 0; c < cols; c++)
            {
                transposed[(c * rows) + r] = values[(r * cols) + c];
            }
        }

        return TensorValues.FromFloats(weight.Name, [cols, rows], transposed);
    }
}
