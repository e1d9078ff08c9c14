using Quantize.Onnx.Model;
using Quantize.Onnx.Model.Proto;
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

    /// <summary>
    /// Multiply-accumulates on the first calibration sample: weight elements × output elements ÷ output channels; other
    /// nodes, their output elements. Body nodes (see <see cref="FloatUnits"/>) count their outputs as far as shape
    /// inference knows them with the sample's input shapes (a dimension still dynamic as 1), times a Loop's constant
    /// trip count: an estimate.
    /// </summary>
    public IReadOnlyDictionary<string, double> NodeCosts(Candidate candidate)
    {
        var main = candidate.Fp32.Graph;
        var bytes = LayerSensitivity.Sizes(candidate.Fp32, session.Data.ReadSample(0));
        var costs = new Dictionary<string, double>(StringComparer.Ordinal);
        var initializers = new GraphView(main).Initializers;
        foreach (var node in main.Node)
        {
            costs[node.Name] = Cost(node, bytes.GetValueOrDefault(node.Output[0], 4) / 4.0, initializers);
        }

        foreach (var body in ControlFlowBodies.Of(candidate.Fp32))
        {
            var visible = ControlFlowBodies.VisibleInitializers(body, main, own: true);
            var runs = body.Ancestors().Prepend(body).Aggregate(1.0, (r, b) => r * TripCount(b, visible));
            foreach (var node in body.Graph.Node)
            {
                costs.TryAdd(node.Name, runs * Cost(node, bytes.GetValueOrDefault(node.Output[0], 4) / 4.0, visible));
            }
        }

        return costs;
    }

    private static double Cost(NodeProto node, double outputs, IReadOnlyDictionary<string, TensorProto> initializers) =>
        OpRules.Find(node) is { Kind: OpKind.Anchor, WeightInput: var w } && w < node.Input.Count
        && initializers.TryGetValue(node.Input[w], out var weight) && weight.Dims.Count >= 2
            ? weight.Dims.Aggregate(1.0, (a, d) => a * d) * outputs / Math.Max(1, node.OpType is "MatMul" ? weight.Dims[^1] : weight.Dims[0])
            : outputs;

    /// <summary>How often a body runs per run of the graph around it: a Loop's constant trip count, else once (If, Scan, unknown).</summary>
    private static double TripCount(Body body, IReadOnlyDictionary<string, TensorProto> initializers) =>
        body.Owner.OpType == "Loop" && body.Owner.Input.Count > 0 && initializers.TryGetValue(body.Owner.Input[0], out var m)
        && TensorValues.ReadInt64s(m) is [> 0 and var trips] ? Math.Min(trips, 1 << 20) : 1;

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
