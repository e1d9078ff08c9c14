using System.Diagnostics;
using System.Reflection;
using Microsoft.ML.OnnxRuntime;
using Quantize.Onnx.Calibration;
using Quantize.Onnx.Decision;
using Quantize.Onnx.Hardware;
using Quantize.Onnx.Model;
using Quantize.Onnx.Model.Proto;
using Quantize.Onnx.Quantization;
using Quantize.Onnx.Reporting;
using Quantize.Onnx.Samples;
using Quantize.Onnx.Tuning;
using Quantize.Onnx.Validation;

namespace Quantize.Onnx;

/// <summary>Progress of a long stage, e.g. ("calibrating", 3, 64).</summary>
public readonly record struct QuantizeProgress(string Stage, int Done, int Total);

/// <summary>
/// INT8 post-training quantization of one model: load → prepare → quantize, either static (calibrate,
/// QDQ) or dynamic (int8 MatMul/Gemm weights, activations quantized at run time) → check with ONNX
/// Runtime (fusion, fidelity, latency, accuracy gate) → write atomically. An already-quantized model is
/// written unchanged (<see cref="AlreadyQuantized"/>). The source model is only ever read.
/// </summary>
public sealed class Quantizer(QuantizationOptions options)
{
    /// <summary>Without validation data, an INT8 output below this SQNR vs FP32 on the calibration samples is noise, not a quantized model.</summary>
    public const double FidelityFloorDb = 10;

