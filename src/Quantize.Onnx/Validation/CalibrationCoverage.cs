using System.Diagnostics;
using System.Text.Json.Serialization;
using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using Quantize.Onnx.Calibration;
using Quantize.Onnx.Model;
using Quantize.Onnx.Model.Proto;
using Quantize.Onnx.Quantization;
using Quantize.Onnx.Samples;

namespace Quantize.Onnx.Validation;

/// <summary>How many validation values of one quantized activation fall outside its INT8 grid (and are clipped).</summary>
/// <param name="Low">Lowest value the grid represents.</param>
/// <param name="High">Highest value the grid represents.</param>
/// <param name="Share">Clipped / elements, in %.</param>
public sealed record TensorCoverage(string Tensor, double Low, double High, long Elements, long Clipped, double Share);

/// <summary>The clipped share of one validation sample over every measured tensor, in %.</summary>
public sealed record SampleCoverage(string Sample, double Share);

/// <summary>Calibration coverage of the validation data (warning QNT2404 when it is poor).</summary>
public sealed record CoverageReport
{
    /// <summary>Quantized activation tensors measured.</summary>
    public required int Tensors { get; init; }

    /// <summary>Values of every measured tensor over every validation sample.</summary>
    public required long Elements { get; init; }

    public required long Clipped { get; init; }

    /// <summary>Clipped / elements over everything, in %.</summary>
    public double Share => Elements == 0 ? 0 : 100.0 * Clipped / Elements;

    /// <summary>The tensors that clip anything, most clipped share first (at most <see cref="CalibrationCoverage.ReportedTensors"/>).</summary>
    public required IReadOnlyList<TensorCoverage> WorstTensors { get; init; }

    /// <summary>The validation samples that clip most, worst first (at most 3 with any clipping).</summary>
    public required IReadOnlyList<SampleCoverage> WorstSamples { get; init; }

    /// <summary>Time the measurement took (one FP32 run per validation sample), seconds.</summary>
    public double Seconds { get; init; }

    /// <summary>Tensors that clip at least <see cref="CalibrationCoverage.MinClipped"/> values, most clipped share first.</summary>
    [JsonIgnore]
    public IEnumerable<TensorCoverage> Significant => WorstTensors.Where(t => t.Clipped >= CalibrationCoverage.MinClipped);

    /// <summary>Tensors clipping more than <see cref="CalibrationCoverage.TensorThreshold"/> % of their values.</summary>
    [JsonIgnore]
    public IEnumerable<TensorCoverage> Exceeding => Significant.Where(t => t.Share > CalibrationCoverage.TensorThreshold);

    /// <summary>The calibration set does not represent the validation data (warning QNT2404).</summary>
    public bool Poor => Exceeding.Any() || Share > CalibrationCoverage.OverallThreshold;
}

/// <summary>
/// Calibration coverage: for every quantized activation, the share of its validation values that lie
/// outside the grid the engine actually used (the calibrated range after equalization, as the planner
/// turned it into scale and zero point), i.e. the values the INT8 model clips. Measured inside ORT on
/// the FP32 prepared model, like <see cref="MinMaxCalibrator"/>: per tensor a Less/Greater against the
/// grid's ends, Or, Cast to int64 and ReduceSum, plus Size for the element count, all scalar outputs, so
/// memory is that of one inference whatever the tensor sizes. A value within half a step beyond an end
/// rounds onto the grid's last level and is not counted (that is rounding, not clipping).
/// </summary>
public static class CalibrationCoverage
{
    /// <summary>
    /// Per-tensor warning threshold, % of values clipped. On data like the calibration data, MinMax
    /// ranges are exceeded only by a sample's new extremes: well under 0.1 % of the values (0 % on the
    /// test nets and the corpus when validating on unseen samples of the same kind). A clipped value's
    /// error is not bounded by the step, so 1 % of values clipped already costs more than the rounding
    /// of the other 99 % whenever they overshoot by more than a few steps; it means the range is wrong.
    /// </summary>
    public const double TensorThreshold = 1.0;

