using System.Text.Json.Serialization;
using Quantize.Onnx.Reporting;
using Quantize.Onnx.Validation;

namespace Quantize.Onnx;

/// <summary>A warning the engine raised; the build shows it with its code.</summary>
public sealed record Diagnostic(string Code, string? File, string Message);

/// <summary>What the engine shipped.</summary>
public enum OutputKind
{
    /// <summary>The INT8 QDQ model.</summary>
    Quantized,

    /// <summary>The FP32 model, unchanged, because INT8 was not faster (see the warnings).</summary>
    KeptFloat,

    /// <summary>The FP32 model, unchanged, because an accuracy check or the minimum speed-up failed under ship-fp32 (see the warnings).</summary>
    KeptFloatFailedCheck,

    /// <summary>The source model, unchanged apart from provenance: it is already quantized, has nothing to quantize, or cannot be measured without samples (see the warnings).</summary>
    Unchanged,

    /// <summary>Nothing was written: an accuracy check or the minimum speed-up failed (error QNT1401/QNT1402). Only in the reports of that run.</summary>
    NotWritten,
}

/// <summary>Fidelity of INT8 against FP32 for one model output, over the fidelity samples.</summary>
public sealed record OutputFidelity(string Output, double SqnrDb, double MaxAbsError);

public sealed record QuantizeResult
{
    public required string ModelPath { get; init; }

    public required string OutputPath { get; init; }

    public required OutputKind Output { get; init; }

    public required long Fp32Bytes { get; init; }

    /// <summary>Size of the INT8 model (also when the FP32 model was shipped instead).</summary>
    public required long Int8Bytes { get; init; }

    public required int CalibrationSamples { get; init; }

    public required TimeSpan CalibrationTime { get; init; }

    public required TimeSpan TotalTime { get; init; }

    public required LatencyComparison Latency { get; init; }

    public required IReadOnlyList<OutputFidelity> Fidelity { get; init; }

    public required int FidelitySamples { get; init; }

    public required FusionReport Fusion { get; init; }

    public required int QuantizedNodes { get; init; }

    public required bool PerChannel { get; init; }

    public required IReadOnlyList<Diagnostic> Warnings { get; init; }

    public required IReadOnlyDictionary<string, string> Settings { get; init; }

    /// <summary>The accuracy gate's measurements and verdicts; null without validation samples.</summary>
    public ValidationReport? Validation { get; init; }

    /// <summary>What accuracy tuning did (lock file used, search and its attempts); null when tuning is off.</summary>
    public Tuning.TuningReport? Tuning { get; init; }

    /// <summary>The build machine every latency and accuracy figure ran on: CPU and integer kernel class.</summary>
    public Hardware.BuildMachine Machine { get; init; } = Hardware.BuildMachine.Current;

    /// <summary>The int8 weights were made saturation-safe (x64 among the targets, static or dynamic mode): every CPU class computes the same integers.</summary>
    public bool SaturationSafeWeights { get; init; }

    /// <summary>Per declared target: its kernel classes and whether (and how) its arithmetic was validated here; empty when nothing was quantized.</summary>
    public IReadOnlyList<Hardware.TargetCheck> Targets { get; init; } = [];

    /// <summary>How the INT8 model was run for the accuracy figures: natively, or as the exact class's reference.</summary>
    public Hardware.Int8Arithmetic Int8Arithmetic { get; init; }

    /// <summary>
    /// The choices this machine's measurements made, which another machine could make differently (calibrated ranges, bias
    /// shifts, INT8 vs FP32 by speed); empty when a lock file's recorded numbers and decisions were used instead.
    /// </summary>
    public IReadOnlyList<string> DecidedHere { get; init; } = [];

    /// <summary>FP32 and INT8 outputs of a few samples for image-like outputs, for the HTML report (not in the JSON report).</summary>
    [JsonIgnore]
    public IReadOnlyList<OutputSample> ImageSamples { get; init; } = [];

    /// <summary>The result of a model written unchanged (nothing to quantize, already quantized, or not measurable without samples): its own size on both sides, nothing measured.</summary>
    internal static QuantizeResult Unchanged(string modelPath, string outputPath, long bytes, List<Diagnostic> warnings, TimeSpan total, IReadOnlyDictionary<string, string> settings) => new()
    {
        ModelPath = modelPath,
        OutputPath = outputPath,
        Output = OutputKind.Unchanged,
        Fp32Bytes = bytes,
        Int8Bytes = bytes,
        CalibrationSamples = 0,
        CalibrationTime = TimeSpan.Zero,
        TotalTime = total,
        Latency = new LatencyComparison(0, 0),
        Fidelity = [],
        FidelitySamples = 0,
        Fusion = new FusionReport(new Dictionary<string, int>(), [], 0, 0),
        QuantizedNodes = 0,
        PerChannel = false,
        Warnings = warnings,
        Settings = settings,
    };
}
