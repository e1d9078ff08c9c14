using Quantize.Onnx.Model;
using Quantize.Onnx.Quantization;
using Quantize.Onnx.Validation;

namespace Quantize.Onnx.Tuning;

/// <summary>The tuner's configurations built from the session's calibration and validated, timed and analysed with ONNX Runtime.</summary>
internal sealed class SessionTuningSource(
    QuantizeSession session, CandidateBuilder builder, CandidateValidator validator, int appThreads, Action<QuantizeProgress>? progress = null) : ITuningSource
{
    public bool HasEqualizationPairs => CrossLayerEqualizer.FindPairs(session.Prepared.Graph).Count > 0;

    public bool PerChannelPossible => session.PerChannel;

    public (Candidate Candidate, ValidationReport Validation) Evaluate(QuantizationOptions options)
    {
        var candidate = builder.Build(options) ?? throw new InvalidOperationException("A static build always yields a candidate.");
        return (candidate, validator.Validate(candidate));
    }

    IReadOnlyList<string[]> ITuningSource.FloatUnits(Candidate candidate) => FloatUnits.Of(candidate);

    /// <summary>Multiply-accumulates on the first calibration sample: weight elements × output elements ÷ output channels; other nodes, their output elements.</summary>
    public IReadOnlyDictionary<string, double> NodeCosts(Candidate candidate)
    {
        var bytes = LayerSensitivity.Sizes(candidate.Fp32, session.Data.ReadSample(0));
        var graph = new GraphView(candidate.Fp32.Graph);
        var costs = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var node in candidate.Fp32.Graph.Node)
        {
            var outputs = bytes.GetValueOrDefault(node.Output[0], 4) / 4.0;
            costs[node.Name] = OpRules.Find(node) is { Kind: OpKind.Anchor, WeightInput: var w } && w < node.Input.Count
                && graph.Initializers.TryGetValue(node.Input[w], out var weight) && weight.Dims.Count >= 2
                ? weight.Dims.Aggregate(1.0, (a, d) => a * d) * outputs / Math.Max(1, node.OpType is "MatMul" ? weight.Dims[^1] : weight.Dims[0])
                : outputs;
        }

        return costs;
    }

    public IReadOnlyDictionary<string, double> LayerLoss(Candidate candidate, ValidationReport validation)
    {
        var gate = candidate.Options.Validation!;
        var layers = AccuracyGate.WithLayers(validation, candidate.Fp32, candidate.Quantized, candidate.QuantizedNodeNames,
            session.InputNames, session.Validation!, gate with { LayerSamples = Math.Max(gate.LayerSamples, 4) }).WorstLayers;
        return layers.GroupBy(l => l.Node, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.Max(l => l.LossDb), StringComparer.Ordinal);
    }

    public double Speedup(Candidate candidate, int runs)
    {
        using var feeds = new Feeds(session.InputNames, session.Data.ReadSample(0));
        // At the app's thread count, where the final gate decides: a set fast at 1 thread may not be at 2.
        return LatencyComparison.Measure(session.Fp32Bytes, candidate.Int8Bytes, feeds.Values, runs, warmup: 2, threads: appThreads, singleThreadToo: false).Speedup;
    }

    public void Attempted(TuningAttempt attempt) => progress?.Invoke(new QuantizeProgress("tuning", attempt.Number, 0,
        $"{attempt.Step}: {(attempt.Passed ? "passes" : "fails")} ({string.Join("; ", attempt.Checks)})"));
}