    /// <summary>
    /// A tensor also needs this many clipped values to warn: on a small tensor (a [1, 5] head) one new extreme
    /// in a validation sample is already 20 % of its values, which is sampling noise, not a wrong range. A
    /// validation sample from the calibration distribution holds a new extreme with probability about
    /// 2 / (calibration samples + 1), and an extreme is a handful of values; 100 values are not.
    /// </summary>
    public const long MinClipped = 100;

    /// <summary>Overall warning threshold, % of all measured values: a mild but widespread shift.</summary>
    public const double OverallThreshold = 0.1;

    /// <summary>Tensors listed in the report (worst first); the message names the worst 3.</summary>
    public const int ReportedTensors = 20;

    /// <summary>
    /// Measures every tensor of <paramref name="grids"/> on every validation sample; null when ORT cannot run the augmented model.
    /// <paramref name="saturation"/>: per tensor, where all its consumers saturate; a grid cut at such a bound clips nothing that matters there.
    /// </summary>
    internal static CoverageReport? Measure(
        ModelProto fp32Prepared, IReadOnlyDictionary<string, QuantParams> grids, IReadOnlyList<string> inputNames, SampleSet validation,
        CancellationToken cancellation = default, IReadOnlyDictionary<string, (double Low, double High)>? saturation = null)
    {
        var timer = Stopwatch.StartNew();
        var (augmented, outputs) = Augment(fp32Prepared, grids, saturation);
        if (outputs.Count == 0)
        {
            return null;
        }

        var elements = new long[outputs.Count];
        var clipped = new long[outputs.Count];
        var samples = new List<SampleCoverage>();
        try
        {
            using var options = new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL, EnableMemoryPattern = false };
            using var session = OrtSessions.Create(augmented.ToByteArray(), options);
            using var runOptions = new RunOptions();
            var names = outputs.SelectMany(o => new[] { o.ClippedOutput, o.SizeOutput }).ToArray();
            using var feeds = new CalibrationFeeds(validation, inputNames);
            for (var s = 0; s < validation.Count; s++)
            {
                cancellation.ThrowIfCancellationRequested();
                var source = feeds.Load(s);
                using var results = session.Run(runOptions, feeds.Values, names);
                long sampleElements = 0, sampleClipped = 0;
                for (var i = 0; i < outputs.Count; i++)
                {
                    var c = results[2 * i].GetTensorDataAsSpan<long>()[0];
                    var n = results[(2 * i) + 1].GetTensorDataAsSpan<long>()[0];
                    clipped[i] += c;
                    elements[i] += n;
                    sampleClipped += c;
                    sampleElements += n;
                }

                samples.Add(new SampleCoverage(Path.GetFileName(Path.TrimEndingDirectorySeparator(source)), sampleElements == 0 ? 0 : 100.0 * sampleClipped / sampleElements));
            }
        }
        catch (OnnxRuntimeException)
        {
            // Coverage is a diagnosis: a model ORT will not run with the extra outputs still gets its verdict.
            return null;
        }

