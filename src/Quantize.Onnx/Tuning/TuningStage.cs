using Quantize.Onnx.Quantization;
using Quantize.Onnx.Reporting;
using Quantize.Onnx.Validation;

namespace Quantize.Onnx.Tuning;

/// <summary>What ships after tuning: the candidate, its validation (with the report's images), and the tuning report.</summary>
internal sealed record Tuned(Candidate Candidate, ValidationReport Validation, TuningReport Report, HtmlReportSamples Images);

/// <summary>
/// Tuning after the plain candidate's validation: nothing to do when it passes (the lock file then records it), else a
/// search (<see cref="Tuner"/>); the winner is validated again for the report's images.
/// </summary>
internal static class TuningStage
{
    public static Tuned Run(
        ITuningSource source, CandidateValidator validator, QuantizationOptions options, TuningOptions tuning, Candidate plain, ValidationReport plainValidation,
        HtmlReportSamples images, TuningReport? fromLock, List<Diagnostic> warnings)
    {
        if (plainValidation.Passed)
        {
            return new Tuned(plain, plainValidation, new TuningReport
            {
                Source = "not-needed",
                Succeeded = true,
                Attempts = [],
                Chosen = plain.Options.ToSettings(),
                FloatNodes = [],
                Why = "the plain configuration passes every check",
                LockFile = tuning.LockFile,
            }, images);
        }

        if (fromLock is not null)
        {
            warnings.Add(new Diagnostic(ErrorCodes.LockFileStale, tuning.LockFile,
                $"The configuration in the quantization lock file '{tuning.LockFile}' no longer passes the accuracy checks (the calibration or validation data changed?); searching again, which rewrites the lock file: commit the new one."));
        }

        var (candidate, _, report) = new Tuner(source, options, tuning).Search(plain, plainValidation);
        if (candidate is null)
        {
            return new Tuned(plain, plainValidation, report, images);
        }

        var winnerImages = new HtmlReportSamples();
        return new Tuned(candidate, validator.Validate(candidate, winnerImages), report, winnerImages);
    }
}
