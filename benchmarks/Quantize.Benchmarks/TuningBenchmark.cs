using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;

namespace Quantize.Benchmarks;

/// <summary>The accuracy gate one corpus model is tuned for, and issue 6's target for it.</summary>
/// <param name="ValidationFolder">The validation samples the gate reads (for waifu2x a folder whose ground truth is the HR image).</param>
/// <param name="Target">The target in words; null when the issue sets none.</param>
internal sealed record TuningCase(CorpusModel Model, string ValidationFolder, IReadOnlyList<string> Checks, double? MinSpeedup, string? Target)
{
    /// <summary>Tuning may take at most this many times the plain quantization (issue 6).</summary>
    public const double MaxTimeRatio = 10;

    public static TuningCase For(CorpusModel model, string work) => model.Task switch
    {
        TaskKind.SuperResolution => new(model, HighResolutionTargets.Write(model.ValidationFolder, Path.Combine(work, "validation-hr")),
            ["drop:psnr<=1.0"], 2, "PSNR drop ≤ 1.0 dB vs the HR image at ≥ 2× FP32 speed"),
        TaskKind.ProbabilityMap => new(model, model.ValidationFolder, ["sqnr>=20"], 1.2, "SQNR ≥ 20 dB vs FP32 at ≥ 1.2×"),
        // Expected outputs are FP32's: the top-1 drop is the share of validation lines whose class flips.
        TaskKind.Classifier => new(model, model.ValidationFolder, ["drop:top1<=0.5"], null, "top-1 drop ≤ 0.5 %"),
        _ => new(model, model.ValidationFolder, ["sqnr>=20"], null, null),
    };
}

/// <summary>The plain, tuned, locked-reuse and FP16 runs of one corpus model, with one interleaved latency measurement.</summary>
internal sealed record TuningComparison(
    TuningCase Case, TuningChildResult Plain, TuningChildResult Tuned, TuningChildResult? Reuse, TuningChildResult? Fp16,
    Timing Fp32Latency, Timing PlainLatency, Timing TunedLatency, Timing? Fp16Latency)
{
    public double PlainSpeedup => Fp32Latency.Median / PlainLatency.Median;

    public double TunedSpeedup => Fp32Latency.Median / TunedLatency.Median;

    /// <summary>Wall time of the tuned run (search included) over the plain run's, both gated, each in its own process.</summary>
    public double TimeRatio => Tuned.WallSeconds / Plain.WallSeconds;

    /// <summary>Accuracy part of the target: the tuned configuration passes every check (it may still ship FP32 when INT8 is not faster).</summary>
    public bool AccuracyMet => Tuned.ChecksPassed;

    /// <summary>Speed part: the benchmark's own interleaved measurement of the tuned INT8 model, and the engine's gate.</summary>
    public bool SpeedMet => Case.MinSpeedup is not double min || (TunedSpeedup >= min && Tuned.GateSpeedup >= min);

    public bool TimeMet => TimeRatio <= TuningCase.MaxTimeRatio;
}

/// <summary>
/// Issue 6's comparison: for each corpus model, the plain quantization under the model's checks, then the same
/// with tuning (lock file in the work folder), a third run that reuses the lock file (locked mode, no search),
/// and the tuned configuration with FP16 float weights; then FP32 and the INT8 models timed interleaved.
/// </summary>
internal static class TuningBenchmark
{
    public static TuningComparison Run(CorpusModel model, string work, BenchSettings settings, Action<string> log)
    {
        Directory.CreateDirectory(work);
        var c = TuningCase.For(model, work);
        var lockFile = Path.Combine(work, "lock", Path.GetFileNameWithoutExtension(model.ModelPath) + ".quantization.json");
        Directory.CreateDirectory(Path.GetDirectoryName(lockFile)!);
        var checks = string.Join("; ", c.Checks) + (c.MinSpeedup is double m ? $", min speed-up {m}×" : "");

        log($"{model.Name}: plain quantization gated on {checks} (child process)");
        var plain = Spawn(c, work, "plain", []);
        log($"{model.Name}: plain {(plain.ChecksPassed ? "passes" : "fails")} in {plain.WallSeconds:F1} s; tuning (child process)");
        string[] budget = settings.TuneMaxAttempts is int n ? ["--max-attempts", n.ToString(CultureInfo.InvariantCulture)] : [];
        var tuned = Spawn(c, work, "tuned", ["--tune", "--lock-file", lockFile, .. budget]);
        log($"{model.Name}: tuning {(tuned.Tuning?.Succeeded == true ? "succeeded" : "failed")} after {tuned.Tuning?.Attempts.Count ?? 0} attempt(s) in {tuned.WallSeconds:F1} s");

        TuningChildResult? reuse = null;
        if (tuned.Tuning?.LockFileWritten == true)
        {
            log($"{model.Name}: reusing the lock file (locked mode, child process)");
            reuse = Spawn(c, work, "reuse", ["--locked", "--lock-file", lockFile]);
        }

        TuningChildResult? fp16 = null;
        if (tuned.Tuning?.Succeeded == true)
        {
            log($"{model.Name}: the tuned configuration with FP16 float weights (child process)");
            fp16 = Spawn(c, work, "tuned-fp16", [.. Recipe(tuned), "--fp16"]);
        }

        var latency = Measure(model, fp16 is null ? [plain, tuned] : [plain, tuned, fp16], settings, log);
        return new TuningComparison(c, plain, tuned, reuse, fp16, latency[0], latency[1], latency[2], fp16 is null ? null : latency[3]);
    }