        var tensors = outputs.Select((o, i) => new TensorCoverage(o.Tensor, o.Low, o.High, elements[i], clipped[i], elements[i] == 0 ? 0 : 100.0 * clipped[i] / elements[i])).ToList();
        return new CoverageReport
        {
            Tensors = tensors.Count,
            Elements = elements.Sum(),
            Clipped = clipped.Sum(),
            WorstTensors = [.. tensors.Where(t => t.Clipped > 0).OrderByDescending(t => t.Share).ThenBy(t => t.Tensor, StringComparer.Ordinal).Take(ReportedTensors)],
            Seconds = timer.Elapsed.TotalSeconds,
            WorstSamples = [.. samples.Where(s => s.Share > 0).OrderByDescending(s => s.Share).ThenBy(s => s.Sample, StringComparer.Ordinal).Take(3)],
        };
    }

    /// <summary>The QNT2404 message.</summary>
    internal static string WarningMessage(CoverageReport coverage, string validationFolder)
    {
        var c = System.Globalization.CultureInfo.InvariantCulture;
        var exceeding = coverage.Exceeding.ToList();
        var shown = (exceeding.Count > 0 ? exceeding : coverage.WorstTensors).Take(3).ToList();
        var tensors = string.Join(", ", shown.Select(t => string.Format(c, "'{0}' {1:0.##} % (grid [{2:G4}, {3:G4}])", t.Tensor, t.Share, t.Low, t.High)));
        var more = exceeding.Count > shown.Count ? string.Format(c, " and {0} more", exceeding.Count - shown.Count) : "";
        var samples = coverage.WorstSamples.Count == 0 ? "" :
            string.Format(c, " like validation sample(s) {0}", string.Join(", ", coverage.WorstSamples.Select(s => string.Format(c, "'{0}' ({1:0.###} % clipped)", s.Sample, s.Share))));
        return string.Format(c,
            "Calibration does not cover the validation data: {0:0.###} % of the quantized activation values of the validation samples in '{1}' fall outside the calibrated ranges and are clipped by the INT8 grid " +
            "(warning above {2} % of a tensor's values, at least {7} of them, or {3} % overall); most clipped: {4}{5}. The calibration set does not represent the validation data: add calibration samples{6}.",
            coverage.Share, validationFolder, TensorThreshold, OverallThreshold, tensors, more, samples, MinClipped);
    }

    private sealed record CoverageOutputs(string Tensor, double Low, double High, string ClippedOutput, string SizeOutput);

    private static (ModelProto Model, List<CoverageOutputs> Outputs) Augment(
        ModelProto model, IReadOnlyDictionary<string, QuantParams> grids, IReadOnlyDictionary<string, (double Low, double High)>? saturation)
    {
        var augmented = model.Clone();
        var graph = augmented.Graph;
        var available = graph.Node.SelectMany(n => n.Output).Concat(graph.Input.Select(i => i.Name)).ToHashSet(StringComparer.Ordinal);
        available.ExceptWith(graph.Initializer.Select(t => t.Name));
        var names = new NameAllocator(new GraphView(graph).AllNames());
        graph.Output.Clear();
        var outputs = new List<CoverageOutputs>();
        foreach (var (tensor, grid) in grids.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            if (!available.Contains(tensor))
            {
                continue;
            }

            var (low, high) = grid.RepresentableRange;
            var half = grid.Scale / 2;
            if (saturation is not null && saturation.TryGetValue(tensor, out var flat))
            {
                // Values beyond where every consumer saturates give the same output clipped or not.
                low = low - half <= flat.Low ? float.NegativeInfinity : low;
                high = high + half >= flat.High ? float.PositiveInfinity : high;
            }

            var lowName = names.Next(tensor + "_CoverageLow");
            var highName = names.Next(tensor + "_CoverageHigh");
            graph.Initializer.Add(Scalar(lowName, low - half));
            graph.Initializer.Add(Scalar(highName, high + half));
            var below = names.Next(tensor + "_Below");
            var above = names.Next(tensor + "_Above");
            var outside = names.Next(tensor + "_Outside");
            var counted = names.Next(tensor + "_OutsideInt64");
            var clipped = names.Next(tensor + "_Clipped");
            var size = names.Next(tensor + "_Size");
            var cast = new NodeProto { OpType = "Cast", Name = names.Next(counted), Input = { outside }, Output = { counted } };
            cast.SetInt("to", (long)TensorProto.Types.DataType.Int64);
            var sum = new NodeProto { OpType = "ReduceSum", Name = names.Next(clipped), Input = { counted }, Output = { clipped } };
            sum.SetInt("keepdims", 0);
            graph.Node.Add(new NodeProto { OpType = "Less", Name = names.Next(below), Input = { tensor, lowName }, Output = { below } });
            graph.Node.Add(new NodeProto { OpType = "Greater", Name = names.Next(above), Input = { tensor, highName }, Output = { above } });
            graph.Node.Add(new NodeProto { OpType = "Or", Name = names.Next(outside), Input = { below, above }, Output = { outside } });
            graph.Node.Add(cast);
            graph.Node.Add(sum);
            graph.Node.Add(new NodeProto { OpType = "Size", Name = names.Next(size), Input = { tensor }, Output = { size } });
            graph.Output.Add(new ValueInfoProto { Name = clipped });
            graph.Output.Add(new ValueInfoProto { Name = size });
            outputs.Add(new CoverageOutputs(tensor, low, high, clipped, size));
        }

        return (augmented, outputs);
    }

    private static TensorProto Scalar(string name, float value)
    {
        var t = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Float };
        t.FloatData.Add(value);
        return t;
    }
}
