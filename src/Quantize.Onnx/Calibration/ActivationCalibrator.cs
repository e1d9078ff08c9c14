using System.Diagnostics;
using Quantize.Onnx.Model;
using Quantize.Onnx.Model.Proto;
using Quantize.Onnx.Preparation;
using Quantize.Onnx.Quantization;
using Quantize.Onnx.Samples;

namespace Quantize.Onnx.Calibration;

/// <summary>
/// The calibration passes of one session, each run at most once and shared by every candidate built from it: the
/// MinMax pass (per-tensor ranges, and per-channel ranges of the tensors equalization may rescale), and the histogram
/// pass of the percentile/entropy/MSE methods once per equalization choice (equalization rescales the tensors between
/// the pairs it balances, which changes their distributions but not their per-channel extremes).
/// </summary>
internal sealed class ActivationCalibrator(
    ModelProto prepared, TensorTypes types, IReadOnlyList<string> inputNames, SampleSet data, List<Diagnostic> warnings,
    Action<QuantizeProgress>? progress, CancellationToken cancellation)
{
    private Calibrated? _minMax;
    private readonly Dictionary<bool, Dictionary<string, Histogram>> _histograms = [];

    /// <summary>Time spent in calibration passes so far.</summary>
    public TimeSpan Elapsed { get; private set; }

    /// <summary>
    /// The MinMax pass. Cross-layer equalization needs per-channel ranges of the tensors it may rescale; they come
    /// from the same pass, and their per-tensor ranges are derived per candidate.
    /// </summary>
    public Calibrated MinMax()
    {
        if (_minMax is not null)
        {
            return _minMax;
        }

        var pairs = CrossLayerEqualizer.FindPairs(prepared.Graph);
        var channelTensors = pairs.SelectMany(p => p.Tensors).Where(t => types[t]?.Rank >= 3).ToHashSet(StringComparer.Ordinal);
        var timer = Stopwatch.StartNew();
        var tensors = FloatActivations(prepared).Where(t => !channelTensors.Contains(t)).ToList();
        // The first pass also gathers each input's range per sample for the sanity warnings (QNT2101/QNT2102).
        var statistics = new InputStatistics();
        var (ranges, channelRanges) = MinMaxCalibrator.Collect(prepared, inputNames, tensors, channelTensors, data,
            done => progress?.Invoke(new QuantizeProgress("calibrating", done, data.Count)), cancellation, statistics, types);
        Elapsed += timer.Elapsed;
        warnings.AddRange(statistics.Warnings($"calibration set '{data.Folder}'"));
        warnings.AddRange(UntakenBodies.Drop(prepared, types, ranges, data.Folder));

        return _minMax = new Calibrated(ranges, channelRanges);
    }

    /// <summary>
    /// Histograms of every float activation, collected on the model as the static build will quantize it: equalized
    /// with the same channel ranges when <paramref name="equalize"/>.
    /// </summary>
    public Dictionary<string, Histogram> Histograms(bool equalize, Dictionary<string, ChannelRange> channels)
    {
        if (_histograms.TryGetValue(equalize, out var done))
        {
            return done;
        }

        var model = prepared.Clone();
        if (equalize)
        {
            CrossLayerEqualizer.Equalize(model.Graph, CrossLayerEqualizer.FindPairs(model.Graph), channels);
        }

        var timer = Stopwatch.StartNew();
        // Body tensors are streamed too where they can leave their body (BodyTensorExport); the others keep their MinMax ranges.
        var main = FloatActivations(model);
        var bodies = BodyTensorExport.Tensors(model, t => types[t]?.IsStatic == true).Where(types.IsFloat32).Except(main, StringComparer.Ordinal).ToList();
        Dictionary<string, Histogram> histograms;
        try
        {
            histograms = Collect(model, [.. main, .. bodies]);
        }
        catch (QuantizeException e) when (e.Code == ErrorCodes.ModelRunFailed && bodies.Count > 0)
        {
            // Shape inference can call static a loop-body tensor whose shape a run changes between iterations (a branch
            // inside the loop that pads differently), and ORT refuses to stack it: the bodies keep their MinMax ranges.
            histograms = Collect(model, main);
        }

        Elapsed += timer.Elapsed;
        return _histograms[equalize] = histograms;
    }

    private Dictionary<string, Histogram> Collect(ModelProto model, List<string> tensors) =>
        HistogramCalibrator.Collect(model, inputNames, tensors, data, HistogramCalibrator.BudgetBytes(),
            (count, total) => progress?.Invoke(new QuantizeProgress("calibrating", count, total)), cancellation);

    private List<string> FloatActivations(ModelProto model)
    {
        var initializers = model.Graph.Initializer.Select(t => t.Name).ToHashSet(StringComparer.Ordinal);
        return model.Graph.Input.Select(i => i.Name)
            .Concat(model.Graph.Node.SelectMany(n => n.Output))
            .Where(n => n.Length > 0 && !initializers.Contains(n) && types.IsFloat32(n))
            .Distinct(StringComparer.Ordinal)
            .ToList();
    }
}

/// <summary>Ranges of one calibration pass: per tensor, and per channel for the tensors equalization may rescale.</summary>
internal sealed record Calibrated(Dictionary<string, TensorRange> Ranges, Dictionary<string, ChannelRange> Channels);
