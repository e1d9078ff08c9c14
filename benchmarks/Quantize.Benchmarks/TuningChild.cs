using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;
using Quantize.Onnx;
using Quantize.Onnx.Quantization;
using Quantize.Onnx.Tuning;
using Quantize.Onnx.Validation;

namespace Quantize.Benchmarks;

/// <summary>One accuracy check as the gate measured it.</summary>
internal sealed record CheckLine(string Check, string Metric, string Unit, double? Fp32, double Int8, double Value, double? Low, double? High, bool Passed, string Described);

/// <summary>What one gated quantization child reports back (JSON).</summary>
internal sealed record TuningChildResult
{
    public required string Output { get; init; }

    public required long Fp32Bytes { get; init; }

    /// <summary>Size of the candidate the run chose (INT8, mixed when nodes were kept float).</summary>
    public required long Int8Bytes { get; init; }

    /// <summary>The INT8 model for the latency comparison: the output when INT8 shipped, else the same configuration written without the gate.</summary>
    public required string Int8Path { get; init; }

    public required string Int8Sha256 { get; init; }

    /// <summary>Wall time of <see cref="Quantizer.Run"/> (the gated run only; not the extra write of a rejected INT8 model).</summary>
    public required double WallSeconds { get; init; }

    public required double CalibrationSeconds { get; init; }

    /// <summary>The engine's own latency gate (FP32 vs the chosen candidate, interleaved, 1 thread).</summary>
    public required double GateSpeedup { get; init; }

    public required bool ChecksPassed { get; init; }

    public required List<CheckLine> Checks { get; init; }

    public required List<string> WorstLayers { get; init; }

    public required List<string> Warnings { get; init; }

    public required SortedDictionary<string, string> Settings { get; init; }

    public required int IntegerKernels { get; init; }

    public TuningReport? Tuning { get; init; }

    public bool Shipped => Output == nameof(OutputKind.Quantized);
}

/// <summary>
/// Hidden sub-command <c>measure-tuning</c>: one gated quantization (plain, tuned, locked reuse, or a fixed recipe),
/// timed in its own process so every run pays the same start-up and JIT; writes a <see cref="TuningChildResult"/>.
/// </summary>
internal static class TuningChild
{
    public const string Command = "measure-tuning";

    /// <summary>The settings the tuner chooses (the lock file's recipe), passed on to fixed-recipe runs.</summary>
    public static readonly string[] RecipeKeys =
        ["bias-correction", "calibration-method", "calibration-percentile", "equalize", "exclude-nodes", "per-channel", "symmetric-activations"];

