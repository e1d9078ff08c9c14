using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Quantize.Onnx;

namespace Quantize.Benchmarks;

/// <summary>The engine configurations the benchmark compares.</summary>
internal static class Recipes
{
    /// <summary>Our defaults: per-channel weights, fast kernels only, FP32 kept when INT8 is not faster.</summary>
    public const string Ours = "ours";

    /// <summary>Our defaults but INT8 always written, to report what INT8 would have been when the model was kept float.</summary>
    public const string OursForced = "ours-int8";

    /// <summary>ONNX Runtime's default static recipe: QDQ, MinMax, per-tensor, every supported op quantized.</summary>
    public const string Baseline = "default-recipe";

    /// <summary>Prefix of the calibration-method recipes: our defaults with another method (INT8 always written).</summary>
    public const string MethodPrefix = "method:";

    /// <summary>The calibration variants the benchmark compares side by side (issue 5): name → options over our defaults.</summary>
    public static readonly (string Name, QuantizationOptions Options)[] Methods =
    [
        ("minmax", new QuantizationOptions { KeepFloatIfSlower = false }),
        ("minmax, no saturation-aware ranges", new QuantizationOptions { KeepFloatIfSlower = false, SaturationAwareRanges = false }),
        ("percentile 99.999", new QuantizationOptions { KeepFloatIfSlower = false, CalibrationMethod = CalibrationMethod.Percentile }),
        ("percentile 99.99", new QuantizationOptions { KeepFloatIfSlower = false, CalibrationMethod = CalibrationMethod.Percentile, CalibrationPercentile = 99.99 }),
        ("entropy", new QuantizationOptions { KeepFloatIfSlower = false, CalibrationMethod = CalibrationMethod.Entropy }),
        ("mse", new QuantizationOptions { KeepFloatIfSlower = false, CalibrationMethod = CalibrationMethod.Mse }),
        ("minmax, symmetric activations", new QuantizationOptions { KeepFloatIfSlower = false, SymmetricActivations = true }),
        ("minmax, reduce-range", new QuantizationOptions { KeepFloatIfSlower = false, ReduceRange = true }),
        // What the saturation-safe weights of the default (portable) targets cost on this CPU: full 8-bit weights, exact targets only.
        ("minmax, 8-bit weights (exact targets only)", new QuantizationOptions
        {
            KeepFloatIfSlower = false,
            Targets = [Quantize.Onnx.Hardware.QuantizeTarget.X64Vnni, Quantize.Onnx.Hardware.QuantizeTarget.Arm64],
        }),
    ];

    public static QuantizationOptions Options(string recipe, int? maxSamples, int? latencyRuns)
    {
        var method = recipe.StartsWith(MethodPrefix, StringComparison.Ordinal)
            ? Methods.FirstOrDefault(m => m.Name == recipe[MethodPrefix.Length..]).Options
            : null;
        var options = method ?? recipe switch
        {
            Ours => new QuantizationOptions(),
            OursForced => new QuantizationOptions { KeepFloatIfSlower = false },
            // ONNX Runtime's recipe has neither cross-layer equalization, bias correction nor saturation-aware ranges,
            // and full 8-bit weights whatever the CPU (the targets that need no saturation-safe weights).
            Baseline => new QuantizationOptions
            {
                Targets = [Quantize.Onnx.Hardware.QuantizeTarget.X64Vnni, Quantize.Onnx.Hardware.QuantizeTarget.Arm64],
                PerChannel = false,
                FastKernelsOnly = false,
                KeepFloatIfSlower = false,
                Equalize = false,
                BiasCorrection = false,
                SaturationAwareRanges = false,
            },
            _ => throw new ArgumentException($"unknown recipe '{recipe}' (ours, ours-int8, default-recipe)"),
        };
        return options with
        {
            MaxCalibrationSamples = maxSamples,
            LatencyRuns = latencyRuns ?? options.LatencyRuns,
        };
    }
}

/// <summary>SQNR of one model output.</summary>
internal sealed record OutputSqnr(string Output, double SqnrDb);

/// <summary>What one quantization child reports back (JSON), including its own peak working set.</summary>
internal sealed record ChildResult
{
    public required string Recipe { get; init; }

