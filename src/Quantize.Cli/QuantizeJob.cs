using System.Globalization;
using Quantize.Common;
using Quantize.Onnx;
using Quantize.Onnx.Model;
using Quantize.Onnx.Reporting;
using Quantize.Onnx.Validation;

namespace Quantize.Cli;

/// <summary>
/// Runs one quantization and speaks the worker protocol the MSBuild task reads (<see cref="WorkerProtocol"/>): progress
/// and one summary line on stdout; diagnostics on stderr in canonical MSBuild form (<c>file: error QNT1101: message</c>);
/// exit code 0 (done), 1 (user error, reported), 2 (bug).
/// </summary>
internal sealed class QuantizeJob(string model, string? calibration, string output, string? report, QuantizationOptions options, string? htmlReport = null)
{
    public int Run(TextWriter stdout, TextWriter stderr, CancellationToken cancellation)
    {
        try
        {
            // Every path this run writes is checked before calibration: a bad one must not cost the run, or the source model.
            OutputLocations.Check(model, [calibration, options.Validation?.Folder], PlannedOutputs());
            var progress = new ProgressPrinter(stdout, Console.IsOutputRedirected);
            var result = new Quantizer(options).Run(model, calibration, output, progress.Report, cancellation);
            progress.Finish();
            foreach (var warning in result.Warnings)
            {
                stderr.WriteLine(WorkerProtocol.Diagnostic(warning.File ?? model, isError: false, warning.Code, warning.Message));
            }

            stdout.WriteLine(WorkerProtocol.SummaryPrefix + Summarize(result) + WriteReports(result));
            return 0;
        }
        catch (QuantizeException e)
        {
            // A failed gate (QNT1401/QNT1402) still writes its reports: they show what got worse.
            var written = "";
            try
            {
                written = e.Result is { } failed ? WriteReports(failed) : "";
            }
            catch (QuantizeException reportError)
            {
                stderr.WriteLine(WorkerProtocol.Diagnostic(reportError.File ?? model, isError: true, reportError.Code, reportError.Message));
            }

            stderr.WriteLine(WorkerProtocol.Diagnostic(e.File ?? model, isError: true, e.Code, e.Message + written));
            return 1;
        }
        catch (OperationCanceledException)
        {
            stderr.WriteLine(WorkerProtocol.Diagnostic(model, isError: true, ErrorCodes.InternalError, "Quantization was cancelled."));
            return 1;
        }
        catch (Exception e)
        {
            stderr.WriteLine(WorkerProtocol.Diagnostic(model, isError: true, ErrorCodes.InternalError, $"Internal error in the quantizer; please report it with the model if you can. {e}"));
            return 2;
        }
    }

    private List<PlannedOutput> PlannedOutputs()
    {
        var planned = new List<PlannedOutput> { new(output, "the output model") };
        if (report is not null)
        {
            planned.Add(new(report, "the JSON report"));
        }

        if (htmlReport is not null)
        {
            planned.Add(new(htmlReport, "the HTML report"));
        }

        if (options.Tuning is { LockFile: { } lockFile, Locked: false } tuning && (tuning.Record || tuning.Enabled))
        {
            planned.Add(new(lockFile, "the lock file"));
        }

        return planned;
    }

    /// <summary>Writes the JSON and HTML reports asked for; returns " (report: &lt;html&gt;)" when the HTML report was written.</summary>
    private string WriteReports(QuantizeResult result)
    {
        if (report is not null)
        {
            ReportWriter.Write(result, report);
        }

        if (htmlReport is null)
        {
            return "";
        }

        HtmlReport.Write(result, htmlReport);
        return $" (report: {htmlReport})";
    }

    /// <summary>The summary line: what shipped, its figures, and which targets and machine they hold for.</summary>
    internal static string Summarize(QuantizeResult r) => Outcome(r) + Hardware(r);

