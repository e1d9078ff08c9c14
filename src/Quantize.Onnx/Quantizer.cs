using System.Diagnostics;
using System.Reflection;
using Microsoft.ML.OnnxRuntime;
using Quantize.Onnx.Decision;
using Quantize.Onnx.Hardware;
using Quantize.Onnx.Model;
using Quantize.Onnx.Quantization;
using Quantize.Onnx.Reporting;
using Quantize.Onnx.Tuning;
using Quantize.Onnx.Validation;

namespace Quantize.Onnx;

/// <summary>Progress of a long stage, e.g. ("calibrating", 3, 64), or one tuning attempt ("tuning", 6, 0, "calibration-method=percentile: passes ...").</summary>
public readonly record struct QuantizeProgress(string Stage, int Done, int Total, string? Detail = null);

/// <summary>
/// INT8 post-training quantization of one model, in stages that read top to bottom in <see cref="RunCore"/>:
/// load → prepare (<see cref="QuantizeSession"/>) → build (<see cref="CandidateBuilder"/>, one per mode; the lock
/// file's recipe and numbers when current) → validate and tune (<see cref="TuningStage"/>) → measure
/// (<see cref="Measurement"/>) → decide (<see cref="ShipDecision"/>) → write. An already-quantized model is checked and
/// written unchanged (<see cref="AlreadyQuantized"/>). The source model is only ever read.
/// </summary>
public sealed class Quantizer(QuantizationOptions options)
{
    /// <summary>Without validation data, an INT8 output below this SQNR vs FP32 on the calibration samples is noise, not a quantized model.</summary>
    public const double FidelityFloorDb = 10;

    public static string ToolVersion { get; } =
        typeof(Quantizer).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "0.0.0";

    public QuantizeResult Run(string modelPath, string? calibrationFolder, string outputPath, Action<QuantizeProgress>? progress = null, CancellationToken cancellation = default)
    {
        // Large tensors stay on disk for the whole run, in a work folder beside the output (models over 2 GB).
        using var scope = ExternalDataScope.Begin(outputPath, options.DeferTensorMinBytes, options.InMemoryTensorBudgetBytes, options.DeferTensorFloorBytes, options.PrepackMaxBytes);
        try
        {
            return RunCore(modelPath, calibrationFolder, outputPath, progress, cancellation);
        }
        catch (OnnxRuntimeException e)
        {
            // Anything ORT rejects past preparation is about this model (an op or shape it cannot run), or, without samples,
            // about the made-up input it was timed on (a speech model's minimum length, say).
            var madeUp = calibrationFolder is null && options.Validation?.Folder is null
                ? " No sample inputs were given, so it ran on a made-up one (free dimensions 1, then 32): give real inputs with --calibration or --validation (QuantizeCalibrationData / QuantizeValidationData)."
                : "";
            throw new QuantizeException(ErrorCodes.ModelRunFailed, modelPath, $"ONNX Runtime failed on this model: {e.Message.TrimEnd().TrimEnd('.')}.{madeUp}", e);
        }
    }