    /// <summary>The tuned run's chosen settings as <c>--recipe key=value</c> arguments.</summary>
    private static IEnumerable<string> Recipe(TuningChildResult tuned) =>
        TuningChild.RecipeKeys.Where(tuned.Settings.ContainsKey).SelectMany(k => new[] { "--recipe", $"{k}={tuned.Settings[k]}" });

    /// <summary>FP32 and each run's INT8 model timed interleaved; byte-identical models are timed once and share the timing.</summary>
    private static Timing[] Measure(CorpusModel model, IReadOnlyList<TuningChildResult> runs, BenchSettings settings, Action<string> log)
    {
        var distinct = runs.DistinctBy(r => r.Int8Sha256).ToList();
        log($"{model.Name}: latency of FP32 and {distinct.Count} distinct INT8 model(s), {settings.Warmup} warm-up + {settings.Runs} interleaved runs");
        var timings = Measurements.Latency([model.ModelPath, .. distinct.Select(r => r.Int8Path)], model.ValidationSamples[0], settings.Warmup, settings.Runs);
        return [timings[0], .. runs.Select(r => timings[1 + distinct.FindIndex(d => d.Int8Sha256 == r.Int8Sha256)])];
    }

    private static TuningChildResult Spawn(TuningCase c, string work, string name, IEnumerable<string> extra)
    {
        var args = new List<string>
        {
            "--model-path", c.Model.ModelPath, "--calibration", c.Model.CalibrationFolder, "--validation", c.ValidationFolder,
            "--output", Path.Combine(work, name + ".onnx"),
        };
        foreach (var check in c.Checks)
        {
            args.AddRange(["--check", check]);
        }

        if (c.MinSpeedup is double min)
        {
            args.AddRange(["--min-speedup", min.ToString(CultureInfo.InvariantCulture)]);
        }

        return TuningChild.Spawn(args.Concat(extra), Path.Combine(work, name + ".json"));
    }
}

/// <summary>
/// A waifu2x validation folder whose ground truth is the high-resolution photo: per sample the corpus's
/// <c>input.npy</c> and <c>expected/output.npy</c> = <c>hr.png</c> as float [1, 3, H, W] in [0, 1], so that
/// <c>drop:psnr</c> is the PSNR lost against the real image, not against the FP32 output.
/// </summary>
internal static class HighResolutionTargets
{
    public static string Write(string validationFolder, string destination)
    {
        foreach (var sample in Directory.EnumerateDirectories(validationFolder).Order(StringComparer.Ordinal))
        {
            var target = Path.Combine(destination, Path.GetFileName(sample));
            Directory.CreateDirectory(Path.Combine(target, "expected"));
            foreach (var npy in Directory.EnumerateFiles(sample, "*.npy"))
            {
                File.Copy(npy, Path.Combine(target, Path.GetFileName(npy)), overwrite: true);
            }

            var hr = PngDecoder.Read(Path.Combine(sample, "hr.png"));
            var planar = new float[3 * hr.Width * hr.Height];
            for (var ch = 0; ch < 3; ch++)
            {
                for (var y = 0; y < hr.Height; y++)
                {
                    for (var x = 0; x < hr.Width; x++)
                    {
                        planar[(((ch * hr.Height) + y) * hr.Width) + x] = hr.Pixels[(((y * hr.Width) + x) * hr.Channels) + ch] / 255f;
                    }
                }
            }

            WriteNpy(Path.Combine(target, "expected", "output.npy"), planar, [1, 3, hr.Height, hr.Width]);
        }

        return destination;
    }

    /// <summary>A little-endian float32 .npy (format 1.0, C order), header padded to 64 bytes.</summary>
    private static void WriteNpy(string path, float[] values, int[] shape)
    {
        var header = $"{{'descr': '<f4', 'fortran_order': False, 'shape': ({string.Join(", ", shape)}), }}";
        header = header.PadRight((((header.Length + 11) / 64) + 1) * 64 - 11) + "\n";
        using var file = File.Create(path);
        file.Write([0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', 1, 0]);
        var bytes = Encoding.ASCII.GetBytes(header);
        file.Write(BitConverter.GetBytes((ushort)bytes.Length));
        file.Write(bytes);
        file.Write(MemoryMarshal.AsBytes(values.AsSpan()));
    }
}