    private static string Outcome(QuantizeResult r)
    {
        var c = CultureInfo.InvariantCulture;
        var name = Path.GetFileName(r.ModelPath);
        var fidelity = r.Fidelity.Count == 0 ? "" : string.Format(c, ", SQNR {0:F1} dB vs FP32 on {1} sample(s)", r.Fidelity.Min(f => f.SqnrDb), r.FidelitySamples);
        if (r.Validation is { } v)
        {
            fidelity += string.Format(c, ", {0} validation sample(s): {1}", v.Samples, string.Join(", ", v.Checks.Select(x => x.Describe())));
            if (v.Coverage is { } coverage)
            {
                // Calibration coverage: the share of validation activations the INT8 grids clip, and the worst tensors
                // (among those clipping enough values to matter: one new extreme in a 32-value tensor is already 3 %).
                var worst = string.Join(", ", coverage.Significant.Take(2).Select(t => string.Format(c, "{0} {1:0.####} %", t.Tensor, t.Share)));
                fidelity += string.Format(c, ", {0:0.####} % of activations clipped{1}", coverage.Share, worst.Length == 0 ? "" : $" (worst: {worst})");
            }
        }

        fidelity += Tuning(r);
        if (r.Output == OutputKind.Unchanged)
        {
            var why = r.Warnings.Any(w => w.Code == ErrorCodes.AlreadyQuantized) ? "already quantized"
                : r.Warnings.Any(w => w.Code == ErrorCodes.CannotMeasureWithoutSamples) ? "not measurable without samples" : "nothing to quantize";
            return string.Format(c, "{0}: written unchanged ({1}, {2}){3}", name, Megabytes(r.Fp32Bytes), why, fidelity);
        }

        if (r.Output == OutputKind.KeptFloat && r.Warnings.FirstOrDefault(w => w.Code is ErrorCodes.NoIntegerKernels or ErrorCodes.LargerThanSource) is { } guard)
        {
            return string.Format(c, "{0}: kept FP32 ({1}{4}) because {2}{3}", name, Megabytes(r.Fp32Bytes),
                guard.Code == ErrorCodes.NoIntegerKernels ? "ONNX Runtime runs none of the quantized nodes on integer kernels" : $"INT8 would be larger ({Megabytes(r.Int8Bytes)})", fidelity, KeptUInt8(r));
        }

        if (r.Output == OutputKind.KeptFloat)
        {
            return string.Format(c, "{0}: kept FP32 ({1}{5}) because INT8 was not faster ({2:F2} ms vs {3:F2} ms){4}",
                name, Megabytes(r.Fp32Bytes), r.Latency.Int8Milliseconds, r.Latency.Fp32Milliseconds, fidelity, KeptUInt8(r));
        }

        if (r.Output == OutputKind.KeptFloatFailedCheck)
        {
            var why = r.Warnings.Any(w => w.Code == ErrorCodes.SpeedupTooLowShippedFp32) ? "INT8 was below the minimum speed-up"
                : r.Warnings.Any(w => w.Code == ErrorCodes.FidelityTooLowShippedFp32) ? string.Format(c, "INT8 outputs were below the {0} dB SQNR floor", Quantizer.FidelityFloorDb)
                : "an accuracy check failed";
            return string.Format(c, "{0}: kept FP32 ({1}{7}) because {2} (INT8 would be {3:F2} ms vs {4:F2} ms, speed-up {5:F2}x){6}",
                name, Megabytes(r.Fp32Bytes), why, r.Latency.Int8Milliseconds, r.Latency.Fp32Milliseconds, r.Latency.Speedup, fidelity, KeptUInt8(r));
        }

        var how = r.Settings.GetValueOrDefault("mode") switch
        {
            "dynamic" => "dynamic (activations quantized at run time)",
            "weight4" => string.Format(c, "weight-only 4-bit (block {0}{1}, accuracy level {2})", r.Settings.GetValueOrDefault("block-size"),
                r.Settings.GetValueOrDefault("weight4-asymmetric") == "true" ? ", asymmetric" : "", r.Settings.GetValueOrDefault("accuracy-level")),
            _ => string.Format(c, "{0} calibration samples", r.CalibrationSamples),
        };
        return string.Format(c, "{0}: {1} -> {2} ({3:F1}x smaller), latency {4:F2} -> {5:F2} ms (speed-up {6}{7}){8}, {9} integer kernels, {10}",
            name, Megabytes(r.Fp32Bytes), Megabytes(r.Int8Bytes), (double)r.Fp32Bytes / r.Int8Bytes,
            r.Latency.Fp32Milliseconds, r.Latency.Int8Milliseconds, Speed(r.Latency),
            r.Latency.Prepacked ? "" : ", measured without weight pre-packing (over 1 GiB of weights): an application's session differs",
            fidelity, r.Fusion.FusedCount, how);
    }

    /// <summary>"2.95x [2.90, 3.01] at 2 threads; 1 thread: 3.10x", and "within noise" when the interval contains 1.</summary>
    private static string Speed(LatencyComparison l)
    {
        var c = CultureInfo.InvariantCulture;
        var text = string.Format(c, "{0:F2}x", l.Speedup);
        if (l.SpeedupInterval is { } ci)
        {
            text += string.Format(c, " [{0:F2}, {1:F2}]", ci.Low, ci.High);
        }

        text += $" at {l.ThreadsText}";
        if (l.Verdict == SpeedVerdict.WithinNoise)
        {
            text += ", within noise";
        }

        return l.SingleThread is { } one ? text + string.Format(c, "; 1 thread: {0:F2}x", one.Speedup) : text;
    }