    private QuantizeResult RunCore(string modelPath, string? calibrationFolder, string outputPath, Action<QuantizeProgress>? progress, CancellationToken cancellation)
    {
        var total = Stopwatch.StartNew();
        var warnings = new List<Diagnostic>();
        // Before anything long runs: the output is not an input, names a file, and its folder can be written (QNT1006); the options make sense.
        OutputLocations.Check(modelPath, [calibrationFolder, options.Validation?.Folder], [new PlannedOutput(outputPath, "the output model")]);
        options.Check();

        // Load.
        var source = ModelLoader.Load(modelPath);
        if (QuantizedOps.Find(source.Graph) is { Count: > 0 } found)
        {
            return AlreadyQuantized.Ship(source, found, modelPath, outputPath, calibrationFolder, options, warnings, total, cancellation);
        }

        if (calibrationFolder is null && options.Mode == QuantizationMode.Static)
        {
            throw new QuantizeException(ErrorCodes.CalibrationRequired, modelPath,
                "Static quantization needs calibration samples: pass --calibration <folder> (QuantizeCalibrationData), or use --mode dynamic (QuantizeMode=dynamic) or --mode weight4, which need none.");
        }

        // Prepare: samples checked up front, the model prepared; validation runs in the arithmetic of the declared targets, not only of this machine.
        var session = QuantizeSession.Open(source, modelPath, calibrationFolder, options, warnings, progress);
        var targets = TargetsOf(session);

        // Build: the lock file's recipe and recorded numbers when it is current (hashed at most once per run, data files included).
        var calibrated = options.Mode == QuantizationMode.Static;
        var modelHash = new Lazy<string>(() => LockFile.HashOf(modelPath, ExternalDataScope.Current?.SourceFiles ?? []));
        var start = LockFileRecipe.Resolve(options, modelHash, warnings, calibrated);
        var builder = CandidateBuilder.For(options.Mode, session, targets.Arithmetic, warnings, progress, cancellation);
        var replayed = builder.Build(start.Recipe, start.Replay);
        if (replayed is null)
        {
            ShippedModel.WriteSource(source, options.ToSettings(), "kept-fp32-nothing-to-quantize", outputPath);
            return QuantizeResult.Unchanged(modelPath, outputPath, session.Fp32Bytes.LongLength, warnings, total.Elapsed, options.ToSettings());
        }

        if (MadeUpInput.Refusal(session) is { } refusal)
        {
            warnings.Add(refusal);
            ShippedModel.WriteSource(source, options.ToSettings(), "kept-fp32-cannot-measure", outputPath);
            return QuantizeResult.Unchanged(modelPath, outputPath, session.Fp32Bytes.LongLength, warnings, total.Elapsed, options.ToSettings());
        }

        // Validate, and tune (static mode: the only one with calibrated choices) when the gate fails or no lock file says what passes.
        var (candidate, validation, tuning, images) = (replayed, (ValidationReport?)null, start.Tuning, new HtmlReportSamples());
        if (session.Validation is { } validationData)
        {
            var validator = new CandidateValidator(session, validationData, targets.Arithmetic, progress, cancellation);
            validation = validator.Validate(candidate, images);
            if (calibrated && options.Tuning is { Enabled: true, Locked: false } tuningOptions && (tuning is null || !validation.Passed))
            {
                var tuningSource = new SessionTuningSource(session, builder, validator, options.AppThreads, progress);
                (candidate, validation, tuning, images) = TuningStage.Run(tuningSource, validator, options, tuningOptions, candidate, validation, images, tuning, warnings);
            }
        }

        if (StaysFloat.Describe(session.Prepared, session.Types) is { } staysFloat)
        {
            warnings.Add(new Diagnostic(ErrorCodes.StaysFloat, modelPath, staysFloat));
        }

        // Measure.
        progress?.Invoke(new QuantizeProgress("measuring", 0, 1));
        var measured = new Measurement(session, options, targets, warnings, cancellation).Measure(candidate, validation, images);

        // Decide: what ships, from the measurements and, for the candidate built from its numbers, the lock's recorded speed decision.
        var recorded = ReferenceEquals(candidate, replayed) ? start.Recorded : null;
        var verdict = new ShipDecision(options, modelPath, warnings, Report).Decide(
            new Measured(candidate, measured, recorded, session.InputNames, session.Samples, TuningFailure(tuning)));

        // Write: the lock file first, so a fresh one never looks newer than the model (incremental builds).
        tuning = LockRecorder.Record(options, tuning, candidate, measured.Validation, verdict.SpeedShip, measured.Latency.Speedup, modelPath, modelHash, recorded is not null);
        if (verdict.Kind == OutputKind.Quantized)
        {
            ShippedModel.Write(candidate.Shipped, outputPath);
        }
        else
        {
            // With uint8 model I/O the FP32 model keeps the app's contract: bytes in, bytes out, whatever the verdict.
            ShippedModel.WriteSource(UInt8Fallback.Keep(source, candidate), candidate.Options.ToSettings(), verdict.KeptResult, outputPath);
        }

        return Report(verdict.Kind);

        // Also the measurements of a run that fails on a verdict (QNT1401/QNT1402): its reports say what got worse.
        QuantizeResult Report(OutputKind outputKind) => new()
        {
            ModelPath = modelPath,
            OutputPath = outputPath,
            Output = outputKind,
            Fp32Bytes = measured.Fp32Bytes,
            Int8Bytes = measured.Int8Bytes,
            CalibrationSamples = session.CalibrationData?.Count ?? 0,
            CalibrationTime = builder.CalibrationTime,
            TotalTime = total.Elapsed,
            Latency = measured.Latency,
            Fidelity = measured.Fidelity,
            FidelitySamples = measured.FidelitySamples,
            Fusion = measured.Fusion,
            QuantizedNodes = candidate.Plan.QuantizedNodes.Count,
            PerChannel = session.PerChannel && options.PerChannel,
            Warnings = warnings,
            Settings = candidate.Options.ToSettings(),
            Validation = measured.Validation,
            Tuning = tuning,
            ImageSamples = images.Samples,
            Machine = targets.Machine,
            SaturationSafeWeights = options.SaturationSafeWeights && options.Mode is not (QuantizationMode.Fp16 or QuantizationMode.Weight4),
            DecidedHere = recorded is not null ? [] : DecisionsMeasuredHere(candidate.Options, options.KeepFloatIfSlower || options.Validation?.MinSpeedup is not null),
            Targets = targets.Targets,
            Int8Arithmetic = targets.Arithmetic,
        };
    }

    /// <summary>Where the INT8 figures come from: this machine's kernels, or the exact class's reference when only exact targets are declared and this machine saturates.</summary>
    private TargetPlan TargetsOf(QuantizeSession session)
    {
        var cannotSaturate = options.SaturationSafeWeights || options.ReduceRange || options.WeightType == QuantType.UInt8 || options.Mode is QuantizationMode.Fp16 or QuantizationMode.Weight4;
        var exactReferencePossible = options.Mode == QuantizationMode.Static && !session.Prepared.Graph.Node.Any(n => n.OpType == "LSTM");
        return TargetPlan.For(BuildMachine.Current, options.Targets, cannotSaturate, exactReferencePossible);
    }

    private static List<string> DecisionsMeasuredHere(QuantizationOptions used, bool speedDecides)
    {
        var decided = new List<string>();
        if (used.Mode == QuantizationMode.Static)
        {
            decided.Add("calibrated activation ranges");
            if (used.BiasCorrection)
            {
                decided.Add("bias correction");
            }
        }

        if (speedDecides)
        {
            decided.Add("INT8 vs FP32 by measured speed");
        }

        return decided;
    }

    private static string TuningFailure(TuningReport? tuning) => tuning is { Source: "searched", Succeeded: false }
        ? $" Tuning tried {tuning.Attempts.Count} configuration(s) in {tuning.Elapsed.TotalSeconds:F0} s: {tuning.Why}."
        : "";
}
