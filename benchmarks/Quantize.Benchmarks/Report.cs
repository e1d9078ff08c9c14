using System.Runtime.InteropServices;
using System.Text;
using Microsoft.ML.OnnxRuntime;
using Quantize.Onnx;

namespace Quantize.Benchmarks;

/// <summary>The benchmark's markdown report (printed and written to --out).</summary>
internal static class Report
{
    public static string Markdown(IReadOnlyList<ModelRun> runs, IReadOnlyList<ScalingRun> scaling, BenchSettings settings, TimeSpan elapsed, IReadOnlyList<MethodComparison>? methods = null, IReadOnlyList<TuningComparison>? tuning = null)
    {
        var sb = new StringBuilder();
        sb.AppendLine("# Quantize.Onnx corpus benchmark");
        sb.AppendLine();
        sb.AppendLine($"- date: {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC; benchmark wall time {elapsed.TotalSeconds:F0} s");
        sb.AppendLine($"- machine: {CpuName()}, {Environment.ProcessorCount} logical CPUs, {RuntimeInformation.OSDescription.Trim()}; load average at start {settings.LoadAtStart}, at end {LoadAverage()} (other processes share the CPUs: compare ratios from one run, not absolute ms across runs)");
        sb.AppendLine($"- integer kernels: {Quantize.Onnx.Hardware.BuildMachine.Current.ClassLabel} — every INT8 figure below ran on this class; ours is saturation-safe (portable targets x64;arm64: the same integer results on every CPU), the default recipe's full 8-bit weights saturate on x86 without VNNI");
        sb.AppendLine($"- runtime: {RuntimeInformation.FrameworkDescription}, ONNX Runtime {typeof(InferenceSession).Assembly.GetName().Version?.ToString(3)}, engine {Quantizer.ToolVersion} ({SourceRevision()})");
        sb.AppendLine($"- latency: median of {settings.Runs} timed runs after {settings.Warmup} warm-up, FP32 / ours / default recipe interleaved, 1 intra-op thread, sequential, ORT_ENABLE_ALL, on val/000");
        sb.AppendLine("- recipes: **ours** = the engine's defaults (FP32 kept if INT8 is not faster); " +
                      "**default** = ONNX Runtime's default static recipe re-created with the engine (per-tensor, every supported op, no equalization or bias correction, INT8 always written); each recipe's exact settings are listed under Details");
        sb.AppendLine();

        sb.AppendLine("## Results");
        sb.AppendLine();
        sb.AppendLine("| model | recipe | shipped | FP32 size | INT8 size (ratio) | FP32 ms | INT8 ms | speed-up | SQNR vs expected, INT8 (FP32) | task metric on val | quantize wall | calibration vs bare FP32 | peak memory | fused / un-fused groups |");
        sb.AppendLine("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
        foreach (var r in runs)
        {
            var shipped = r.Ours.Output == nameof(OutputKind.Quantized) ? "INT8" : "**FP32** (kept float)";
            Row(sb, r, "ours", shipped, r.OursInt8, r.OursLatency, r.OursQuality, r.Ours);
            Row(sb, r, "default", "INT8 (forced)", r.Baseline, r.BaselineLatency, r.BaselineQuality, r.Baseline);
        }

        sb.AppendLine();
        sb.AppendLine("INT8 columns of a kept-float model describe the INT8 model the engine built and rejected (re-quantized with keep-float-if-slower=false); its shipped latency is the FP32 latency.");
        sb.AppendLine();

        sb.AppendLine("## Ours vs the default recipe (same run, same machine)");
        sb.AppendLine();
        sb.AppendLine("| model | INT8 size ours / default | INT8 latency default / ours | speed-up ours / default | SQNR ours − default | task metric ours vs default |");
        sb.AppendLine("|---|---|---|---|---|---|");
        foreach (var r in runs)
        {
            sb.AppendLine($"| {r.Model.Name} | {(double)r.OursInt8.Int8Bytes / r.Baseline.Int8Bytes:F2} | {r.BaselineLatency.Median / r.OursLatency.Median:F2}× " +
                          $"| {Speedup(r, r.OursLatency):F2}× vs {Speedup(r, r.BaselineLatency):F2}× | {r.OursQuality.Sqnr - r.BaselineQuality.Sqnr:+0.0;−0.0} dB | {TaskComparison(r)} |");
        }

        sb.AppendLine();
        if (methods is { Count: > 0 })
        {
            Methods(sb, methods);
        }

        if (tuning is { Count: > 0 })
        {
            TuningTable.Append(sb, tuning, settings);
        }

        if (scaling.Count > 0)
        {
            sb.AppendLine("## Peak memory vs number of calibration samples");
            sb.AppendLine();
            sb.AppendLine("Each run is a separate child process doing only the quantization (our recipe unless another is named, 3 latency runs); peak = Process.PeakWorkingSet64 (VmHWM).");
            sb.AppendLine();
            sb.AppendLine("| model | samples | peak working set | vs fewest samples | peak before calibration | working set during calibration (after 1st sample → max) | peak before validation | calibration time | per sample | managed allocations per sample | gen-2 GCs |");
            sb.AppendLine("|---|---|---|---|---|---|---|---|---|---|---|");
            foreach (var s in scaling)
            {
                var first = s.Runs[0];
                foreach (var c in s.Runs)
                {
                    var ratio = (double)c.PeakWorkingSetBytes / first.PeakWorkingSetBytes;
                    var verdict = c == first ? "" : $"**{ratio:F3}** ({(ratio - 1) * 100:+0.0;−0.0} %)";
                    sb.AppendLine($"| {s.Model} | {c.CalibrationSamples:N0} | {Mb(c.PeakWorkingSetBytes)} | {verdict} | {Mb(c.PeakAtCalibrationStartBytes)} " +
                                  $"| {Mb(c.CalibrationFirstWorkingSetBytes)} → {Mb(c.CalibrationMaxWorkingSetBytes)} | {Mb(c.PeakAtValidationStartBytes)} " +
                                  $"| {c.CalibrationSeconds:F1} s | {1000 * c.CalibrationSeconds / c.CalibrationSamples:F1} ms | {c.AllocatedBytes / 1024.0 / c.CalibrationSamples:F0} KiB | {c.Gen2Collections} |");
                }

                var last = s.Runs[^1];
                var total = (double)last.PeakWorkingSetBytes / first.PeakWorkingSetBytes;
                sb.AppendLine();
                sb.AppendLine($"Target (peak of {last.CalibrationSamples:N0} samples within 10 % of {first.CalibrationSamples:N0}): **{(Math.Abs(total - 1) <= 0.10 ? "met" : "NOT met")}** ({(total - 1) * 100:+0.0;−0.0} %). " +
                              "Allocations per sample are of the whole run divided by the samples (fixed costs included).");
            }

            sb.AppendLine();
        }

        sb.AppendLine("## Details");
        foreach (var r in runs)
        {
            Details(sb, r);
        }

        return sb.ToString();
    }

    private static void Row(StringBuilder sb, ModelRun r, string recipe, string shipped, ChildResult int8, Timing latency, VariantQuality quality, ChildResult cost)
    {
        var calibration = cost.CalibrationSeconds;
        var bare = r.BareFp32.Total.TotalSeconds;
        sb.AppendLine(
            $"| {r.Model.Name} | {recipe} | {shipped} | {Mb(int8.Fp32Bytes)} | {Mb(int8.Int8Bytes)} ({(double)int8.Fp32Bytes / int8.Int8Bytes:F2}×) " +
            $"| {r.Fp32Latency.Median:F2} | {latency.Median:F2} | **{Speedup(r, latency):F2}×**{(shipped.Contains("FP32", StringComparison.Ordinal) ? " (shipped: 1.00×)" : "")} " +
            $"| {Db(quality.Sqnr)} ({Db(r.Fp32Quality.Sqnr)}) | {TaskMetric(r, quality)} " +
            $"| {cost.WallSeconds:F1} s | {calibration:F2} s vs {bare:F2} s ({calibration / bare:F2}×) | {Mb(cost.PeakWorkingSetBytes)} " +
            $"| {int8.FusedGroups} / {int8.UnfusedNodes.Count} |");
    }

    private static void Methods(StringBuilder sb, IReadOnlyList<MethodComparison> methods)
    {
        sb.AppendLine("## Calibration methods side by side");
        sb.AppendLine();
        sb.AppendLine("Our defaults with one calibration setting changed, INT8 always written; every variant in its own child process; " +
                      "latency of FP32 and all variants interleaved in one run; SQNR vs the stored expected outputs over the validation set. " +
                      "Calibration time includes every pass (histogram methods: a per-channel MinMax pass for equalization, a sizing run and the histogram pass).");
        sb.AppendLine();
        sb.AppendLine("| model | calibration | SQNR vs expected | task metric on val | INT8 size | speed-up | calibration time | peak memory |");
        sb.AppendLine("|---|---|---|---|---|---|---|---|");
        foreach (var m in methods)
        {
            var best = m.Runs.Where(r => r.Method != "minmax, reduce-range").MaxBy(r => r.Quality.Sqnr);
            foreach (var r in m.Runs)
            {
                var sqnr = r == best ? $"**{Db(r.Quality.Sqnr)}**" : Db(r.Quality.Sqnr);
                sb.AppendLine($"| {m.Model.Name} | {r.Method} | {sqnr} | {MethodTaskMetric(m, r.Quality)} | {Mb(r.Result.Int8Bytes)} " +
                              $"| {m.Fp32Latency.Median / r.Latency.Median:F2}× ({r.Latency.Median:F2} ms vs {m.Fp32Latency.Median:F2}) | {r.Result.CalibrationSeconds:F2} s | {Mb(r.Result.PeakWorkingSetBytes)} |");
            }
        }

        sb.AppendLine();
    }

    private static string MethodTaskMetric(MethodComparison m, VariantQuality q) => m.Model.Task switch
    {
        TaskKind.SuperResolution => $"PSNR drop {m.Fp32Quality.Psnr - q.Psnr:F2} dB",
        TaskKind.Classifier => $"top-1 agreement {Pct(q.Agreement)}",
        TaskKind.ProbabilityMap => $"text-mask IoU {q.MapIoU:F3}",
        _ => "-",
    };

    private static double Speedup(ModelRun r, Timing int8) => r.Fp32Latency.Median / int8.Median;

    private static string TaskMetric(ModelRun r, VariantQuality q) => r.Model.Task switch
    {
        TaskKind.SuperResolution => $"PSNR {r.Fp32Quality.Psnr:F2} → {q.Psnr:F2} dB (drop **{r.Fp32Quality.Psnr - q.Psnr:F2} dB**)",
        TaskKind.Classifier => $"top-1 agreement {Pct(q.Agreement)}; accuracy {Pct(q.Accuracy)} (FP32 {Pct(r.Fp32Quality.Accuracy)})",
        TaskKind.ProbabilityMap => $"pixel agreement@{CorpusModel.MapThreshold} {Pct(q.PixelAgreement, 2)}; text-mask IoU {q.MapIoU:F3} (FP32 {Pct(r.Fp32Quality.PixelAgreement, 2)})",
        _ => "-",
    };

    private static string TaskComparison(ModelRun r) => r.Model.Task switch
    {
        TaskKind.SuperResolution => $"PSNR drop {r.Fp32Quality.Psnr - r.OursQuality.Psnr:F2} vs {r.Fp32Quality.Psnr - r.BaselineQuality.Psnr:F2} dB",
        TaskKind.Classifier => $"top-1 agreement {Pct(r.OursQuality.Agreement)} vs {Pct(r.BaselineQuality.Agreement)}",
        TaskKind.ProbabilityMap => $"IoU@{CorpusModel.MapThreshold} {r.OursQuality.MapIoU:F3} vs {r.BaselineQuality.MapIoU:F3}",
        _ => "-",
    };

    private static void Details(StringBuilder sb, ModelRun r)
    {
        sb.AppendLine();
        sb.AppendLine($"### {r.Model.Name}");
        sb.AppendLine();
        sb.AppendLine($"- model `{Path.GetFileName(r.Model.ModelPath)}`; {r.Model.CalibrationSamples.Count} calibration samples, {r.Model.ValidationSamples.Count} validation samples; bare FP32 over the calibration set (faster of two passes, setups interleaved): " +
                      $"{Bare("default threads, ORT_ENABLE_ALL (yardstick)", r.BareFp32, r)}; {Bare("default threads, ORT_ENABLE_BASIC (the calibrator's level)", r.BareFp32Basic, r)}; " +
                      $"{Bare("1 thread, ORT_ENABLE_ALL", r.BareFp32OneThread, r)}");
        sb.AppendLine($"- latency ms median / min / p90: FP32 {T(r.Fp32Latency)}; ours {T(r.OursLatency)}; default {T(r.BaselineLatency)}");
        foreach (var (name, c) in new[] { ("ours", r.OursInt8), ("default", r.Baseline) })
        {
            sb.AppendLine($"- **{name}**: {c.QuantizedNodes} nodes quantized, per-channel {(c.PerChannel ? "yes" : "no")}; integer kernels: {Kernels(c)}; " +
                          $"QuantizeLinear left {c.RemainingQuantizeLinear}, DequantizeLinear left {c.RemainingDequantizeLinear}; " +
                          $"un-fused groups: {(c.UnfusedNodes.Count == 0 ? "none" : string.Join(", ", c.UnfusedNodes))}; " +
                          $"settings: {string.Join(", ", c.Settings.Where(kv => kv.Value.Length > 0).Select(kv => $"{kv.Key}={kv.Value}"))}");
            sb.AppendLine($"  - engine: calibration {c.CalibrationSeconds:F2} s ({1000 * c.CalibrationSeconds / c.CalibrationSamples:F1} ms/sample incl. building and loading the augmented model), total {c.EngineTotalSeconds:F2} s, own latency gate FP32 {c.GateFp32Ms:F2} ms vs INT8 {c.GateInt8Ms:F2} ms " +
                          $"({c.GateFp32Ms / c.GateInt8Ms:F2}×), SQNR vs FP32 on calibration samples {string.Join(", ", c.CalibrationSqnr.Select(f => $"{f.Output} {Db(f.SqnrDb)}"))}; " +
                          $"working set at start {Mb(c.StartWorkingSetBytes)}, peak before calibration {Mb(c.PeakAtCalibrationStartBytes)}, during calibration {Mb(c.CalibrationFirstWorkingSetBytes)} → {Mb(c.CalibrationMaxWorkingSetBytes)}, " +
                          $"peak before validation {Mb(c.PeakAtValidationStartBytes)}, final peak {Mb(c.PeakWorkingSetBytes)}");
        }

        var shippedRun = r.Ours;
        sb.AppendLine($"- shipped by our recipe: **{shippedRun.Output}**");
        foreach (var w in shippedRun.Warnings.Concat(r.OursInt8 == r.Ours ? [] : r.OursInt8.Warnings.Select(w => "(forced INT8 run) " + w)).Distinct())
        {
            sb.AppendLine($"  - warning {w}");
        }

        foreach (var w in r.Baseline.Warnings)
        {
            sb.AppendLine($"  - default recipe warning {w}");
        }
    }

    /// <summary>The git commit of the sources the benchmark was built from, and whether the engine had local changes.</summary>
    private static string SourceRevision()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Quantize.MSBuild.sln")))
            {
                var head = Git(dir.FullName, "rev-parse --short HEAD");
                if (head is null)
                {
                    return "not a git checkout";
                }

                var dirty = Git(dir.FullName, "status --porcelain -- src/Quantize.Onnx");
                return $"commit {head}{(string.IsNullOrEmpty(dirty) ? "" : ", with uncommitted engine changes")}";
            }
        }

        return "unknown source revision";
    }

