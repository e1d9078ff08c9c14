namespace Quantize.Onnx.Tuning;

/// <summary>
/// Accuracy-driven tuning: when the accuracy gate fails, search for the cheapest configuration that passes,
/// and remember it in a lock file so later builds reproduce it without searching.
/// </summary>
public sealed record TuningOptions
{
    /// <summary>Search when the gate fails (needs validation data), and write the lock file.</summary>
    public bool Enabled { get; init; }

    /// <summary>
    /// The lock file (e.g. <c>model.quantization.json</c> next to the model): read when present and current,
    /// written after a search. Null: no lock file.
    /// </summary>
    public string? LockFile { get; init; }

    /// <summary>
    /// Write the lock file after every run that is not locked, tuned or not: the recipe and what this machine measured (calibrated
    /// ranges, bias shifts, the INT8-vs-FP32 decision), so that with the file committed every build machine writes the same bytes.
    /// </summary>
    public bool Record { get; init; }

    /// <summary>CI mode: the lock file must exist and be current; never search, never write it.</summary>
    public bool Locked { get; init; }

    /// <summary>Most candidate models built and validated in one search.</summary>
    public int MaxAttempts { get; init; } = 48;

    /// <summary>The lock file beside a model: <c>sr.onnx</c> → <c>sr.quantization.json</c>.</summary>
    public static string DefaultLockFile(string modelPath) => Common.WorkerProtocol.LockFilePath(modelPath);

    /// <summary>Wall-clock budget of one search; the best configuration so far is reported when it runs out.</summary>
    public TimeSpan TimeBudget { get; init; } = TimeSpan.FromMinutes(10);
}
