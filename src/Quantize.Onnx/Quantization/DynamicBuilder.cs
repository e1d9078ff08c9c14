using Quantize.Onnx.Model;

namespace Quantize.Onnx.Quantization;

/// <summary>
/// Dynamic mode: MatMul/Gemm with constant weights on integer kernels, activations quantized at run time, no
/// calibration, in the main graph and in control-flow bodies (<see cref="BodyQuantizer"/>). The plan lists those nodes
/// and has no activation grids. Nothing is built when the model has nothing dynamic quantization runs on integer
/// kernels (warning QNT2502).
/// </summary>
internal sealed class DynamicBuilder(QuantizeSession session, List<Diagnostic> warnings) : CandidateBuilder(session)
{
    public override Candidate? Build(QuantizationOptions options, BuildNumbers? replay = null)
    {
        var fp32 = Session.Prepared.Clone();
        var graph = new GraphView(fp32.Graph);
        var perChannel = Session.PerChannel && options.PerChannel;
        var units = new DynamicMatMulPlanner(graph, Session.Types, options).Plan();
        var quantized = fp32.Clone();
        var opsetOk = fp32.DefaultOpset() >= DynamicQuantizeWriter.MinimumOpset;
        if (units.Count > 0 && opsetOk)
        {
            quantized.Graph = new DynamicQuantizeWriter(graph, units, options, perChannel).Write();
        }

        var bodyNodes = opsetOk ? BodyQuantizer.QuantizeDynamic(quantized, Session.Types, options, perChannel) : [];
        var lstms = fp32.Graph.Node.Any(n => LstmQuantizer.CanQuantize(n, graph.Initializers))
            || ControlFlowBodies.Of(fp32).Any(b => b.Graph.Node.Any(n => LstmQuantizer.CanQuantize(n, ControlFlowBodies.VisibleInitializers(b, fp32.Graph, own: true))));
        if ((units.Count == 0 && bodyNodes.Count == 0 && !lstms) || (units.Count > 0 && !opsetOk))
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
        plan.QuantizedNodes.UnionWith(units.Select(u => u.Node).Concat(bodyNodes));
        QuantizeEmbeddingsAndLstms(quantized, options);
        return Seal(options, fp32, quantized, plan);
    }
}