    public required string Output { get; init; }

    public required string OutputPath { get; init; }

    public required long Fp32Bytes { get; init; }

    public required long Int8Bytes { get; init; }

    public required int CalibrationSamples { get; init; }

    public required double CalibrationSeconds { get; init; }

    public required double EngineTotalSeconds { get; init; }

    /// <summary>Wall time of <see cref="Quantizer.Run"/> as the child saw it.</summary>
    public required double WallSeconds { get; init; }

    public required double GateFp32Ms { get; init; }

    public required double GateInt8Ms { get; init; }

    public required List<OutputSqnr> CalibrationSqnr { get; init; }

    public required SortedDictionary<string, int> IntegerKernels { get; init; }

    public required List<string> UnfusedNodes { get; init; }

    public required int RemainingQuantizeLinear { get; init; }

    public required int RemainingDequantizeLinear { get; init; }

    public required int QuantizedNodes { get; init; }

    public required bool PerChannel { get; init; }

    public required List<string> Warnings { get; init; }

    /// <summary>The engine's settings as it records them in provenance.</summary>
    public SortedDictionary<string, string> Settings { get; init; } = [];

    /// <summary>Working set right before the quantization started (runtime and assemblies loaded).</summary>
    public required long StartWorkingSetBytes { get; init; }

    /// <summary>Process.PeakWorkingSet64 after the quantization (VmHWM on Linux).</summary>
    public required long PeakWorkingSetBytes { get; init; }

    /// <summary>Process.PeakWorkingSet64 when the first calibration sample was done (load, preparation, opset check).</summary>
    public long PeakAtCalibrationStartBytes { get; init; }

    /// <summary>Largest working set sampled after each calibration sample.</summary>
    public long CalibrationMaxWorkingSetBytes { get; init; }

    /// <summary>Working set after the first calibration sample.</summary>
    public long CalibrationFirstWorkingSetBytes { get; init; }

    /// <summary>Process.PeakWorkingSet64 when validation (fusion, fidelity, latency) started.</summary>
    public long PeakAtValidationStartBytes { get; init; }

    /// <summary>Managed allocations during the quantization (GC.GetTotalAllocatedBytes).</summary>
    public long AllocatedBytes { get; init; }

    /// <summary>Gen-2 collections during the quantization.</summary>
    public int Gen2Collections { get; init; }

    /// <summary>Largest committed managed heap seen by the GC (bytes) during the quantization.</summary>
    public long ManagedCommittedBytes { get; init; }

    public int FusedGroups => IntegerKernels.Values.Sum();
}

