using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using Quantize.Onnx.Model;
using Quantize.Onnx.Model.Proto;
using Quantize.Onnx.Samples;
using Quantize.Onnx.Validation;

namespace Quantize.Onnx.Preparation;

/// <summary>Turns the user's model into the graph the calibrator and the QDQ writer work on.</summary>
internal static class ModelPreparer
{
    /// <summary>
    /// The model the quantizer works on: unnamed nodes named (exclusion is by name), ORT's basic
    /// optimisation run offline, element types and shapes of every tensor, and the opset raised to 13
    /// when per-channel weights are wanted: ranks static inference cannot find are read from a run on
    /// <paramref name="sample"/>, and the raised model is checked against the source on it. A model
    /// that cannot be raised keeps its opset and gets per-tensor weights, with warning QNT2001 (below
    /// opset 10, which has no QuantizeLinear, error QNT1005).
    /// </summary>
    public static ModelProto Prepare(
        ModelProto source, string modelPath, bool wantPerChannel, byte[] fp32Bytes, IReadOnlyList<string> inputNames, InputSample sample,
        List<Diagnostic> warnings, out bool perChannel, out TensorTypes types)
    {
        var named = source.Clone();
        NameUnnamedNodes(named.Graph);
        ModelProto prepared;
        try
        {
            prepared = OrtGraphOptimizer.Optimize(named);
        }
        catch (OnnxRuntimeException e)
        {
            throw new QuantizeException(ErrorCodes.ModelUnsupported, modelPath,
                $"ONNX Runtime cannot load this model: {e.Message}. Check that it runs in ONNX Runtime {OrtVersion} before quantizing it.", e);
        }

        BodyConstants.ToInitializers(prepared);
        GemmSplitter.Split(prepared);
        types = TensorTypes.Infer(prepared);
        perChannel = wantPerChannel;
        var opset = prepared.DefaultOpset();
        if (opset >= OpsetUpgrader.TargetOpset || (!perChannel && opset >= 10))
        {
            return prepared;
        }

        var upgraded = prepared.Clone();
        // Ranks ORT's static inference leaves unknown (shapes computed at run time) are read from the first sample.
        if (OpsetUpgrader.TryUpgrade(upgraded, types, SampleShapes.For(prepared, inputNames, sample), out var reason))
        {
            try
            {
                var upgradedTypes = TensorTypes.Infer(upgraded);
                reason = DifferenceFrom(fp32Bytes, upgraded.ToByteArray(), inputNames, sample) ?? "";
                if (reason.Length == 0)
                {
                    types = upgradedTypes;
                    return upgraded;
                }
            }
            catch (OnnxRuntimeException e)
            {
                reason = $"ONNX Runtime rejected the upgraded model ({e.Message}); re-export the model with opset 13 or later";
            }
        }

        if (opset < 10)
        {
            throw new QuantizeException(ErrorCodes.ModelUnsupported, modelPath,
                $"The model uses opset {opset}, which has no QuantizeLinear, and raising it to {OpsetUpgrader.TargetOpset} failed: {reason}.");
        }

        warnings.Add(new Diagnostic(ErrorCodes.PerChannelFallback, modelPath,
            $"The model's opset {opset} could not be raised to {OpsetUpgrader.TargetOpset}: {reason}. Weights are quantized per tensor instead of per channel, which costs accuracy."));
        perChannel = false;
        return prepared;
    }

    private static string OrtVersion => typeof(InferenceSession).Assembly.GetName().Version?.ToString(3) ?? "";

    /// <summary>Names every unnamed node, in subgraphs too (exclusion, the fusion report and the tuner find nodes by name).</summary>
    private static void NameUnnamedNodes(GraphProto graph)
    {
        var names = new NameAllocator(ControlFlowBodies.AllNodes(graph).Select(n => n.Name).Where(n => n.Length > 0));
        void Name(GraphProto g)
        {
            for (var i = 0; i < g.Node.Count; i++)
            {
                if (g.Node[i].Name.Length == 0)
                {
                    g.Node[i].Name = names.Next($"{g.Node[i].OpType}_{i}");
                }
            }
        }

        Name(graph);
        foreach (var node in ControlFlowBodies.AllNodes(graph).Where(n => n.HasSubgraph()).ToList())
        {
            foreach (var subgraph in ControlFlowBodies.Subgraphs(node))
            {
                Name(subgraph);
            }
        }
    }

    /// <summary>
    /// The opset upgrade must not change what the model computes: compare it with the source on a real
    /// sample. Returns why they differ, or null. (BatchNorm folding alone stays far above 60 dB.)
    /// </summary>
    private static string? DifferenceFrom(byte[] original, byte[] upgraded, IReadOnlyList<string> inputNames, InputSample sample)
    {
        var a = ModelRunner.RunOnce(original, inputNames, sample);
        var b = ModelRunner.RunOnce(upgraded, inputNames, sample);
        foreach (var (name, expected) in a)
        {
            var sqnr = new SqnrAccumulator();
            sqnr.Add(expected.Values, b[name].Values);
            if (sqnr.Decibels < 60)
            {
                return $"the upgraded model's output '{name}' differs from the original on sample '{sample.Source}' (SQNR {sqnr.Decibels:F1} dB); re-export the model with opset 13 or later";
            }
        }

        return null;
    }
}
