using Quantize.Onnx.Model;

namespace Quantize.Onnx.Quantization;

/// <summary>
/// Weight-only 4-bit: MatMul/Gemm with a constant weight of at least one block in K and N become MatMulNBits; large
/// embedding tables int8 per row. The plan lists those nodes. Nothing is built when no weight qualifies (warning QNT2520).
/// </summary>
internal sealed class Weight4Builder(QuantizeSession session, List<Diagnostic> warnings) : CandidateBuilder(session)
{
    public override Candidate? Build(QuantizationOptions options, BuildNumbers? replay = null)
    {
        var fp32 = Session.Prepared.Clone();
        var graph = new GraphView(fp32.Graph);
        var candidates = new DynamicMatMulPlanner(graph, Session.Types, options).Plan();
        var units = MatMulNBitsWriter.Eligible(candidates, options.BlockSize);
        if (units.Count == 0)
        {
            var why = candidates.Count == 0
                ? "it has no MatMul or Gemm with a constant 2-D float weight, the only ops it quantizes. Use static mode (calibration data) for a conv net"
                : $"none of its {candidates.Count} MatMul/Gemm weights has K and N of at least one block ({options.BlockSize}); smaller ones stay float. Use a smaller --block-size (QuantizeBlockSize), or --mode dynamic";
            warnings.Add(new Diagnostic(ErrorCodes.NothingToQuantizeWeight4, Session.ModelPath, $"Weight-only 4-bit mode left the model unchanged: {why}."));
            return null;
        }

        var plan = new QuantizationPlan();
        plan.QuantizedNodes.UnionWith(units.Select(u => u.Node));
        var quantized = fp32.Clone();
        new MatMulNBitsWriter(graph, units, options).Write(quantized);
        QuantizeEmbeddingsAndLstms(quantized, options);
        return Seal(options, fp32, quantized, plan);
    }
}
