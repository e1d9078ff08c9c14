using Google.Protobuf;
using Quantize.Onnx.Calibration;
using Quantize.Onnx.Hardware;
using Quantize.Onnx.Model;

namespace Quantize.Onnx.Quantization;

/// <summary>
/// Static mode: calibrated activation ranges (the session's calibration passes, each run once), cross-layer
/// equalization, QDQ for the ops whose integer kernels are faster, then output bias correction. A candidate that only
/// changes exclusions or per-channel reuses every pass.
/// </summary>
internal sealed class StaticBuilder(
    QuantizeSession session, Int8Arithmetic arithmetic, List<Diagnostic> warnings, Action<QuantizeProgress>? progress, CancellationToken cancellation)
    : CandidateBuilder(session)
{
    private const int BiasCorrectionSamples = 16;

    private readonly ActivationCalibrator _calibrator = new(session.Prepared, session.Types, session.InputNames, session.Data, warnings, progress, cancellation);

    // The FP32 model's output means are the same for every candidate (equalization is exact up to float rounding), so they are computed once.
    private readonly Dictionary<string, double[]> _fp32OutputMeans = new(StringComparer.Ordinal);

    public override TimeSpan CalibrationTime => _calibrator.Elapsed;

    /// <summary>Quantizes the prepared model with <paramref name="options"/> (calibrating first if no pass has run yet).</summary>
    /// <param name="replay">Numbers recorded by an earlier run (the lock file): no calibration pass and no bias-correction runs, so the bytes do not depend on this machine's float kernels.</param>
    public override Candidate Build(QuantizationOptions options, BuildNumbers? replay = null)
    {
        // uint8 inputs that are not image-like fail before calibration; an exact input grid is fixed before any range is planned.
        var uint8Inputs = options.UInt8Inputs ? UInt8Input.Resolve(Session.Prepared, options.Images, Session.ModelPath) : null;

        // Replayed: the recorded ranges name every calibrated tensor, so consumers (and their saturation bounds) are found as in the recording run.
        var calibrated = replay is null ? _calibrator.MinMax() : new Calibrated(
            replay.Ranges.ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal),
            replay.Channels.ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal));
        var fp32 = Session.Prepared.Clone();
        // Histogram methods calibrate the model equalized for every conv quantized (once per session), so only MinMax
        // ranges, derived per candidate, may follow the candidate's float convs.
        var divisors = options.Equalize
            ? CrossLayerEqualizer.Equalize(fp32.Graph, CrossLayerEqualizer.FindPairs(fp32.Graph), calibrated.Channels,
                options.CalibrationMethod == CalibrationMethod.MinMax ? options.Excludes : null)
            : [];
        var graph = new GraphView(fp32.Graph);
        var consumers = ActivationRanges.Consumers(graph, calibrated.Ranges.Keys.Concat(calibrated.Channels.Keys), options);
        ActivationRanges.AddBranchConsumers(consumers, fp32, options);
        var ranges = replay is not null
            ? replay.Ranges.ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal)
            : Ranges(options, calibrated, divisors, consumers);

        // A Pad that keeps an exact input grid carries it, so the shipped model pads the bytes themselves.
        var fixedGrids = UInt8Pads.CarriedGrids(fp32.Graph, UInt8Input.ExactGrids(uint8Inputs, options.ActivationType));
        var plan = new QdqPlanner(graph, Session.Types, ranges, options, fixedGrids).Plan();
        var quantized = fp32.Clone();
        quantized.Graph = new QdqWriter(graph, plan, options, Session.PerChannel && options.PerChannel, fp32.DefaultOpset()).Write();
        plan.QuantizedNodes.UnionWith(BodyQuantizer.Quantize(quantized, Session.Types, ranges, options, Session.PerChannel && options.PerChannel));
        QuantizeEmbeddingsAndLstms(quantized, options);
        var shifts = new Dictionary<string, int[]>(StringComparer.Ordinal);
        if (options.BiasCorrection)
        {
            var data = Session.Data;
            var samples = replay is not null ? [] : Enumerable.Range(0, Math.Min(BiasCorrectionSamples, data.Count)).Select(data.ReadSample).ToList();
            BiasCorrector.Correct(quantized, fp32, Session.InputNames, samples, _fp32OutputMeans, arithmetic, shifts, replay?.BiasShifts);
        }

        if (options.FloatPrecision == FloatPrecision.Fp16)
        {
            Fp16Weights.Convert(quantized);
        }

        var saturation = consumers.Where(kv => kv.Value.Any(r => r.Saturates))
            .ToDictionary(kv => kv.Key, kv => ConsumerResponses.SaturationBounds(kv.Value), StringComparer.Ordinal);
        var candidate = Seal(options, fp32, quantized, plan) with
        {
            Saturation = saturation,
            Numbers = new BuildNumbers(ranges, calibrated.Channels, shifts),
        };
        if (uint8Inputs is null && !options.UInt8Outputs)
        {
            return candidate;
        }

        var shipped = uint8Inputs is null ? candidate.Quantized : UInt8FrontEnd.Ship(candidate.Quantized, uint8Inputs, options.ActivationType);
        IReadOnlyDictionary<string, QuantParams>? outputs = null;
        if (options.UInt8Outputs)
        {
            (shipped, outputs) = UInt8BackEnd.Ship(shipped, Session.ModelPath);
        }

        return candidate with { Shipped = shipped, ShippedBytes = shipped.ToByteArray(), UInt8Inputs = uint8Inputs, UInt8Outputs = outputs };
    }

    /// <summary>The activation ranges of <paramref name="options"/>' calibration method, cut where every consumer saturates.</summary>
    private Dictionary<string, TensorRange> Ranges(
        QuantizationOptions options, Calibrated calibrated, Dictionary<string, float[]> divisors, Dictionary<string, IReadOnlyList<ConsumerResponse>> consumers)
    {
        if (options.CalibrationMethod != CalibrationMethod.MinMax)
        {
            var histograms = _calibrator.Histograms(options.Equalize, calibrated.Channels);
            var fromHistograms = histograms.ToDictionary(
                kv => kv.Key, kv => ActivationRanges.FromHistogram(kv.Value, ResponsesOf(consumers, kv.Key), options), StringComparer.Ordinal);

            // Histograms cover the main graph and the body tensors that can leave their body (BodyTensorExport); other body
            // tensors keep their MinMax ranges, and a body tensor the MinMax pass dropped stays dropped (QNT2103/QNT2104).
            foreach (var tensor in ActivationRanges.BranchTensors(Session.Prepared, Session.Types))
            {
                if (!calibrated.Ranges.TryGetValue(tensor, out var minMax))
                {
                    fromHistograms.Remove(tensor);
                }
                else if (!fromHistograms.ContainsKey(tensor) || histograms[tensor].Count == 0)
                {
                    fromHistograms[tensor] = ActivationRanges.Cut(minMax, ResponsesOf(consumers, tensor));
                }
            }

            return fromHistograms;
        }

        var ranges = new Dictionary<string, TensorRange>(calibrated.Ranges, StringComparer.Ordinal);
        foreach (var (tensor, channels) in calibrated.Channels)
        {
            ranges[tensor] = divisors.TryGetValue(tensor, out var d) ? CrossLayerEqualizer.ScaledRange(channels, d) : channels.Overall;
        }

        return ranges.ToDictionary(kv => kv.Key, kv => ActivationRanges.Cut(kv.Value, ResponsesOf(consumers, kv.Key)), StringComparer.Ordinal);
    }

    private static IReadOnlyList<ConsumerResponse> ResponsesOf(Dictionary<string, IReadOnlyList<ConsumerResponse>> consumers, string tensor) =>
        consumers.TryGetValue(tensor, out var r) ? r : [ConsumerResponse.Identity];
}
