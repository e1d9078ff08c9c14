using Quantize.Onnx.Model;

namespace Quantize.Onnx.Quantization;

/// <summary>
/// Dynamic mode: MatMul/Gemm with constant weights on integer kernels, activations quantized at run time, no
/// calibration. The plan lists those nodes and has no activation grids. Nothing is built when the model has nothing
/// dynamic quantization runs on integer kernels (warning QNT2502).
/// </summary>
internal sealed class DynamicBuilder(QuantizeSession session, List<Diagnostic> warnings) : CandidateBuilder(session)
{
    public override Candidate? Build(QuantizationOptions options, BuildNumbers? replay = null)
    {
        var fp32 = Session.Prepared.Clone();
        var graph = new GraphView(fp32.Graph);
        var units = new DynamicMatMulPlanner(graph, Session.Types, options).Plan();
        var lstms = fp32.Graph.Node.Any(n => LstmQuantizer.CanQuantize(n, graph.Initializers));
        if ((units.Count == 0 && !lstms) || (units.Count > 0 && fp32.DefaultOpset() < DynamicQuantizeWriter.MinimumOpset))
        {
            var why = units.Count == 0
                ? "it has no MatMul or Gemm with a constant weight and no LSTM (the only ops dynamic quantization runs on integer kernels; ORT's ConvInteger is slower than float Conv)"
                : $"its opset {fp32.DefaultOpset()} has no DynamicQuantizeLinear (needs {DynamicQuantizeWriter.MinimumOpset}) and could not be raised";
            warnings.Add(new Diagnostic(ErrorCodes.NothingToQuantizeDynamically, Session.ModelPath,
                $"Dynamic quantization left the model unchanged: {why}. To quantize it, give calibration samples and use static mode " +
                $"(--calibration; in a build the folder '{Path.GetFileNameWithoutExtension(Session.ModelPath)}.calibration' beside the model, or QuantizeCalibrationData)."));
            return null;
        }

        var plan = new QuantizationPlan();
        plan.QuantizedNodes.UnionWith(units.Select(u => u.Node));
        var quantized = fp32.Clone();
        quantized.Graph = new DynamicQuantizeWriter(graph, units, options, Session.PerChannel && options.PerChannel).Write();
        QuantizeEmbeddingsAndLstms(quantized, options);
        return Seal(options, fp32, quantized, plan);
    }
}
