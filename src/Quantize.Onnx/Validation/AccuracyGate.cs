using System.Globalization;
using System.Text;
using Quantize.Onnx.Model.Proto;
using Quantize.Onnx.Reporting;
using Quantize.Onnx.Samples;

namespace Quantize.Onnx.Validation;

/// <summary>
/// The accuracy gate: runs FP32 and INT8 on the validation samples, computes the fidelity metrics of
/// every float output and, where samples carry ground truth, the task metrics of both models, then
/// checks them (<see cref="AccuracyCheck"/>). When a check fails it finds the most damaging layers
/// (<see cref="LayerSensitivity"/>) and words the error.
/// </summary>
public static class AccuracyGate
{
    /// <summary>Measures and checks; throws <see cref="ErrorCodes.InvalidOption"/> for a check that does not apply to this model.</summary>
    internal static ValidationReport Evaluate(
        byte[] fp32, byte[] int8, IReadOnlyList<string> inputNames, SampleSet validation, IReadOnlyList<AccuracyCheck> checks, bool sameAsCalibration,
        CancellationToken cancellation = default, HtmlReportSamples? images = null, double binaryThreshold = 0.5,
        IReadOnlyList<Dictionary<string, FloatOutput>>? fp32Outputs = null, Hardware.Int8Arithmetic arithmetic = Hardware.Int8Arithmetic.Native)
    {
        var topK = TopK.Requested(checks);
        var classNames = ExpectedOutputs.ReadClassNames(validation.Folder);
        var fidelity = new Dictionary<string, FidelityMetrics>(StringComparer.Ordinal);
        var task = new Dictionary<string, (TaskMetrics Fp32, TaskMetrics Int8)>(StringComparer.Ordinal);
        var shapes = new Dictionary<string, long[]>(StringComparer.Ordinal);
        List<string> outputs;
        // FP32 outputs given (computed once for several INT8 candidates) spare the FP32 runs.
        using (var a = fp32Outputs is null ? new ModelRunner(fp32, inputNames) : null)
        using (var b = new ModelRunner(int8, inputNames, arithmetic))
        {
            outputs = [.. a?.FloatOutputs ?? b.FloatOutputs];
            for (var s = 0; s < validation.Count; s++)
            {
                cancellation.ThrowIfCancellationRequested();
                var sample = validation.ReadSample(s);
                var ra = fp32Outputs?[s] ?? a!.Run(sample);
                var rb = b.Run(sample);
                var firstClassifier = outputs.FirstOrDefault(o => ClassAxis(ra[o].Shape) >= 2);
                foreach (var name in outputs)
                {
                    var (fa, fb) = (ra[name], rb[name]);
                    shapes[name] = fa.Shape;
                    images?.Offer(HtmlReportSamples.SampleName(sample.Source), name, fa.Shape, fa.Values, fb.Values);
                    var lastAxis = ClassAxis(fa.Shape);
                    if (!fidelity.TryGetValue(name, out var f))
                    {
                        fidelity[name] = f = new FidelityMetrics(topK);
                    }

                    f.Add(fa.Values, fb.Values, lastAxis);
                    // Files in the sample's expected/ folder (or label.txt) first, then what the layout says (class folder, expected image).
                    if ((ExpectedOutputs.Read(sample.Source, name, fa.Shape, name == firstClassifier, classNames) ?? sample.GroundTruth?.For(name, fa.Shape)) is { } expected)
                    {
                        if (!task.TryGetValue(name, out var t))
                        {
                            task[name] = t = (new TaskMetrics(topK, binaryThreshold), new TaskMetrics(topK, binaryThreshold));
                        }

                        t.Fp32.Add(fa.Values, expected.Values, lastAxis, expected.Labels);
                        t.Int8.Add(fb.Values, expected.Values, lastAxis, expected.Labels);
                    }
                }
            }
        }

        var metrics = new List<MetricResult>();
        foreach (var name in outputs)
        {
            var f = fidelity[name];
            var fidelityIntervals = Intervals(f.Samples, idx => f.Values(idx));
            metrics.AddRange(f.Values().Select(kv => new MetricResult(name, kv.Key, "fidelity", null, kv.Value, null, f.Samples, AccuracyCheck.Unit(kv.Key))
            {
                Int8Interval = fidelityIntervals.GetValueOrDefault(kv.Key),
            }));
            if (task.TryGetValue(name, out var t))
            {
                var fp32Values = t.Fp32.Values();
                // FP32 and INT8 are resampled in pairs (same samples), so the drop's interval is that of the paired difference.
                var fp32Intervals = Intervals(t.Fp32.Samples, idx => t.Fp32.Values(idx));
                var int8Intervals = Intervals(t.Int8.Samples, idx => t.Int8.Values(idx));
                var dropIntervals = Intervals(t.Int8.Samples, idx =>
                {
                    var a = t.Fp32.Values(idx);
                    return t.Int8.Values(idx).ToDictionary(kv => kv.Key, kv => Drop(kv.Key, a[kv.Key], kv.Value));
                });
                metrics.AddRange(t.Int8.Values().Select(kv => new MetricResult(name, kv.Key, "task", fp32Values[kv.Key], kv.Value,
                    Drop(kv.Key, fp32Values[kv.Key], kv.Value), t.Int8.Samples, AccuracyCheck.Unit(kv.Key))
                {
                    Fp32Interval = fp32Intervals.GetValueOrDefault(kv.Key),
                    Int8Interval = int8Intervals.GetValueOrDefault(kv.Key),
                    DropInterval = dropIntervals.GetValueOrDefault(kv.Key),
                }));
            }
        }

        if (checks.Count == 0 && outputs.Count > 0)
        {
            var shape = shapes[outputs[0]];
            checks = AccuracyCheck.Defaults(shape.Length == 2 && shape[1] >= 2);
        }

        var results = checks.Select(c => Check(c, outputs, metrics)).ToList();
        return new ValidationReport
        {
            Folder = validation.Folder,
            Samples = validation.Count,
            SameAsCalibration = sameAsCalibration,
            Metrics = metrics,
            Checks = results,
            WorstLayers = [],
            LayerSamples = 0,
        };
    }

