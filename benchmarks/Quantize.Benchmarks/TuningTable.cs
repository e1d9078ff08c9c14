using System.Globalization;
using System.Text;

namespace Quantize.Benchmarks;

/// <summary>The report section of <see cref="TuningBenchmark"/>: plain vs tuned per model, issue 6's targets, and every attempt.</summary>
internal static class TuningTable
{
    public static void Append(StringBuilder sb, IReadOnlyList<TuningComparison> comparisons, BenchSettings settings)
    {
        sb.AppendLine("## Accuracy tuning: plain vs tuned");
        sb.AppendLine();
        sb.AppendLine("Each model quantized with our defaults under its accuracy checks (**plain**), then the same with tuning on (**tuned**; " +
                      $"{(settings.TuneMaxAttempts is int n ? $"at most {n} attempts" : $"engine defaults: at most {new Quantize.Onnx.Tuning.TuningOptions().MaxAttempts} attempts")}, 10 min), then once more reusing the lock file the tuned run wrote (locked mode: no search). " +
                      "Every run is a child process (same start-up and JIT for each); times are `Quantizer.Run` wall times. " +
                      $"Speed-up: FP32 median over INT8 median, FP32 / plain / tuned{(comparisons.Any(c => c.Fp16 is not null) ? " / tuned FP16" : "")} interleaved " +
                      $"({settings.Warmup} warm-up + {settings.Runs} runs, 1 thread, on val/000); in brackets the engine's own latency gate (15 interleaved runs), which decides min-speed-up checks. " +
                      "A plain model that failed its gate was shipped as FP32; its INT8 columns describe the INT8 model it rejected. " +
                      "The machine is shared with other jobs: speed-ups and times are noisy (see the load average above).");
        sb.AppendLine();
        sb.AppendLine("| model | checks | plain: metric | plain: size | plain: speed-up | tuned: metric | tuned: float nodes | tuned: size | tuned: speed-up | attempts | tuning time | tuned ÷ plain time | lock-file reuse | tuned FP16: size; metric; speed-up |");
        sb.AppendLine("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
        foreach (var c in comparisons)
        {
            var t = c.Tuned.Tuning;
            var floatNodes = t is null ? "-"
                : !t.Succeeded ? "tuning failed"
                : t.FloatNodes.Count == 0 ? "0" : $"{t.FloatNodes.Count}: {string.Join(", ", t.FloatNodes)}";
            var reuse = c.Reuse is { } r
                ? $"{r.WallSeconds:F1} s ({r.Tuning?.Source ?? "no tuning report"}; {(r.Int8Sha256 == c.Tuned.Int8Sha256 ? "same INT8 bytes" : "**different INT8 bytes**")})"
                : "no lock file written";
            sb.AppendLine($"| {c.Case.Model.Name} | {Checks(c.Case)} | {Metric(c.Plain)} | {Mb(c.Plain.Int8Bytes)} ({Ratio(c.Plain)}) | {c.PlainSpeedup:F2}× ({c.Plain.GateSpeedup:F2}×) " +
                          $"| {Metric(c.Tuned)} | {floatNodes} | {Mb(c.Tuned.Int8Bytes)} ({Ratio(c.Tuned)}) | {c.TunedSpeedup:F2}× ({c.Tuned.GateSpeedup:F2}×) " +
                          $"| {t?.Attempts.Count ?? 0} | {c.Tuned.WallSeconds:F1} s (search {t?.Elapsed.TotalSeconds ?? 0:F1} s) | **{c.TimeRatio:F1}×** ({c.Plain.WallSeconds:F1} s plain) | {reuse} " +
                          $"| {(c.Fp16 is { } f && c.Fp16Latency is { } l ? $"{Mb(f.Int8Bytes)} ({Ratio(f)}); {Metric(f)}; {c.Fp32Latency.Median / l.Median:F2}× ({f.GateSpeedup:F2}×)" : "not run (no tuned configuration)")} |");
        }

        sb.AppendLine();
        sb.AppendLine("### Issue 6 targets");
        sb.AppendLine();
        foreach (var c in comparisons)
        {
            var accuracy = c.Case.Target is null ? "no target set"
                : $"{c.Case.Target}: **{(c.AccuracyMet && c.SpeedMet ? "met" : "NOT met")}** (tuned: {Metric(c.Tuned)}, shipped {c.Tuned.Output}; speed-up {c.TunedSpeedup:F2}× measured here, {c.Tuned.GateSpeedup:F2}× by the engine's gate)";
            sb.AppendLine($"- {c.Case.Model.Name}: {accuracy}; tuning within {TuningCase.MaxTimeRatio:0}× the plain quantization: **{(c.TimeMet ? "met" : "NOT met")}** ({c.TimeRatio:F1}×){Closest(c)}");
        }

        sb.AppendLine();
        sb.AppendLine("### Tuning attempts");
        foreach (var c in comparisons)
        {
            Attempts(sb, c);
        }

        sb.AppendLine();
    }

    private static void Attempts(StringBuilder sb, TuningComparison c)
    {
        sb.AppendLine();
        sb.AppendLine($"#### {c.Case.Model.Name}");
        sb.AppendLine();
        if (c.Tuned.Tuning is not { } t)
        {
            sb.AppendLine("No tuning report.");
            return;
        }

        sb.AppendLine($"- outcome: {t.Source}, {(t.Succeeded ? "succeeded" : "**failed**")}: {t.Why}");
        if (c.Plain.WorstLayers.Count > 0)
        {
            sb.AppendLine($"- plain run's worst layers (per-layer SQNR vs FP32): {string.Join("; ", c.Plain.WorstLayers.Take(6))}");
        }

        foreach (var w in c.Tuned.Warnings)
        {
            sb.AppendLine($"- tuned run warning {w}");
        }

        sb.AppendLine();
        if (t.Attempts.Count == 0)
        {
            sb.AppendLine("No attempts: nothing was searched.");
            return;
        }

        sb.AppendLine("| # | step | passed | margin | checks | float nodes | size | speed-up (5 runs) | predicted |");
        sb.AppendLine("|---|---|---|---|---|---|---|---|---|");
        foreach (var a in t.Attempts)
        {
            sb.AppendLine(string.Create(CultureInfo.InvariantCulture,
                $"| {a.Number} | {a.Step} | {(a.Passed ? "yes" : "no")} | {a.Margin:F3} | {string.Join("; ", a.Checks)} | {a.FloatNodes.Count} | {Mb(a.Int8Bytes)} | {(a.Speedup is double s ? $"{s:F2}×" : "-")} | {(a.PredictedSpeedup is double p ? $"{p:F2}×" : "-")} |"));
        }
    }

    /// <summary>For a failed search: the passing candidate with the fewest float nodes (what missed the speed-up), else the one closest to passing.</summary>
    private static string Closest(TuningComparison c)
    {
        if (c.Tuned.Tuning is not { Succeeded: false, Attempts.Count: > 0 } t)
        {
            return "";
        }

        // "damage of X alone" attempts are sensitivity probes (every other unit float), not candidates.
        var candidates = t.Attempts.Where(a => !a.Step.StartsWith("damage of", StringComparison.Ordinal)).ToList();
        var best = candidates.Where(a => a.Passed).OrderBy(a => a.FloatNodes.Count).FirstOrDefault() ?? candidates.MaxBy(a => a.Margin)!;
        return string.Create(CultureInfo.InvariantCulture,
            $"; closest attempt: #{best.Number} ({best.Step}): {string.Join("; ", best.Checks)}, {best.FloatNodes.Count} float node(s), speed-up {(best.Speedup is double s ? $"{s:F2}×" : "not measured (failed)")}");
    }

    private static string Checks(TuningCase c) =>
        string.Join("; ", c.Checks.Select(x => $"`{x}`")) + (c.MinSpeedup is double m ? $", min speed-up {m:0.##}×" : "");

    /// <summary>Each check's value as the gate measured it (drop checks: FP32 → INT8 and the drop), with its verdict.</summary>
    private static string Metric(TuningChildResult r) => r.Checks.Count == 0 ? "-" : string.Join("; ", r.Checks.Select(c =>
    {
        var value = c.Check.StartsWith("drop:", StringComparison.OrdinalIgnoreCase) && c.Fp32 is double f
            ? $"{c.Metric} {f:0.##} → {c.Int8:0.##}{c.Unit}, drop **{c.Value:0.##}{c.Unit}**"
            : $"{c.Metric} **{c.Value:0.##}{c.Unit}**";
        return value + (c.Low is double lo && c.High is double hi ? $" [{lo:0.##}, {hi:0.##}]" : "") + (c.Passed ? " ok" : " FAILED");
    }));

    private static string Ratio(TuningChildResult r) => $"{(double)r.Fp32Bytes / r.Int8Bytes:F2}× smaller";

    private static string Mb(long bytes) => bytes >= 1 << 20 ? $"{bytes / (double)(1 << 20):F2} MiB" : $"{bytes / 1024.0:F0} KiB";
}
