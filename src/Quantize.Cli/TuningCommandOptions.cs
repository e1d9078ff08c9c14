using System.CommandLine;
using Quantize.Common;
using Quantize.Onnx;
using Quantize.Onnx.Tuning;

namespace Quantize.Cli;

/// <summary>The options of accuracy tuning and the lock file (<see cref="TuningOptions"/>), declared and read together.</summary>
internal sealed class TuningCommandOptions
{
    private readonly Option<bool> _tune = new(WorkerSwitches.Tune)
    {
        Description = "When the accuracy gate fails, search for a configuration that passes (other equalization/bias-correction/per-channel/calibration choices, " +
            "then the cheapest set of sensitive nodes kept float that passes with a margin, within --min-speedup when set) and write it to the lock file. Needs --validation.",
    };
    private readonly Option<bool> _tuneLocked = new(WorkerSwitches.TuneLocked)
    {
        Description = "CI mode: the lock file must exist and match the model, checks and settings (else error QNT1403); never search or write it.",
    };
    private readonly Option<FileInfo?> _lockFile = new("--lock-file")
    {
        Description = $"The quantization lock file (default: <model>{WorkerProtocol.LockFileSuffix} beside the model). Used whenever it exists and is current; written by --tune. Commit it.",
    };
    private readonly Option<bool> _recordLock = new(WorkerSwitches.Lock)
    {
        Description = "Write the lock file (see --lock-file) after the run, tuned or not: the recipe and what this machine measured (calibrated ranges, bias-correction shifts, " +
            "INT8 vs FP32 by speed). With it committed every build machine, VNNI or not, loaded or idle, writes the same bytes, and calibration is skipped.",
    };
    private readonly Option<int> _tuneMaxAttempts = new(WorkerSwitches.TuneMaxAttempts) { Description = "Most configurations one search builds and validates (default 48).", DefaultValueFactory = _ => 48 };
    private readonly Option<int> _tuneTimeBudget = new(WorkerSwitches.TuneTimeBudget) { Description = "Seconds one search may take (default 600); the best result so far is reported.", DefaultValueFactory = _ => 600 };

    public IEnumerable<Option> All => [_tune, _tuneLocked, _lockFile, _recordLock, _tuneMaxAttempts, _tuneTimeBudget];

    /// <summary>The tuning the command line asks for; impossible values are QNT1201.</summary>
    /// <param name="hasValidation">Validation samples were given: tuning searches on them.</param>
    public TuningOptions Read(ParseResult parse, string modelPath, bool hasValidation)
    {
        if (parse.GetValue(_tuneMaxAttempts) < 1 || parse.GetValue(_tuneTimeBudget) < 1)
        {
            throw new QuantizeException(ErrorCodes.InvalidOption, null, "--tune-max-attempts and --tune-time-budget must be at least 1.");
        }

        if (parse.GetValue(_tune) && !hasValidation)
        {
            throw new QuantizeException(ErrorCodes.InvalidOption, null, "--tune needs validation samples (--validation): tuning searches for a configuration that passes the accuracy checks on them.");
        }

        return new TuningOptions
        {
            Enabled = parse.GetValue(_tune),
            Locked = parse.GetValue(_tuneLocked),
            Record = parse.GetValue(_recordLock),
            LockFile = parse.GetValue(_lockFile)?.FullName ?? TuningOptions.DefaultLockFile(modelPath),
            MaxAttempts = parse.GetValue(_tuneMaxAttempts),
            TimeBudget = TimeSpan.FromSeconds(parse.GetValue(_tuneTimeBudget)),
        };
    }
}