    /// <summary>Classes along the last axis of [K], [N, K] or [N, T, K] outputs; image-like rank-4 outputs have none (1).</summary>
    private static int ClassAxis(long[] shape) => shape.Length is 0 or > 3 ? 1 : (int)shape[^1];

    /// <summary>Adds the per-layer SQNR (worst first) to a report.</summary>
    internal static ValidationReport WithLayers(
        ValidationReport report, ModelProto fp32Prepared, ModelProto int8, IReadOnlySet<string> quantizedNodes, IReadOnlyList<string> inputNames,
        SampleSet validation, ValidationOptions options)
    {
        var samples = validation.ReadSpread(options.LayerSamples);
        try
        {
            var layers = LayerSensitivity.Analyze(fp32Prepared, int8, quantizedNodes, inputNames, samples, options.LayerBudgetBytes);
            return report with { WorstLayers = layers, LayerSamples = samples.Count };
        }
        catch (Microsoft.ML.OnnxRuntime.OnnxRuntimeException)
        {
            // The layer list is a diagnosis; a model ORT will not run with extra outputs still gets its verdict.
            return report;
        }
    }

    /// <summary>The 95 % bootstrap interval of every metric <paramref name="values"/> computes, over resamples of <paramref name="samples"/> samples.</summary>
    internal static Dictionary<string, ConfidenceInterval?> Intervals(int samples, Func<IReadOnlyList<int>, IReadOnlyDictionary<string, double>> values)
    {
        var draws = new Dictionary<string, List<double>>(StringComparer.Ordinal);
        Bootstrap.Resample(samples, indices =>
        {
            foreach (var (metric, value) in values(indices))
            {
                if (!draws.TryGetValue(metric, out var list))
                {
                    draws[metric] = list = new List<double>(Bootstrap.Resamples);
                }

                list.Add(value);
            }
        });
        return draws.ToDictionary(kv => kv.Key, kv => Bootstrap.Percentile(kv.Value), StringComparer.Ordinal);
    }

    /// <summary>How much worse INT8 is than FP32, in the metric's unit (positive = worse).</summary>
    public static double Drop(string metric, double fp32, double int8) => AccuracyCheck.HigherIsBetter(metric) ? fp32 - int8 : int8 - fp32;

    private static CheckResult Check(AccuracyCheck check, IReadOnlyList<string> outputs, List<MetricResult> metrics)
    {
        var output = check.Output ?? outputs.FirstOrDefault()
            ?? throw new QuantizeException(ErrorCodes.InvalidOption, null, $"Accuracy check '{check.Spec}' cannot apply: the model has no float output.");
        if (!outputs.Contains(output, StringComparer.Ordinal))
        {
            throw new QuantizeException(ErrorCodes.InvalidOption, null,
                $"Accuracy check '{check.Spec}' names output '{output}', but the model's float outputs are: {string.Join(", ", outputs)}.");
        }

        var task = metrics.FirstOrDefault(m => m.Output == output && m.Kind == "task" && m.Metric == check.Metric);
        var fidelity = metrics.FirstOrDefault(m => m.Output == output && m.Kind == "fidelity" && m.Metric == check.Metric);
        var needsTruth = check.IsDrop || !AccuracyCheck.IsFidelityMetric(check.Metric);
        var metric = needsTruth || task is not null ? task : fidelity;
        if (metric is null)
        {
            var why = needsTruth && !metrics.Any(m => m.Output == output && m.Kind == "task")
                ? $"it needs ground truth, and no validation sample has expected/{SampleSet.SafeFileName(output)}.npy (or .pb)"
                : $"'{check.Metric}' does not apply to output '{output}' (top-1 metrics need a class axis: the last axis of a rank-1 to rank-3 output, with at least 2 classes; top-k needs more than k classes; class-label ground truth supports only top-k)";
            throw new QuantizeException(ErrorCodes.InvalidOption, null, $"Accuracy check '{check.Spec}' cannot be evaluated: {why}.");
        }

        var value = check.IsDrop ? metric.Drop!.Value : metric.Int8;
        var passed = check.AtLeast ? value >= check.Threshold : value <= check.Threshold;
        return new CheckResult(check.Spec, check.Metric, output, check.IsDrop, metric.Fp32, metric.Int8, value,
            check.AtLeast ? ">=" : "<=", check.Threshold, passed && !double.IsNaN(value), metric.Unit)
        {
            Interval = check.IsDrop ? metric.DropInterval : metric.Int8Interval,
        };
    }

