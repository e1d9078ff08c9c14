using Quantize.Onnx.Quantization;

namespace Quantize.Onnx.Tuning;

/// <summary>The recipe a run builds first, where it came from, and the numbers and decisions a current lock file recorded.</summary>
internal sealed record StartingRecipe(QuantizationOptions Recipe, TuningReport? Tuning, RecordedRun? Recorded)
{
    /// <summary>The recorded numbers a static build replays instead of calibrating; null without a current lock file.</summary>
    public BuildNumbers? Replay => Recorded is null ? null : new BuildNumbers(Recorded.Ranges, Recorded.Channels, Recorded.BiasShifts);
}

/// <summary>
/// Reads the lock file before a run builds anything: its recipe when it is current. In locked mode (CI) a missing or
/// stale lock file is an error; otherwise a stale one is re-tuned (after a failing plain build) with a warning.
/// </summary>
internal static class LockFileRecipe
{
    /// <param name="calibrated">Static mode: the lock's recipe applies and locked mode requires it; other modes use only its recorded ship decision.</param>
    public static StartingRecipe Resolve(QuantizationOptions options, Lazy<string> modelHash, List<Diagnostic> warnings, bool calibrated)
    {
        if (options.Tuning is not { LockFile: { } path } tuning || (!calibrated && !File.Exists(path)))
        {
            return new StartingRecipe(options, null, null);
        }

        var checks = options.Validation?.Checks.Select(c => c.Spec).ToList() ?? [];
        var stale = "it does not exist";
        if (File.Exists(path))
        {
            var locked = LockFile.Read(path);
            stale = locked.StaleReason(modelHash.Value, checks, options);
            if (stale is null)
            {
                var recipe = calibrated ? locked.Apply(options) : options;
                return new StartingRecipe(recipe, new TuningReport
                {
                    Source = "lock-file",
                    Succeeded = true,
                    Attempts = [],
                    Chosen = recipe.ToSettings(),
                    FloatNodes = locked.FloatNodes,
                    Why = $"the configuration in {Path.GetFileName(path)} (model and checks unchanged): {locked.Why}",
                    LockFile = path,
                }, locked.Recorded);
            }
        }

        if (tuning.Locked && calibrated)
        {
            throw new QuantizeException(ErrorCodes.LockFileNotCurrent, path,
                $"Locked tuning needs a current quantization lock file, but '{path}' is not current: {stale}. " +
                "Build once with tuning enabled (QuantizeTune=true / --tune) and commit the lock file it writes, or turn off locked mode (QuantizeTuneLocked=false / --tune-locked false).");
        }

        if (File.Exists(path))
        {
            warnings.Add(new Diagnostic(ErrorCodes.LockFileStale, path,
                $"The quantization lock file '{path}' is stale ({stale}); the model is quantized with its own settings{(tuning.Enabled ? " and re-tuned if they fail, which rewrites the lock file: commit the new one" : "; enable tuning (QuantizeTune=true / --tune) to refresh it")}."));
        }

        return new StartingRecipe(options, null, null);
    }
}