/// <summary>
/// Hidden sub-command <c>measure-peak</c>: quantizes one model and nothing else, so the process's
/// peak working set is the quantization's; writes a <see cref="ChildResult"/> as JSON.
/// </summary>
internal static class QuantizeChild
{
    public static int Run(string[] args)
    {
        string? model = null, calibration = null, output = null, json = null, recipe = Recipes.Ours;
        int? maxSamples = null, latencyRuns = null;
        for (var i = 0; i < args.Length; i++)
        {
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            switch (args[i])
            {
                case "--model-path": model = Next(); break;
                case "--calibration": calibration = Next(); break;
                case "--output": output = Next(); break;
                case "--json": json = Next(); break;
                case "--recipe": recipe = Next(); break;
                case "--max-samples": maxSamples = int.Parse(Next(), CultureInfo.InvariantCulture); break;
                case "--latency-runs": latencyRuns = int.Parse(Next(), CultureInfo.InvariantCulture); break;
                default: throw new ArgumentException($"measure-peak: unknown argument '{args[i]}'");
            }
        }

        if (model is null || calibration is null || output is null || json is null)
        {
            throw new ArgumentException("measure-peak needs --model-path, --calibration, --output and --json");
        }

        var options = Recipes.Options(recipe, maxSamples, latencyRuns);
        long startWorkingSet;
        using (var self = Process.GetCurrentProcess())
        {
            startWorkingSet = self.WorkingSet64;
        }

        var allocatedBefore = GC.GetTotalAllocatedBytes(precise: true);
        var gen2Before = GC.CollectionCount(2);
        var wall = Stopwatch.StartNew();
        long peakAtCalibration = 0, firstCalibration = 0, maxCalibration = 0, peakAtValidation = 0;
        using var me = Process.GetCurrentProcess();
        void OnProgress(QuantizeProgress p)
        {
            me.Refresh();
            if (p.Stage == "calibrating" && p.Done > 0)
            {
                if (peakAtCalibration == 0)
                {
                    peakAtCalibration = me.PeakWorkingSet64;
                    firstCalibration = me.WorkingSet64;
                }

                maxCalibration = Math.Max(maxCalibration, me.WorkingSet64);
            }
            else if (p.Stage == "validating" && peakAtValidation == 0)
            {
                peakAtValidation = me.PeakWorkingSet64;
            }
        }

        var r = new Quantizer(options).Run(model, calibration, output, OnProgress);
        wall.Stop();
        long peak;
        using (var self = Process.GetCurrentProcess())
        {
            self.Refresh();
            peak = self.PeakWorkingSet64;
        }

        var result = new ChildResult
        {
            Recipe = recipe,
            Output = r.Output.ToString(),
            OutputPath = r.OutputPath,
            Fp32Bytes = r.Fp32Bytes,
            Int8Bytes = r.Int8Bytes,
            CalibrationSamples = r.CalibrationSamples,
            CalibrationSeconds = r.CalibrationTime.TotalSeconds,
            EngineTotalSeconds = r.TotalTime.TotalSeconds,
            WallSeconds = wall.Elapsed.TotalSeconds,
            GateFp32Ms = r.Latency.Fp32Milliseconds,
            GateInt8Ms = r.Latency.Int8Milliseconds,
            CalibrationSqnr = r.Fidelity.Select(f => new OutputSqnr(f.Output, f.SqnrDb)).ToList(),
            IntegerKernels = new SortedDictionary<string, int>(r.Fusion.IntegerKernels.ToDictionary(), StringComparer.Ordinal),
            UnfusedNodes = r.Fusion.UnfusedNodes.ToList(),
            RemainingQuantizeLinear = r.Fusion.RemainingQuantizeLinear,
            RemainingDequantizeLinear = r.Fusion.RemainingDequantizeLinear,
            QuantizedNodes = r.QuantizedNodes,
            PerChannel = r.PerChannel,
            Warnings = r.Warnings.Select(w => $"{w.Code}: {w.Message}").ToList(),
            Settings = new SortedDictionary<string, string>(r.Settings.ToDictionary(), StringComparer.Ordinal),
            StartWorkingSetBytes = startWorkingSet,
            PeakWorkingSetBytes = peak,
            PeakAtCalibrationStartBytes = peakAtCalibration,
            CalibrationFirstWorkingSetBytes = firstCalibration,
            CalibrationMaxWorkingSetBytes = maxCalibration,
            PeakAtValidationStartBytes = peakAtValidation,
            AllocatedBytes = GC.GetTotalAllocatedBytes(precise: true) - allocatedBefore,
            Gen2Collections = GC.CollectionCount(2) - gen2Before,
            ManagedCommittedBytes = GC.GetGCMemoryInfo(GCKind.Any).TotalCommittedBytes,
        };
        File.WriteAllText(json, JsonSerializer.Serialize(result, ChildProcess.Json));
        return 0;
    }

    /// <summary>Runs <c>measure-peak</c> in a fresh process of this same program and reads its result.</summary>
    public static ChildResult Spawn(string model, string calibration, string output, string recipe, int? maxSamples = null, int? latencyRuns = null)
    {
        var arguments = new List<string> { "measure-peak", "--model-path", model, "--calibration", calibration, "--output", output, "--recipe", recipe };
        if (maxSamples is int m)
        {
            arguments.AddRange(["--max-samples", m.ToString(CultureInfo.InvariantCulture)]);
        }

        if (latencyRuns is int l)
        {
            arguments.AddRange(["--latency-runs", l.ToString(CultureInfo.InvariantCulture)]);
        }

        return ChildProcess.RunForJson<ChildResult>(arguments, output + ".json", $"measure-peak ({recipe}, {Path.GetFileName(model)})");
    }
}