    /// <summary>The QNT1401/QNT2401 message: every failing check with its values, then the worst layers and the setting that keeps them float.</summary>
    public static string FailureMessage(string modelPath, ValidationReport report, IReadOnlySet<string> alreadyExcluded, int worstCount)
    {
        var c = CultureInfo.InvariantCulture;
        var text = new StringBuilder();
        var failed = report.Checks.Where(x => !x.Passed).ToList();
        text.Append(c, $"{Path.GetFileName(modelPath)}: {failed.Count} accuracy check(s) failed on {report.Samples} validation sample(s) from '{report.Folder}': ");
        text.Append(string.Join("; ", failed.Select(Describe)));

        var passed = report.Checks.Where(x => x.Passed).ToList();
        if (passed.Count > 0)
        {
            text.Append(c, $" (passed: {string.Join(", ", passed.Select(x => x.Check))})");
        }

        text.Append('.');
        var noisy = failed.Where(x => x.WithinNoise).ToList();
        if (noisy.Count > 0)
        {
            text.Append(c, $" The verdict of {string.Join(", ", noisy.Select(x => $"'{x.Check}'"))} is within noise: the threshold lies inside the 95 % bootstrap interval of the value over these {report.Samples} sample(s), so more validation samples (add them to '{report.Folder}') would tell whether it really fails.");
        }
        if (report.Coverage is { Poor: true } coverage)
        {
            // Clipping is the likeliest cause; the warning would be lost behind the error, so say it here.
            text.Append(c, $" {CalibrationCoverage.WarningMessage(coverage, report.Folder)} (QNT2404)");
        }

        if (report.Coverage is { } grids && CalibrationCoverage.OutlierMessage(grids) is { } outliers)
        {
            text.Append(' ').Append(outliers);
        }

        var worst = report.WorstLayers.Take(worstCount).ToList();
        if (worst.Count > 0)
        {
            text.Append(c, $" Most damaging layers (per-layer SQNR INT8 vs FP32 on {report.LayerSamples} sample(s)): ");
            text.Append(string.Join(", ", worst.Select(l => string.Format(c, "{0} ({1}, SQNR {2:F1} dB, {3:F1} dB lost in this layer)", l.Node, l.OpType, l.SqnrDb, l.LossDb))));
            var exclude = string.Join(";", alreadyExcluded.Order(StringComparer.Ordinal).Concat(worst.Select(l => l.Node).Where(n => !alreadyExcluded.Contains(n))));
            text.Append(c, $". To keep them in float, set QuantizeExcludeNodes=\"{exclude}\" on the model (or --exclude-nodes \"{exclude}\").");
        }

        return text.ToString();
    }

    private static string Describe(CheckResult r)
    {
        var c = CultureInfo.InvariantCulture;
        var n = CheckResult.Number;
        var bound = r.Comparison == ">=" ? "<" : ">";
        var ci = r.Interval is { } i ? string.Format(c, " (95 % bootstrap interval of the {0}: {1}{2})", r.IsDrop ? "drop" : "value", i, r.Unit) : "";
        return r.IsDrop
            ? string.Format(c, "check '{0}' on output '{1}': FP32 {2}{5}, INT8 {3}{5}, drop {4}{5} {6} threshold {7}{5}: failed{8}",
                r.Check, r.Output, n(r.Fp32!.Value), n(r.Int8), n(r.Value), r.Unit, bound, n(r.Threshold), ci)
            : r.Fp32 is double f
                ? string.Format(c, "check '{0}' on output '{1}': FP32 {2}{4}, INT8 {3}{4} {5} threshold {6}{4}: failed{7}",
                    r.Check, r.Output, n(f), n(r.Int8), r.Unit, bound, n(r.Threshold), ci)
                : string.Format(c, "check '{0}' on output '{1}': INT8 vs FP32 {2}{3} {4} threshold {5}{3}: failed{6}",
                    r.Check, r.Output, n(r.Int8), r.Unit, bound, n(r.Threshold), ci);
    }
}
