using Quantize.Onnx.Hardware;
using Quantize.Onnx.Quantization;
using Quantize.Onnx.Validation;

namespace Quantize.Onnx.Tuning;

/// <summary>
/// Writes the lock file after a tuning search (or a plain configuration tuning found passing), or whenever
/// <see cref="TuningOptions.Record"/> asks: the recipe, the float set and what this machine measured. Not in locked mode,
/// and not when the run replayed a current lock (it would write the same text). Written before the model, so a fresh
/// lock file never looks newer than the output (incremental builds).
/// </summary>
internal static class LockRecorder
{
    /// <param name="ship">The speed decision (<see cref="RecordedRun.Ship"/>).</param>
    public static TuningReport? Record(
        QuantizationOptions options, TuningReport? report, Candidate candidate, ValidationReport? validation, string ship, double speedup, string modelPath,
        Lazy<string> modelHash, bool replayed)
    {
        if (options.Tuning is not { LockFile: { } path, Locked: false } tuning || replayed
            || !(tuning.Record || (tuning.Enabled && report is { Source: "searched" or "not-needed", Succeeded: true })))
        {
            return report;
        }

        report ??= new TuningReport
        {
            Source = "recorded",
            Succeeded = true,
            Attempts = [],
            Chosen = candidate.Options.ToSettings(),
            FloatNodes = [],
            Why = "recorded by QuantizeLock / --lock",
            LockFile = path,
        };
        var recipe = report.Chosen.Where(kv => LockFile.TunedSettings.Contains(kv.Key) && kv.Key != "exclude-nodes").ToDictionary();
        var numbers = candidate.Numbers;
        var recorded = new RecordedRun(
            numbers?.Ranges ?? new Dictionary<string, Calibration.TensorRange>(), numbers?.Channels ?? new Dictionary<string, Calibration.ChannelRange>(),
            numbers?.BiasShifts ?? new Dictionary<string, int[]>(), ship, BuildMachine.Current.ClassLabel, speedup);
        var checks = validation is null ? "" : $" ({string.Join("; ", validation.Checks.Select(c => c.Describe()))})";
        new LockFile(Path.GetFileName(modelPath), modelHash.Value, options.Validation?.Checks.Select(c => c.Spec).ToList() ?? [],
            LockFile.BaseOf(options), new SortedDictionary<string, string>(recipe, StringComparer.Ordinal), report.FloatNodes, report.Why + checks)
        {
            Recorded = recorded,
        }.Write(path);
        return report with { LockFileWritten = true };
    }
}