    /// <summary>Most intra-op threads an app may declare; latency is measured at no more than this machine's cores.</summary>
    public const int MaxAppThreads = 1024;

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
            // Anything ORT rejects past preparation is about this model (an op or shape it cannot run).
            throw new QuantizeException(ErrorCodes.ModelRunFailed, modelPath, $"ONNX Runtime failed on this model: {e.Message}", e);
        }
    }

    private QuantizeResult RunCore(string modelPath, string? calibrationFolder, string outputPath, Action<QuantizeProgress>? progress, CancellationToken cancellation)
    {
        var total = Stopwatch.StartNew();
        var warnings = new List<Diagnostic>();
        // Before anything long runs: the output is not an input, names a file, and its folder can be written (QNT1006).
        OutputLocations.Check(modelPath, [calibrationFolder, options.Validation?.Folder], [new PlannedOutput(outputPath, "the output model")]);

        if (options.AppThreads is < 0 or > MaxAppThreads)
        {
            throw new QuantizeException(ErrorCodes.InvalidOption, null,
                $"The app's thread count must be 0 (ORT's default, one per core) to {MaxAppThreads}, got {options.AppThreads}. Set --app-threads (QuantizeAppThreads) to the intra-op threads your application's session uses.");
        }

        if (options.CalibrationMethod == CalibrationMethod.Percentile && !(options.CalibrationPercentile is > 50 and <= 100))
        {
            throw new QuantizeException(ErrorCodes.InvalidCalibrationPercentile, null,
                $"The calibration percentile must be above 50 and at most 100 (the share of values kept, in %), got {options.CalibrationPercentile.ToString(System.Globalization.CultureInfo.InvariantCulture)}. Typical values: 99.9 to 99.999.");
        }

        var source = ModelLoader.Load(modelPath);
        var alreadyQuantized = QuantizedOps.Find(source.Graph);
        var dynamic = options.Mode == QuantizationMode.Dynamic;
        if (dynamic && options.ActivationType != QuantType.UInt8)
        {
            throw new QuantizeException(ErrorCodes.DynamicActivationType, null,
                "Dynamic quantization quantizes activations to uint8 at run time (DynamicQuantizeLinear has no int8 form); remove --activation-type int8 (QuantizeActivationType) or use static mode.");
        }

        var fp16 = options.Mode == QuantizationMode.Fp16;
        var weight4 = options.Mode == QuantizationMode.Weight4;
        CheckWeight4Options(options);
        if (calibrationFolder is null && !dynamic && !fp16 && !weight4 && alreadyQuantized.Count == 0)
        {
            throw new QuantizeException(ErrorCodes.CalibrationRequired, modelPath,
                "Static quantization needs calibration samples: pass --calibration <folder> (QuantizeCalibrationData), or use --mode dynamic (QuantizeMode=dynamic) or --mode weight4, which need none.");
        }

        if (alreadyQuantized.Count > 0)
        {
            var modelInputs = QuantizeSession.ModelInputs(source);
            var validationSamples = QuantizeSession.OpenValidation(options.Validation, calibrationFolder, modelInputs, source.Graph.Output.Select(o => o.Name).ToList(), modelPath, warnings, options.Images, out _);
            return AlreadyQuantized.Ship(source, alreadyQuantized, modelPath, outputPath, modelInputs.Select(i => i.Name).ToList(), validationSamples, options, warnings, total, cancellation);
        }

        var session = QuantizeSession.Open(source, modelPath, calibrationFolder, options, warnings, progress, cancellation);
        var (fp32Bytes, inputNames, data, validationData) = (session.Fp32Bytes, session.InputNames, session.Samples, session.Validation);
        var gate = options.Validation;

        // Validate in the arithmetic of the declared targets, not only of this machine (see TargetPlan).
        var cannotSaturate = options.SaturationSafeWeights || options.ReduceRange || options.WeightType == QuantType.UInt8 || fp16 || weight4;
        var exactReferencePossible = options.Mode == QuantizationMode.Static && !session.Prepared.Graph.Node.Any(n => n.OpType == "LSTM");
        var targets = TargetPlan.For(BuildMachine.Current, options.Targets, cannotSaturate, exactReferencePossible);
        session.Arithmetic = targets.Arithmetic;

        // Tuning searches static configurations; the other modes have no calibrated choices to tune.
        var calibrated = !dynamic && !fp16 && !weight4;
        // Hashed at most once per run, data files included (they hold the weights of a model with external data).
        var dataFiles = ExternalDataScope.Current?.SourceFiles ?? [];
        var modelHash = new Lazy<string>(() => LockFile.HashOf(modelPath, dataFiles));
        var (recipe, tuning, recorded) = ApplyLockFile(options, modelHash, warnings, calibrated);
        var candidate = options.Mode switch
        {
            QuantizationMode.Dynamic => session.BuildDynamic(recipe, warnings),
            QuantizationMode.Fp16 => session.BuildFp16(recipe),
            QuantizationMode.Weight4 => session.BuildWeight4(recipe, warnings),
            _ => session.Build(recipe, recorded is null ? null : new BuildNumbers(recorded.Ranges, recorded.Channels, recorded.BiasShifts)),
        };
        var replayed = recorded is null ? null : candidate;
        if (candidate is null)
        {
            return Unchanged(source, fp32Bytes, modelPath, outputPath, "kept-fp32-nothing-to-quantize", warnings, total, options.ToSettings());
        }

        // The HTML report's side-by-side images come from the validation samples, else from the calibration samples.
        var images = new HtmlReportSamples();
        ValidationReport? validation = null;
        if (validationData is not null)
        {
            validation = session.Validate(candidate, images);
            if (calibrated && options.Tuning is { Enabled: true, Locked: false } tuningOptions && (tuning is null || !validation.Passed))
            {
                (candidate, validation, tuning) = Tune(session, candidate, validation, tuningOptions, tuning, modelPath, modelHash, warnings, ref images);
            }
        }

        // The lock's recorded decisions hold for the candidate built from its numbers, not for one tuning found instead.
        recorded = ReferenceEquals(candidate, replayed) ? recorded : null;
        var (quantized, plan, int8Bytes) = (candidate.Quantized, candidate.Plan, candidate.Int8Bytes);
        if (StaysFloat.Describe(session.Prepared) is { } staysFloat)
        {
            warnings.Add(new Diagnostic(ErrorCodes.StaysFloat, modelPath, staysFloat));
        }

        var settings = candidate.Options.ToSettings();

        progress?.Invoke(new QuantizeProgress("validating", 0, 1));
        var fusion = FusionReport.Analyze(quantized, plan.QuantizedNodes.Select(n => n.Name).ToHashSet(StringComparer.Ordinal));
        if (fusion.UnfusedNodes.Count > 0)
        {
            warnings.Add(new Diagnostic(ErrorCodes.UnfusedGroups, modelPath,
                $"ONNX Runtime did not fuse {fusion.UnfusedNodes.Count} quantized node group(s) into integer kernels: {string.Join(", ", fusion.UnfusedNodes.Take(5))}. Exclude them to keep them float."));
        }

        if (dynamic && fusion.IntegerKernels.GetValueOrDefault("MatMulInteger") is var unfusedDynamic and > 0)
        {
            warnings.Add(new Diagnostic(ErrorCodes.UnfusedGroups, modelPath,
                $"ONNX Runtime left {unfusedDynamic} of {plan.QuantizedNodes.Count} dynamically quantized MatMul/Gemm as MatMulInteger + Cast + Mul instead of fusing them into DynamicQuantizeMatMul / MatMulIntegerToFloat; they run slower than they could."));
        }

        // Fidelity on real samples (calibration, else validation); a model given without any is only timed, on made-up inputs.
        var fidelitySamples = data is null ? 0 : Math.Min(options.FidelitySamples, data.Count);
        var fidelity = data is null ? [] : MeasureFidelity(fp32Bytes, int8Bytes, inputNames, data, fidelitySamples, validationData is null ? images : null, targets.Arithmetic);
        if (fusion.FusedCount > 0)
        {
            foreach (var target in targets.NotValidated)
            {
                warnings.Add(new Diagnostic(ErrorCodes.TargetNotValidated, modelPath,
                    $"Target {target.Target} was not validated: its integer arithmetic ({target.Arithmetic}) was {target.How}. The figures are this machine's; validate the model on a {target.Target} machine, or add x64 to the targets (QuantizeTargets / --target) for saturation-safe weights that every CPU computes alike."));
            }
        }

        LatencyComparison latency;
        using (var feeds = new Feeds(inputNames, session.FirstSample))
        {
            latency = LatencyComparison.Measure(fp32Bytes, int8Bytes, feeds.Values, options.LatencyRuns, threads: options.AppThreads);
        }

        if (validation is not null)
        {
            validation = AccuracyGate.WithLayers(validation, candidate.Fp32, quantized, plan.QuantizedNodes.Select(n => n.Name).ToHashSet(StringComparer.Ordinal), inputNames, validationData!, gate!);
        }

        if (validation is not null && !dynamic && !weight4)
        {
            // Calibration coverage, on the FP32 prepared model (after equalization) with the grids the INT8 model uses.
            // An absorbed Relu/Clip's input never exists in the INT8 model (its producer writes the activation's output).
            var absorbedInputs = plan.AbsorbedActivations.Select(n => n.Input[0]).ToHashSet(StringComparer.Ordinal);
            var grids = plan.ActivationParams.Where(kv => !absorbedInputs.Contains(kv.Key)).ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal);
            if (CalibrationCoverage.Measure(candidate.Fp32, grids, inputNames, validationData!, cancellation, candidate.Saturation) is { } coverage)
            {
                validation = validation with { Coverage = coverage };
                if (coverage.Poor)
                {
                    warnings.Add(new Diagnostic(ErrorCodes.CalibrationNotRepresentative, modelPath, CalibrationCoverage.WarningMessage(coverage, validationData!.Folder)));
                }
            }
        }

        // Decide: what ships, from the measurements (and the lock's recorded speed decision); failing verdicts throw.
        var verdict = new ShipDecision(options, modelPath, warnings, Report).Decide(new Measured(
            candidate, fusion, fp32Bytes.LongLength + ExternalDataScope.ExternalBytes(session.Source), int8Bytes.LongLength + ExternalDataScope.ExternalBytes(quantized),
            latency, fidelity, fidelitySamples, validation, recorded, inputNames, data, TuningFailure(tuning)));
        var (kind, keptResult) = (verdict.Kind, verdict.KeptResult);

        // The lock file is written before the model, so a fresh one never looks newer than the output (incremental builds).
        tuning = WriteLock(tuning, candidate, validation, verdict.SpeedShip, latency.Speedup, modelPath, modelHash, recorded is not null);

        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(outputPath))!);
        if (kind == OutputKind.Quantized)
        {
            ModelWriter.Save(quantized, outputPath);
        }
        else
        {
            // The FP32 graph and weights ship unchanged; provenance still says what the tool decided.
            var kept = source.Clone();
            Provenance.Stamp(kept, ToolVersion, new SortedDictionary<string, string>(settings.ToDictionary(), StringComparer.Ordinal)
            {
                ["result"] = keptResult,
            });
            ModelWriter.Save(kept, outputPath);
        }

        return Report(kind);

        // Also the measurements of a run that fails on a verdict (QNT1401/QNT1402): its reports say what got worse.
        QuantizeResult Report(OutputKind outputKind) => new()
        {
            ModelPath = modelPath,
            OutputPath = outputPath,
            Output = outputKind,
            Fp32Bytes = fp32Bytes.LongLength + ExternalDataScope.ExternalBytes(session.Source),
            Int8Bytes = int8Bytes.LongLength + ExternalDataScope.ExternalBytes(quantized),
            CalibrationSamples = session.CalibrationData?.Count ?? 0,
            CalibrationTime = session.CalibrationTime,
            TotalTime = total.Elapsed,
            Latency = latency,
            Fidelity = fidelity,
            FidelitySamples = fidelitySamples,
            Fusion = fusion,
            QuantizedNodes = plan.QuantizedNodes.Count,
            PerChannel = session.PerChannel && options.PerChannel,
            Warnings = warnings,
            Settings = settings,
            Validation = validation,
            Tuning = tuning,
            ImageSamples = images.Samples,
            Machine = targets.Machine,
            SaturationSafeWeights = options.SaturationSafeWeights && !fp16 && !weight4,
            DecidedHere = recorded is not null ? [] : DecisionsMeasuredHere(candidate.Options, options.KeepFloatIfSlower || gate?.MinSpeedup is not null),
            Targets = targets.Targets,
            Int8Arithmetic = targets.Arithmetic,
        };
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

    /// <summary>Block size and accuracy level are checked in every mode: a bad value in a shared project setting should not wait for a weight4 model.</summary>
    private static void CheckWeight4Options(QuantizationOptions options)
    {
        if (!Block4Quantizer.IsSupportedBlockSize(options.BlockSize))
        {
            throw new QuantizeException(ErrorCodes.InvalidBlockSize, null,
                $"The 4-bit block size must be a power of two from 16 to 256 (16, 32, 64, 128 or 256; ONNX Runtime's MatMulNBits kernels support no others), got {options.BlockSize}. Set --block-size (QuantizeBlockSize); 32 is the default.");
        }

        if (options.AccuracyLevel is < 0 or > 4)
        {
            throw new QuantizeException(ErrorCodes.InvalidAccuracyLevel, null,
                $"The MatMulNBits accuracy level must be 0 (unset), 1 (fp32), 2 (fp16), 3 (bf16) or 4 (int8 compute), got {options.AccuracyLevel}. Set --accuracy-level (QuantizeAccuracyLevel).");
        }
    }

    /// <summary>
    /// The recipe to build first: the lock file's when it is current. In locked mode (CI) a missing or stale
    /// lock file is an error; otherwise a stale one is re-tuned (after a failing plain build) with a warning.
    /// </summary>
    /// <param name="calibrated">Static mode: the lock's recipe applies and locked mode requires it; other modes use only its recorded ship decision.</param>
    private static (QuantizationOptions Recipe, TuningReport? Tuning, RecordedRun? Recorded) ApplyLockFile(QuantizationOptions options, Lazy<string> modelHash, List<Diagnostic> warnings, bool calibrated)
    {
        if (options.Tuning is not { LockFile: { } path } tuning || (!calibrated && !File.Exists(path)))
        {
            return (options, null, null);
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
                return (recipe, new TuningReport
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

        return (options, null, null);
    }

    /// <summary>Searches after a failing (or first) validation and writes the lock file; returns what ships and the tuning report.</summary>
    private (Candidate, ValidationReport, TuningReport) Tune(
        QuantizeSession session, Candidate plain, ValidationReport plainValidation, TuningOptions tuning, TuningReport? fromLock, string modelPath,
        Lazy<string> modelHash, List<Diagnostic> warnings, ref HtmlReportSamples images)
    {
        if (plainValidation.Passed)
        {
            var report = new TuningReport
            {
                Source = "not-needed",
                Succeeded = true,
                Attempts = [],
                Chosen = plain.Options.ToSettings(),
                FloatNodes = [],
                Why = "the plain configuration passes every check",
                LockFile = tuning.LockFile,
            };
            return (plain, plainValidation, report);
        }

        if (fromLock is not null)
        {
            warnings.Add(new Diagnostic(ErrorCodes.LockFileStale, tuning.LockFile,
                $"The configuration in the quantization lock file '{tuning.LockFile}' no longer passes the accuracy checks (the calibration or validation data changed?); searching again, which rewrites the lock file: commit the new one."));
        }

        var (candidate, validation, searched) = new Tuner(session, options, tuning).Search(plain, plainValidation);
        if (candidate is null)
        {
            return (plain, plainValidation, searched);
        }

        images = new HtmlReportSamples();
        validation = session.Validate(candidate, images);
        return (candidate, validation!, searched);
    }

    /// <summary>
    /// Writes the lock file after a tuning search (or a plain configuration tuning found passing), or whenever
    /// <see cref="TuningOptions.Record"/> asks: the recipe, the float set and what this machine measured. Not in locked mode,
    /// and not when the run replayed a current lock (it would write the same text).
    /// </summary>
    private TuningReport? WriteLock(TuningReport? report, Candidate candidate, ValidationReport? validation, string ship, double speedup, string modelPath, Lazy<string> modelHash, bool replayed)
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
            numbers?.Ranges ?? new Dictionary<string, TensorRange>(), numbers?.Channels ?? new Dictionary<string, ChannelRange>(),
            numbers?.BiasShifts ?? new Dictionary<string, int[]>(), ship, BuildMachine.Current.ClassLabel, speedup);
        var checks = validation is null ? "" : $" ({string.Join("; ", validation.Checks.Select(c => c.Describe()))})";
        new LockFile(Path.GetFileName(modelPath), modelHash.Value, options.Validation?.Checks.Select(c => c.Spec).ToList() ?? [],
            LockFile.BaseOf(options), new SortedDictionary<string, string>(recipe, StringComparer.Ordinal), report.FloatNodes, report.Why + checks)
        {
            Recorded = recorded,
        }.Write(path);
        return report with { LockFileWritten = true };
    }

    private static string TuningFailure(TuningReport? tuning) => tuning is { Source: "searched", Succeeded: false }
        ? $" Tuning tried {tuning.Attempts.Count} configuration(s) in {tuning.Elapsed.TotalSeconds:F0} s: {tuning.Why}."
        : "";

    /// <summary>The source model written unchanged apart from provenance (nothing to quantize, or already quantized).</summary>
    internal static QuantizeResult Unchanged(ModelProto source, byte[] bytes, string modelPath, string outputPath, string why, List<Diagnostic> warnings, Stopwatch total, IReadOnlyDictionary<string, string> settings)
    {
        var kept = source.Clone();
        Provenance.Stamp(kept, ToolVersion, new SortedDictionary<string, string>(settings.ToDictionary(), StringComparer.Ordinal) { ["result"] = why });
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(outputPath))!);
        ModelWriter.Save(kept, outputPath);
        return new QuantizeResult
        {
            ModelPath = modelPath,
            OutputPath = outputPath,
            Output = OutputKind.Unchanged,
            Fp32Bytes = bytes.LongLength,
            Int8Bytes = bytes.LongLength,
            CalibrationSamples = 0,
            CalibrationTime = TimeSpan.Zero,
            TotalTime = total.Elapsed,
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

    private static List<OutputFidelity> MeasureFidelity(byte[] fp32, byte[] int8, IReadOnlyList<string> inputNames, SampleSet data, int samples, HtmlReportSamples? images, Int8Arithmetic arithmetic)
    {
        var sqnr = new Dictionary<string, SqnrAccumulator>(StringComparer.Ordinal);
        var maxError = new Dictionary<string, double>(StringComparer.Ordinal);
        using var fp32Runner = new ModelRunner(fp32, inputNames);
        using var int8Runner = new ModelRunner(int8, inputNames, arithmetic);
        for (var s = 0; s < samples; s++)
        {
            var sample = data.ReadSample(s);
            var expected = fp32Runner.Run(sample);
            var actual = int8Runner.Run(sample);
            foreach (var (name, reference) in expected)
            {
                if (!sqnr.TryGetValue(name, out var acc))
                {
                    sqnr[name] = acc = new SqnrAccumulator();
                }

                var values = actual[name].Values;
                images?.Offer(HtmlReportSamples.SampleName(sample.Source), name, reference.Shape, reference.Values, values);
                acc.Add(reference.Values, values);
                var err = 0.0;
                for (var i = 0; i < values.Length; i++)
                {
                    err = Math.Max(err, Math.Abs(reference.Values[i] - values[i]));
                }

                maxError[name] = Math.Max(maxError.GetValueOrDefault(name), err);
            }
        }

        return sqnr.Select(kv => new OutputFidelity(kv.Key, kv.Value.Decibels, maxError[kv.Key])).ToList();
    }
}