    public static int Run(string[] args)
    {
        string? model = null, calibration = null, validation = null, output = null, json = null, lockFile = null;
        var checks = new List<string>();
        var recipe = new Dictionary<string, string>(StringComparer.Ordinal);
        double? minSpeedup = null;
        bool tune = false, locked = false, fp16 = false;
        int? latencyRuns = null, maxAttempts = null;
        for (var i = 0; i < args.Length; i++)
        {
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            switch (args[i])
            {
                case "--model-path": model = Next(); break;
                case "--calibration": calibration = Next(); break;
                case "--validation": validation = Next(); break;
                case "--output": output = Next(); break;
                case "--json": json = Next(); break;
                case "--check": checks.Add(Next()); break;
                case "--min-speedup": minSpeedup = double.Parse(Next(), CultureInfo.InvariantCulture); break;
                case "--tune": tune = true; break;
                case "--locked": locked = true; break;
                case "--lock-file": lockFile = Next(); break;
                case "--latency-runs": latencyRuns = int.Parse(Next(), CultureInfo.InvariantCulture); break;
                case "--max-attempts": maxAttempts = int.Parse(Next(), CultureInfo.InvariantCulture); break;
                case "--fp16": fp16 = true; break;
                case "--recipe":
                    var kv = Next().Split('=', 2);
                    recipe[kv[0]] = kv.Length > 1 ? kv[1] : "";
                    break;
                default: throw new ArgumentException($"{Command}: unknown argument '{args[i]}'");
            }
        }

        if (model is null || calibration is null || validation is null || output is null || json is null)
        {
            throw new ArgumentException($"{Command} needs --model-path, --calibration, --validation, --output and --json");
        }

        var options = WithRecipe(new QuantizationOptions(), recipe) with
        {
            LatencyRuns = latencyRuns ?? new QuantizationOptions().LatencyRuns,
            FloatPrecision = fp16 ? FloatPrecision.Fp16 : FloatPrecision.Fp32,
            Validation = new ValidationOptions
            {
                Folder = validation,
                Checks = checks.Select(AccuracyCheck.Parse).ToList(),
                MinSpeedup = minSpeedup,
                // The benchmark wants every run's measurements; the verdict is read from the result.
                OnFailure = AccuracyFailureAction.ShipFp32,
            },
            Tuning = tune || locked
                ? new TuningOptions { Enabled = tune, Locked = locked, LockFile = lockFile, MaxAttempts = maxAttempts ?? new TuningOptions().MaxAttempts }
                : null,
        };

        var wall = Stopwatch.StartNew();
        var r = new Quantizer(options).Run(model, calibration, output);
        wall.Stop();

        var int8Path = output;
        if (r.Output != OutputKind.Quantized)
        {
            // The gate shipped FP32: write the chosen configuration's INT8 model anyway, for the latency comparison.
            int8Path = Path.ChangeExtension(output, ".int8.onnx");
            var chosen = WithRecipe(options, r.Settings) with { Validation = null, Tuning = null, KeepFloatIfSlower = false };
            new Quantizer(chosen).Run(model, calibration, int8Path);
        }

        var validationReport = r.Validation;
        var result = new TuningChildResult
        {
            Output = r.Output.ToString(),
            Fp32Bytes = r.Fp32Bytes,
            Int8Bytes = r.Int8Bytes,
            Int8Path = int8Path,
            Int8Sha256 = Sha256(int8Path),
            WallSeconds = wall.Elapsed.TotalSeconds,
            CalibrationSeconds = r.CalibrationTime.TotalSeconds,
            GateSpeedup = r.Latency.Speedup,
            ChecksPassed = validationReport?.Passed ?? false,
            Checks = validationReport?.Checks.Select(c => new CheckLine(
                c.Check, c.Metric, c.Unit, c.Fp32, c.Int8, c.Value, c.Interval?.Low, c.Interval?.High, c.Passed, c.Describe())).ToList() ?? [],
            WorstLayers = validationReport?.WorstLayers.Select(l => string.Create(CultureInfo.InvariantCulture, $"{l.Node} ({l.OpType}) {l.SqnrDb:F1} dB, loses {l.LossDb:F1} dB")).ToList() ?? [],
            Warnings = r.Warnings.Select(w => $"{w.Code}: {w.Message}").ToList(),
            Settings = new SortedDictionary<string, string>(r.Settings.ToDictionary(), StringComparer.Ordinal),
            IntegerKernels = r.Fusion.FusedCount,
            Tuning = r.Tuning,
        };
        File.WriteAllText(json, JsonSerializer.Serialize(result, ChildProcess.Json));
        return 0;
    }

    /// <summary>Runs <c>measure-tuning</c> in a fresh process of this program and reads its result.</summary>
    public static TuningChildResult Spawn(IEnumerable<string> arguments, string json) =>
        ChildProcess.RunForJson<TuningChildResult>(arguments.Prepend(Command), json, Command);

    /// <summary>The options with a recipe's settings (as <see cref="QuantizationOptions.ToSettings"/> writes them) applied.</summary>
    private static QuantizationOptions WithRecipe(QuantizationOptions options, IReadOnlyDictionary<string, string> recipe) => options with
    {
        BiasCorrection = recipe.TryGetValue("bias-correction", out var bias) ? bias == "true" : options.BiasCorrection,
        CalibrationMethod = recipe.TryGetValue("calibration-method", out var method) ? Enum.Parse<CalibrationMethod>(method, ignoreCase: true) : options.CalibrationMethod,
        CalibrationPercentile = recipe.TryGetValue("calibration-percentile", out var percentile) && percentile.Length > 0
            ? double.Parse(percentile, CultureInfo.InvariantCulture) : options.CalibrationPercentile,
        SymmetricActivations = recipe.TryGetValue("symmetric-activations", out var symmetric) ? symmetric == "true" : options.SymmetricActivations,
        Equalize = recipe.TryGetValue("equalize", out var equalize) ? equalize == "true" : options.Equalize,
        PerChannel = recipe.TryGetValue("per-channel", out var perChannel) ? perChannel == "true" : options.PerChannel,
        ExcludedNodes = recipe.TryGetValue("exclude-nodes", out var nodes)
            ? nodes.Split(';', StringSplitOptions.RemoveEmptyEntries).ToHashSet(StringComparer.Ordinal)
            : options.ExcludedNodes,
    };

    private static string Sha256(string path)
    {
        using var stream = File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(stream));
    }
}