    private static string? Git(string folder, string arguments)
    {
        try
        {
            var start = new System.Diagnostics.ProcessStartInfo("git", $"-C \"{folder}\" {arguments}") { RedirectStandardOutput = true, RedirectStandardError = true };
            using var p = System.Diagnostics.Process.Start(start);
            if (p is null)
            {
                return null;
            }

            var output = p.StandardOutput.ReadToEnd().Trim();
            p.WaitForExit();
            return p.ExitCode == 0 ? output : null;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return null;
        }
    }

    public static string LoadAverage()
    {
        try
        {
            return string.Join(" ", File.ReadAllText("/proc/loadavg").Split(' ').Take(3));
        }
        catch (IOException)
        {
            return "n/a";
        }
    }

    private static string Bare(string label, BareRun b, ModelRun r) =>
        $"{label} load {b.Load.TotalSeconds:F2} s + runs {b.Runs.TotalSeconds:F2} s ({1000 * b.Runs.TotalSeconds / r.Model.CalibrationSamples.Count:F1} ms/sample)";

    private static string Kernels(ChildResult c) =>
        c.IntegerKernels.Count == 0 ? "none" : string.Join(", ", c.IntegerKernels.Select(k => $"{k.Key} {k.Value}"));

    private static string T(Timing t) => $"{t.Median:F2} / {t.Min:F2} / {t.P90:F2}";

    private static string Mb(long bytes) => bytes >= 1 << 30 ? $"{bytes / (double)(1 << 30):F2} GiB"
        : bytes >= 1 << 20 ? $"{bytes / (double)(1 << 20):F2} MiB"
        : $"{bytes / 1024.0:F0} KiB";

    private static string Db(double db) => double.IsPositiveInfinity(db) ? "∞" : $"{db:F1} dB";

    private static string Pct(double value, int decimals = 1) => (100 * value).ToString("F" + decimals, System.Globalization.CultureInfo.InvariantCulture) + " %";

    private static string CpuName()
    {
        try
        {
            var line = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal));
            return line?.Split(':', 2)[1].Trim() ?? RuntimeInformation.ProcessArchitecture.ToString();
        }
        catch (IOException)
        {
            return RuntimeInformation.ProcessArchitecture.ToString();
        }
    }
}
