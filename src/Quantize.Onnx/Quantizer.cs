using System.Diagnostics;
using System.Reflection;
using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using Quantize.Onnx.Calibration;
using Quantize.Onnx.Model;
using Quantize.Onnx.Model.Proto;
using Quantize.Onnx.Preparation;
using Quantize.Onnx.Quantization;
using Quantize.Onnx.Validation;

namespace Quantize.Onnx;

/// <summary>Progress of a long stage, e.g. ("calibrating", 3, 64).</summary>
public readonly record struct QuantizeProgress(string Stage, int Done, int Total);

/// <summary>
/// Static INT8 post-training quantization of one model: load → prepare → calibrate → quantize (QDQ)
/// → check with ONNX Runtime (fusion, fidelity, latency) → write atomically. The source model is
/// only ever read.
/// </summary>
public sealed class Quantizer(QuantizationOptions options)
{
    private const int BiasCorrectionSamples = 16;

    public static string ToolVersion { get; } =
        typeof(Quantizer).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "0.0.0";

    public QuantizeResult Run(string modelPath, string calibrationFolder, string outputPath, Action<QuantizeProgress>? progress = null, CancellationToken cancellation = default)
    {
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

    private QuantizeResult RunCore(string modelPath, string calibrationFolder, string outputPath, Action<QuantizeProgress>? progress, CancellationToken cancellation)
    {
        var total = Stopwatch.StartNew();
        var warnings = new List<Diagnostic>();
        if (string.Equals(Path.GetFullPath(modelPath), Path.GetFullPath(outputPath), OperatingSystem.IsWindows() ? StringComparison.OrdinalIgnoreCase : StringComparison.Ordinal))
        {
            throw new QuantizeException(ErrorCodes.OutputNotWritable, modelPath,
                "The output path is the source model itself; the source model is never overwritten. Choose another output path.");
        }

        var source = ModelLoader.Load(modelPath);
        var fp32Bytes = source.ToByteArray();

        // Preparation keeps the graph inputs, so the source's inputs describe the samples.
        var initializerNames = source.Graph.Initializer.Select(t => t.Name).ToHashSet(StringComparer.Ordinal);
        var inputs = source.Graph.Input.Where(i => !initializerNames.Contains(i.Name)).Select(InputSpec.FromValueInfo).ToList();
        var data = CalibrationDataSet.Open(calibrationFolder, inputs, new CalibrationDataSetOptions { MaxSamples = options.MaxCalibrationSamples });
        data.Validate(); // a bad file is reported before a long calibration, not after it
        var gate = options.Validation;
        var validationData = OpenValidation(gate, calibrationFolder, inputs, source.Graph.Output.Select(o => o.Name).ToList(), modelPath, warnings, out var sameAsCalibration);
        var inputNames = inputs.Select(i => i.Name).ToList();

        var prepared = ModelPreparer.Prepare(source, modelPath, options.PerChannel, fp32Bytes, inputNames, data.ReadSample(0), warnings, out var perChannel, out var types);

        var (ranges, calibrationTime) = CalibrateAndEqualize(prepared, types, inputNames, data, progress, cancellation);

        var graph = new GraphView(prepared.Graph);
        var plan = new QdqPlanner(graph, types, ranges, options).Plan();
        var quantized = prepared.Clone();
        quantized.Graph = new QdqWriter(graph, plan, options, perChannel).Write();
        if (options.BiasCorrection)
        {
            var samples = Enumerable.Range(0, Math.Min(BiasCorrectionSamples, data.Count)).Select(data.ReadSample).ToList();
            BiasCorrector.Correct(quantized, prepared, inputNames, samples);
        }

        var settings = options.ToSettings();
        Provenance.Stamp(quantized, ToolVersion, settings);
        var int8Bytes = quantized.ToByteArray();

        progress?.Invoke(new QuantizeProgress("validating", 0, 1));
        var fusion = FusionReport.Analyze(quantized, plan.QuantizedNodes.Select(n => n.Name).ToHashSet(StringComparer.Ordinal));
        if (fusion.UnfusedNodes.Count > 0)
        {
            warnings.Add(new Diagnostic(ErrorCodes.UnfusedGroups, modelPath,
                $"ONNX Runtime did not fuse {fusion.UnfusedNodes.Count} quantized node group(s) into integer kernels: {string.Join(", ", fusion.UnfusedNodes.Take(5))}. Exclude them to keep them float."));
        }

        var fidelitySamples = Math.Min(options.FidelitySamples, data.Count);
        // The HTML report's side-by-side images come from the validation samples, else from these.
        var images = new HtmlReportSamples();
        var fidelity = MeasureFidelity(fp32Bytes, int8Bytes, inputNames, data, fidelitySamples, validationData is null ? images : null);
        LatencyComparison latency;
        using (var feeds = new Feeds(inputNames, data.ReadSample(0)))
        {
            latency = LatencyComparison.Measure(fp32Bytes, int8Bytes, feeds.Values, options.LatencyRuns);
        }

        ValidationReport? validation = null;
        if (validationData is not null)
        {
            progress?.Invoke(new QuantizeProgress("validating", 0, validationData.Count));
            validation = AccuracyGate.Evaluate(fp32Bytes, int8Bytes, inputNames, validationData, gate!.Checks, sameAsCalibration, cancellation, images, gate.BinaryThreshold);
            validation = AccuracyGate.WithLayers(validation, prepared, quantized, plan.QuantizedNodes.Select(n => n.Name).ToHashSet(StringComparer.Ordinal), inputNames, validationData, gate);
        }

        if (validation is not null)
        {
            // Calibration coverage, on the FP32 prepared model (after equalization) with the grids the INT8 model uses.
            // An absorbed Relu/Clip's input never exists in the INT8 model (its producer writes the activation's output).
            var absorbedInputs = plan.AbsorbedActivations.Select(n => n.Input[0]).ToHashSet(StringComparer.Ordinal);
            var grids = plan.ActivationParams.Where(kv => !absorbedInputs.Contains(kv.Key)).ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal);
            if (CalibrationCoverage.Measure(prepared, grids, inputNames, validationData!, cancellation) is { } coverage)
            {
                validation = validation with { Coverage = coverage };
                if (coverage.Poor)
                {
                    warnings.Add(new Diagnostic(ErrorCodes.CalibrationNotRepresentative, modelPath, CalibrationCoverage.WarningMessage(coverage, validationData!.Folder)));
                }
            }
        }

        var kind = OutputKind.Quantized;
        var keptResult = "kept-fp32-int8-not-faster";
        var unfused = fusion.UnfusedNodes.Count == 0 ? "" : $" ONNX Runtime left these quantized node groups un-fused (DQ -> float op -> Q): {string.Join(", ", fusion.UnfusedNodes.Take(8))}{(fusion.UnfusedNodes.Count > 8 ? ", ..." : "")}; excluding them may make INT8 faster.";
        if (gate?.MinSpeedup is double minSpeedup && latency.Speedup < minSpeedup)
        {
            var message = $"The INT8 model is {latency.Speedup:F2}x as fast as FP32 on this machine ({latency.Int8Milliseconds:F2} ms vs {latency.Fp32Milliseconds:F2} ms), below the minimum speed-up {minSpeedup:0.##}x.{unfused}";
            if (gate.OnFailure == AccuracyFailureAction.Error)
            {
                throw new QuantizeException(ErrorCodes.SpeedupTooLow, modelPath,
                    message + " Nothing was written. Lower the minimum speed-up (QuantizeMinSpeedup / --min-speedup), or ship the FP32 model instead with QuantizeOnAccuracyFailure=ship-fp32 (--on-accuracy-failure ship-fp32).")
                {
                    Result = Report(OutputKind.NotWritten),
                };
            }

            kind = OutputKind.KeptFloatFailedCheck;
            keptResult = "kept-fp32-below-min-speedup";
            warnings.Add(new Diagnostic(ErrorCodes.SpeedupTooLowShippedFp32, modelPath, message + " The FP32 model is shipped unchanged."));
        }
        else if (latency.Speedup < 1.0 && options.KeepFloatIfSlower)
        {
            kind = OutputKind.KeptFloat;
            warnings.Add(new Diagnostic(ErrorCodes.KeptFloatNotFaster, modelPath,
                $"The INT8 model is not faster than FP32 on this machine ({latency.Int8Milliseconds:F2} ms vs {latency.Fp32Milliseconds:F2} ms), so the FP32 model is shipped unchanged.{unfused} " +
                "Exclude the op types or nodes that do not gain from int8, or set keep-float-if-slower to false to ship INT8 anyway."));
        }

        if (kind == OutputKind.Quantized && validation is { Passed: false })
        {
            var message = AccuracyGate.FailureMessage(modelPath, validation, options.ExcludedNodes, gate!.WorstLayerCount);
            if (gate.OnFailure == AccuracyFailureAction.Error)
            {
                throw new QuantizeException(ErrorCodes.AccuracyCheckFailed, modelPath, message +
                    " Nothing was written. To ship the FP32 model instead, set QuantizeOnAccuracyFailure=ship-fp32 (--on-accuracy-failure ship-fp32).")
                {
                    Result = Report(OutputKind.NotWritten),
                };
            }

            kind = OutputKind.KeptFloatFailedCheck;
            keptResult = "kept-fp32-accuracy-check-failed";
            warnings.Add(new Diagnostic(ErrorCodes.AccuracyCheckFailedShippedFp32, modelPath, message + " The FP32 model is shipped unchanged."));
        }

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
            Fp32Bytes = fp32Bytes.LongLength,
            Int8Bytes = int8Bytes.LongLength,
            CalibrationSamples = data.Count,
            CalibrationTime = calibrationTime,
            TotalTime = total.Elapsed,
            Latency = latency,
            Fidelity = fidelity,
            FidelitySamples = fidelitySamples,
            Fusion = fusion,
            QuantizedNodes = plan.QuantizedNodes.Count,
            PerChannel = perChannel,
            Warnings = warnings,
            Settings = settings,
            Validation = validation,
            ImageSamples = images.Samples,
        };
    }

    /// <summary>The validation samples of the accuracy gate, checked up front like the calibration samples; null without a validation folder.</summary>
    private static CalibrationDataSet? OpenValidation(
        ValidationOptions? gate, string calibrationFolder, IReadOnlyList<InputSpec> inputs, IReadOnlyList<string> outputs, string modelPath, List<Diagnostic> warnings, out bool sameAsCalibration)
    {
        sameAsCalibration = false;
        if (gate?.Folder is not { } folder)
        {
            return null;
        }

        // A check naming an output the model does not have fails now, not after calibration.
        if (gate.Checks.FirstOrDefault(c => c.Output is not null && !outputs.Contains(c.Output, StringComparer.Ordinal)) is { } unknown)
        {
            throw new QuantizeException(ErrorCodes.InvalidOption, null,
                $"Accuracy check '{unknown.Spec}' names output '{unknown.Output}', but the model's outputs are: {string.Join(", ", outputs)}.");
        }

        if (!Directory.Exists(folder))
        {
            throw new QuantizeException(ErrorCodes.CalibrationFolderMissing, folder,
                $"Validation folder '{folder}' does not exist. Point it at a folder holding one sub-folder per sample (the calibration layout, optionally with expected/<output>.npy).");
        }

        var data = CalibrationDataSet.Open(folder, inputs, new CalibrationDataSetOptions { MaxSamples = gate.MaxSamples });
        data.Validate();
        sameAsCalibration = string.Equals(
            Path.TrimEndingDirectorySeparator(Path.GetFullPath(folder)), Path.TrimEndingDirectorySeparator(Path.GetFullPath(calibrationFolder)),
            OperatingSystem.IsWindows() ? StringComparison.OrdinalIgnoreCase : StringComparison.Ordinal);
        if (sameAsCalibration)
        {
            warnings.Add(new Diagnostic(ErrorCodes.ValidatingOnCalibration, modelPath,
                $"The validation folder is the calibration folder ('{folder}'): validating on calibration samples overstates accuracy. Keep separate samples for validation."));
        }

        return data;
    }

    /// <summary>
    /// One calibration pass. Cross-layer equalization needs per-channel ranges of the tensors it
    /// rescales; they come from the same pass, and the per-tensor ranges of those tensors are derived
    /// from them after rescaling (<paramref name="prepared"/>'s weights are rescaled in place).
    /// </summary>
    private (Dictionary<string, TensorRange> Ranges, TimeSpan Elapsed) CalibrateAndEqualize(
        ModelProto prepared, TensorTypes types, IReadOnlyList<string> inputNames, CalibrationDataSet data,
        Action<QuantizeProgress>? progress, CancellationToken cancellation)
    {
        var pairs = options.Equalize ? CrossLayerEqualizer.FindPairs(prepared.Graph) : [];
        var channelTensors = pairs.SelectMany(p => p.Tensors).Where(t => types[t]?.Rank >= 3).ToHashSet(StringComparer.Ordinal);
        var timer = Stopwatch.StartNew();
        var tensors = FloatActivations(prepared, types).Where(t => !channelTensors.Contains(t)).ToList();
        var (ranges, channelRanges) = MinMaxCalibrator.Collect(prepared, inputNames, tensors, channelTensors, data,
            done => progress?.Invoke(new QuantizeProgress("calibrating", done, data.Count)), cancellation);
        timer.Stop();

        var divisors = CrossLayerEqualizer.Equalize(prepared.Graph, pairs, channelRanges);
        foreach (var (tensor, channels) in channelRanges)
        {
            ranges[tensor] = divisors.TryGetValue(tensor, out var d) ? CrossLayerEqualizer.ScaledRange(channels, d) : channels.Overall;
        }

        return (ranges, timer.Elapsed);
    }

    private static List<string> FloatActivations(ModelProto model, TensorTypes types)
    {
        var initializers = model.Graph.Initializer.Select(t => t.Name).ToHashSet(StringComparer.Ordinal);
        return model.Graph.Input.Select(i => i.Name)
            .Concat(model.Graph.Node.SelectMany(n => n.Output))
            .Where(n => n.Length > 0 && !initializers.Contains(n) && types.IsFloat32(n))
            .Distinct(StringComparer.Ordinal)
            .ToList();
    }

    private static List<OutputFidelity> MeasureFidelity(byte[] fp32, byte[] int8, IReadOnlyList<string> inputNames, CalibrationDataSet data, int samples, HtmlReportSamples? images)
    {
        var sqnr = new Dictionary<string, SqnrAccumulator>(StringComparer.Ordinal);
        var maxError = new Dictionary<string, double>(StringComparer.Ordinal);
        using var fp32Runner = new ModelRunner(fp32, inputNames);
        using var int8Runner = new ModelRunner(int8, inputNames);
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