    /// <summary>Which targets the figures hold for, and the machine they ran on (the integer kernels differ by CPU class).</summary>
    private static string Hardware(QuantizeResult r)
    {
        // A shipped FP32 model runs float kernels: which CPUs its INT8 alternative suited says nothing about it.
        if (r.Targets.Count == 0 || r.Output != OutputKind.Quantized)
        {
            return $"; measured on {r.Machine.ClassLabel}";
        }

        var names = string.Join(", ", r.Targets.Select(t => t.Target));
        var validated = r.Targets.All(t => t.Validated) ? $"valid for {names}" : $"validated for {string.Join(", ", r.Targets.Where(t => t.Validated).Select(t => t.Target).DefaultIfEmpty("no target"))}, NOT for {string.Join(", ", r.Targets.Where(t => !t.Validated).Select(t => t.Target))}";
        var how = r.Int8Arithmetic == Onnx.Hardware.Int8Arithmetic.ExactReference ? " (accuracy on the exact class's reference arithmetic)"
            : r.SaturationSafeWeights ? " (saturation-safe int8 weights: the same integer results on every CPU class)" : "";
        var unmeasured = r.Targets.Where(t => !t.SpeedMeasured).Select(t => t.Target).ToList();
        var speed = unmeasured.Count == 0 ? "" : $", speed not measured on {string.Join(", ", unmeasured)}";
        return $"; {validated}{how}; measured on {r.Machine.ClassLabel}{speed}";
    }

    /// <summary>What tuning chose and why, for the summary line.</summary>
    private static string Tuning(QuantizeResult r)
    {
        var c = CultureInfo.InvariantCulture;
        var written = r.Tuning is { LockFileWritten: true, LockFile: { } path } ? $"; lock file written: {path}" : "";
        return r.Tuning switch
        {
            { Source: "lock-file" } t when r.DecidedHere.Count == 0 => string.Format(c, ", configuration, ranges and decisions from {0} ({1} float node(s))", Path.GetFileName(t.LockFile), t.FloatNodes.Count),
            { Source: "lock-file" } t => string.Format(c, ", tuned configuration from {0} ({1} float node(s))", Path.GetFileName(t.LockFile), t.FloatNodes.Count),
            { Source: "recorded" } => written.Length == 0 ? "" : ", " + written[2..],
            { Source: "not-needed" } => ", tuning not needed: the plain configuration passes" + written,
            { Succeeded: true } t => string.Format(c, ", tuned in {0} attempt(s) ({1:F0} s): {2}{3}", t.Attempts.Count, t.Elapsed.TotalSeconds, t.Why, written),
            _ => "",
        };
    }

    /// <summary>The FP32 fallback keeps the uint8 inputs/outputs the app was written for (<c>UInt8Fallback</c>): the summary says so.</summary>
    private static string KeptUInt8(QuantizeResult r) =>
        (r.Settings.GetValueOrDefault("uint8-inputs") == "true", r.Settings.GetValueOrDefault("uint8-outputs") == "true") switch
        {
            (true, true) => ", uint8 inputs and outputs kept",
            (true, false) => ", uint8 inputs kept",
            (false, true) => ", uint8 outputs kept",
            _ => "",
        };

    private static string Megabytes(long bytes) => string.Format(CultureInfo.InvariantCulture, "{0:F2} MB", bytes / 1e6);

    /// <summary>On a terminal, one line rewritten in place; redirected (MSBuild), at most ~20 lines.</summary>
    private sealed class ProgressPrinter(TextWriter stdout, bool redirected)
    {
        private int _lastBucket = -1;
        private string? _stage;
        private bool _inPlace;

        public void Report(QuantizeProgress p)
        {
            if (p.Stage is "tuning" or "measuring")
            {
                // One line per event: a tuning attempt or the final measurement can take minutes on a large model.
                Finish();
                (_stage, _lastBucket, _inPlace) = (p.Stage, -1, false);
                stdout.WriteLine(p.Stage == "tuning" ? $"Tuning: attempt {p.Done}, {p.Detail}" : "Measuring: fidelity, latency, per-layer errors");
                return;
            }

            if (p.Stage is not ("calibrating" or "reading") || p.Total == 0)
            {
                return;
            }

            if (p.Stage != _stage)
            {
                Finish();
                (_stage, _lastBucket, _inPlace) = (p.Stage, -1, false);
            }

            var text = p.Stage == "reading" ? $"Reading calibration samples: {p.Done}/{p.Total}" : $"Calibrating: {p.Done}/{p.Total} samples";
            if (!redirected)
            {
                stdout.Write("\r" + text);
                _inPlace = true;
                return;
            }

            var bucket = p.Done * 20 / p.Total;
            if (bucket != _lastBucket || p.Done == p.Total)
            {
                _lastBucket = bucket;
                stdout.WriteLine(text);
            }
        }

        public void Finish()
        {
            if (_inPlace)
            {
                stdout.WriteLine();
            }
        }
    }
}
