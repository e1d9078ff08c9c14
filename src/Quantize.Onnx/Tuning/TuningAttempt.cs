using System.Text.Json.Serialization;

namespace Quantize.Onnx.Tuning;

/// <summary>One configuration the tuner built and validated.</summary>
/// <param name="Step">What the attempt tried, e.g. "calibration-method=percentile" or "float: Conv_4, Conv_6".</param>
/// <param name="Passed">Every accuracy check passed.</param>
/// <param name="Margin">How far the worst check is from its threshold, in units of the threshold (≥ 0: passes).</param>
/// <param name="Checks">Each check as measured (e.g. "drop:psnr&lt;=1: 0.84 dB").</param>
/// <param name="FloatNodes">Nodes kept float by the tuner (besides the user's exclusions).</param>
/// <param name="Int8Bytes">Size of the candidate model.</param>
/// <param name="Speedup">INT8 vs FP32 latency on this machine, measured for passing attempts only.</param>
public sealed record TuningAttempt(
    int Number, string Step, bool Passed, double Margin, IReadOnlyList<string> Checks, IReadOnlyList<string> FloatNodes, long Int8Bytes, double? Speedup)
{
    [JsonIgnore]
    internal IReadOnlyDictionary<string, string> Settings { get; init; } = new Dictionary<string, string>();

    /// <summary>The speed-up the search predicted for this float set before building it (with a minimum speed-up only; not for probes).</summary>
    public double? PredictedSpeedup { get; init; }
}

/// <summary>What tuning did for one model: used the lock file, searched, or found the plain configuration passes.</summary>
public sealed record TuningReport
{
    /// <summary>"lock-file" (the recipe came from the lock file), "searched", or "not-needed" (the plain configuration passed).</summary>
    public required string Source { get; init; }

    /// <summary>The search found a passing configuration (or the lock file's configuration was used).</summary>
    public required bool Succeeded { get; init; }

    public required IReadOnlyList<TuningAttempt> Attempts { get; init; }

    /// <summary>The settings of the configuration shipped.</summary>
    public required IReadOnlyDictionary<string, string> Chosen { get; init; }

    /// <summary>Nodes kept float by the tuner (besides the user's exclusions).</summary>
    public required IReadOnlyList<string> FloatNodes { get; init; }

    /// <summary>One sentence: what was chosen and why.</summary>
    public required string Why { get; init; }

    public string? LockFile { get; init; }

    public bool LockFileWritten { get; init; }

    public TimeSpan Elapsed { get; init; }
}
