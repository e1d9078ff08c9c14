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
public sealed record TensorCoverage(string Tensor, double Low, double High, long Elements, long Clipped, double Share)
{
    /// <summary>Values other than exactly zero (a Relu's zeros say nothing about its tail).</summary>
    public long NonZero { get; init; }

    /// <summary>Values more than <see cref="CalibrationCoverage.BulkLevels"/> steps from zero.</summary>
    public long Wide { get; init; }

    /// <summary>
    /// The grid is set by rare outliers: at least <see cref="CalibrationCoverage.MinNonZero"/> non-zero values, of which
    /// under <see cref="CalibrationCoverage.OutlierShare"/> % reach beyond <see cref="CalibrationCoverage.BulkLevels"/> steps
    /// from zero, so almost every value is carried by a few of the 256 levels.
    /// </summary>
    [JsonIgnore]
    public bool OutlierDominated => NonZero >= CalibrationCoverage.MinNonZero && 100.0 * Wide / NonZero < CalibrationCoverage.OutlierShare;
}

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

    /// <summary>Tensors whose grids rare outliers set (<see cref="TensorCoverage.OutlierDominated"/>), widest grid first (at most <see cref="CalibrationCoverage.ReportedTensors"/>).</summary>
    public IReadOnlyList<TensorCoverage> OutlierGrids { get; init; } = [];

    /// <summary>How many tensors' grids rare outliers set, listed or not.</summary>
    public int OutlierGridCount { get; init; }

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

    /// <summary>Steps from zero that hold a tensor's bulk: 16 of a uint8 grid's 256 levels (4 bits of 8).</summary>
    public const int BulkLevels = 16;

    /// <summary>
    /// % of a tensor's non-zero values beyond <see cref="BulkLevels"/> under which rare outliers set its grid. ISNet's decoder
    /// activations under MinMax: maxima of 40–95 next to bulks under 5, output SQNR 12.6 dB; percentile calibration, which
    /// cuts such tails, gave 28.7 dB [vnni].
    /// </summary>
    public const double OutlierShare = 0.1;

    /// <summary>Non-zero values a tensor needs before its grid is judged (a few values say nothing about a tail).</summary>
    public const long MinNonZero = 10_000;

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
        var nonZero = new long[outputs.Count];
        var wide = new long[outputs.Count];
        var samples = new List<SampleCoverage>();
        try
        {
            using var options = new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL, EnableMemoryPattern = false };
            using var session = OrtSessions.Create(augmented.ToByteArray(), options);
            using var runOptions = new RunOptions();
            var names = outputs.SelectMany(o => new[] { o.ClippedOutput, o.SizeOutput, o.NonZeroOutput, o.WideOutput }).ToArray();
            using var feeds = new CalibrationFeeds(validation, inputNames);
            for (var s = 0; s < validation.Count; s++)
            {
                cancellation.ThrowIfCancellationRequested();
                var source = feeds.Load(s);
                using var results = session.Run(runOptions, feeds.Values, names);
                long sampleElements = 0, sampleClipped = 0;
                for (var i = 0; i < outputs.Count; i++)
                {
                    var c = results[4 * i].GetTensorDataAsSpan<long>()[0];
                    var n = results[(4 * i) + 1].GetTensorDataAsSpan<long>()[0];
                    nonZero[i] += results[(4 * i) + 2].GetTensorDataAsSpan<long>()[0];
                    wide[i] += results[(4 * i) + 3].GetTensorDataAsSpan<long>()[0];
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

        var tensors = outputs.Select((o, i) => new TensorCoverage(o.Tensor, o.Low, o.High, elements[i], clipped[i], elements[i] == 0 ? 0 : 100.0 * clipped[i] / elements[i])
        {
            NonZero = nonZero[i],
            Wide = wide[i],
        }).ToList();
        var outliers = tensors.Where(t => t.OutlierDominated).OrderByDescending(t => t.High - t.Low).ThenBy(t => t.Tensor, StringComparer.Ordinal).ToList();
        return new CoverageReport
        {
            Tensors = tensors.Count,
            Elements = elements.Sum(),
            Clipped = clipped.Sum(),
            WorstTensors = [.. tensors.Where(t => t.Clipped > 0).OrderByDescending(t => t.Share).ThenBy(t => t.Tensor, StringComparer.Ordinal).Take(ReportedTensors)],
            OutlierGrids = [.. outliers.Take(ReportedTensors)],
            OutlierGridCount = outliers.Count,
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

    /// <summary>The failure message's diagnosis when rare outliers set grids; null when none does.</summary>
    internal static string? OutlierMessage(CoverageReport coverage)
    {
        if (coverage.OutlierGridCount == 0)
        {
            return null;
        }

        var c = System.Globalization.CultureInfo.InvariantCulture;
        var widest = string.Join(", ", coverage.OutlierGrids.Take(3).Select(t => string.Format(c, "'{0}' (grid [{1:G4}, {2:G4}], {3:0.###} % of its values beyond {4} steps)",
            t.Tensor, t.Low, t.High, t.NonZero == 0 ? 0 : 100.0 * t.Wide / t.NonZero, BulkLevels)));
        return string.Format(c,
            "Rare outliers set the grids of {0} quantized activation(s): under {1} % of their validation values reach beyond {2} of the 256 levels from zero, so the rest share a few levels; widest: {3}. " +
            "A calibration method that cuts such tails usually fixes this: set QuantizeCalibrationMethod=\"percentile\" (or \"mse\") on the model (--calibration-method percentile; " +
            "a lower QuantizeCalibrationPercentile, e.g. 99.99, cuts harder), or QuantizeTune=\"true\" (--tune) to search.",
            coverage.OutlierGridCount, OutlierShare, BulkLevels, widest);
    }

    private sealed record CoverageOutputs(string Tensor, double Low, double High, string ClippedOutput, string SizeOutput, string NonZeroOutput, string WideOutput);

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

            // How the values spread over the grid: non-zero, and beyond BulkLevels steps from zero (wide).
            var magnitude = names.Next(tensor + "_Abs");
            graph.Node.Add(new NodeProto { OpType = "Abs", Name = names.Next(magnitude), Input = { tensor }, Output = { magnitude } });
            var nonZero = CountAbove(graph, names, magnitude, tensor + "_NonZero", 0);
            var wide = CountAbove(graph, names, magnitude, tensor + "_Wide", grid.Scale * BulkLevels);
            outputs.Add(new CoverageOutputs(tensor, low, high, clipped, size, nonZero, wide));
        }

        return (augmented, outputs);
    }

    /// <summary>Adds Greater → Cast → ReduceSum counting the values of <paramref name="magnitude"/> above <paramref name="threshold"/>; returns the scalar output.</summary>
    private static string CountAbove(GraphProto graph, NameAllocator names, string magnitude, string stem, float threshold)
    {
        var thresholdName = names.Next(stem + "Threshold");
        graph.Initializer.Add(Scalar(thresholdName, threshold));
        var above = names.Next(stem + "Above");
        var counted = names.Next(stem + "Int64");
        var count = names.Next(stem);
        graph.Node.Add(new NodeProto { OpType = "Greater", Name = names.Next(above), Input = { magnitude, thresholdName }, Output = { above } });
        var cast = new NodeProto { OpType = "Cast", Name = names.Next(counted), Input = { above }, Output = { counted } };
        cast.SetInt("to", (long)TensorProto.Types.DataType.Int64);
        graph.Node.Add(cast);
        var sum = new NodeProto { OpType = "ReduceSum", Name = names.Next(count), Input = { counted }, Output = { count } };
        sum.SetInt("keepdims", 0);
        graph.Node.Add(sum);
        graph.Output.Add(new ValueInfoProto { Name = count });
        return count;
    }

    private static TensorProto Scalar(string name, float value)
    {
        var t = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Float };
        t.FloatData.Add(value);
        return t;
    }
}
