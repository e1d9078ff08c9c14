namespace Quantize.Onnx.Validation;

/// <summary>What happens when a check of the accuracy gate (or the minimum speed-up) fails.</summary>
public enum AccuracyFailureAction
{
    /// <summary>Error QNT1401 / QNT1402; nothing is written.</summary>
    Error,

    /// <summary>Warning QNT2401 / QNT2402; the unchanged FP32 model (with provenance) is written instead.</summary>
    ShipFp32,
}

/// <summary>The accuracy gate of one model: validation samples, checks, and what a failure does.</summary>
public sealed record ValidationOptions
{
    /// <summary>Folder of validation samples (calibration layout, optional <c>expected/&lt;output&gt;.npy</c> per sample); null: no gate.</summary>
    public string? Folder { get; init; }

    /// <summary>The checks; empty means the defaults (<see cref="AccuracyCheck.Defaults"/>) when <see cref="Folder"/> is set.</summary>
    public IReadOnlyList<AccuracyCheck> Checks { get; init; } = [];

    public AccuracyFailureAction OnFailure { get; init; } = AccuracyFailureAction.Error;

    /// <summary>Minimum INT8 speed-up over FP32 (e.g. 1.2); null: no latency gate.</summary>
    public double? MinSpeedup { get; init; }

    /// <summary>Output and expected values at or above it are positives for precision, recall and F1 (e.g. 0.3 for a text-probability map).</summary>
    public double BinaryThreshold { get; init; } = 0.5;

    /// <summary>Use at most this many validation samples (in folder order).</summary>
    public int? MaxSamples { get; init; }

    /// <summary>Validation samples used for the per-layer SQNR of a failing gate (a few suffice).</summary>
    public int LayerSamples { get; init; } = 3;

    /// <summary>Most bytes of intermediate tensors exported per run for the per-layer SQNR (more passes if needed).</summary>
    public long LayerBudgetBytes { get; init; } = 256L * 1024 * 1024;

    /// <summary>Layers named in a failure message.</summary>
    public int WorstLayerCount { get; init; } = 3;
}
