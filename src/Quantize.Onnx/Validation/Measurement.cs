using Quantize.Onnx.Hardware;
using Quantize.Onnx.Model;
using Quantize.Onnx.Quantization;
using Quantize.Onnx.Reporting;
using Quantize.Onnx.Samples;

namespace Quantize.Onnx.Validation;

/// <summary>What the measure stage found about the candidate that may ship.</summary>
internal sealed record Measurements(
    FusionReport Fusion, long Fp32Bytes, long Int8Bytes, LatencyComparison Latency, IReadOnlyList<OutputFidelity> Fidelity, int FidelitySamples, ValidationReport? Validation);

/// <summary>
/// The measure stage: ORT's fusion of the candidate (integer kernels, un-fused groups), fidelity vs FP32 on real
/// samples in the targets' arithmetic, latency at the app's thread count, and with validation data the per-layer
/// analysis and calibration coverage. Findings that are not verdicts become warnings here.
/// </summary>
internal sealed class Measurement(QuantizeSession session, QuantizationOptions options, TargetPlan targets, List<Diagnostic> warnings, CancellationToken cancellation)
{
    public Measurements Measure(Candidate candidate, ValidationReport? validation, HtmlReportSamples images)
    {
        var modelPath = session.ModelPath;
        var (quantized, plan) = (candidate.Quantized, candidate.Plan);
        var fusion = FusionReport.Analyze(quantized, candidate.QuantizedNodeNames);
        if (fusion.UnfusedNodes.Count > 0)
        {
            warnings.Add(new Diagnostic(ErrorCodes.UnfusedGroups, modelPath,
                $"ONNX Runtime did not fuse {fusion.UnfusedNodes.Count} quantized node group(s) into integer kernels: {string.Join(", ", fusion.UnfusedNodes.Take(5))}. Exclude them to keep them float."));
        }

        if (options.Mode == QuantizationMode.Dynamic && fusion.IntegerKernels.GetValueOrDefault("MatMulInteger") is var unfusedDynamic and > 0)
        {
            warnings.Add(new Diagnostic(ErrorCodes.UnfusedGroups, modelPath,
                $"ONNX Runtime left {unfusedDynamic} of {plan.QuantizedNodes.Count} dynamically quantized MatMul/Gemm as MatMulInteger + Cast + Mul instead of fusing them into DynamicQuantizeMatMul / MatMulIntegerToFloat; they run slower than they could."));
        }

        // Fidelity on real samples (calibration, else validation); a model given without any is only timed, on made-up inputs.
        var data = session.Samples;
        var fidelitySamples = data is null ? 0 : Math.Min(options.FidelitySamples, data.Count);
        var fidelity = data is null ? [] : Fidelity(candidate.Int8Bytes, data, fidelitySamples, session.Validation is null ? images : null);
        if (fusion.FusedCount > 0)
        {
            foreach (var target in targets.NotValidated)
            {
                warnings.Add(new Diagnostic(ErrorCodes.TargetNotValidated, modelPath,
                    $"Target {target.Target} was not validated: its integer arithmetic ({target.Arithmetic}) was {target.How}. The figures are this machine's; validate the model on a {target.Target} machine, or add x64 to the targets (QuantizeTargets / --target) for saturation-safe weights that every CPU computes alike."));
            }
        }

        LatencyComparison latency;
        using (var feeds = new Feeds(session.InputNames, session.FirstSample))
        {
            latency = LatencyComparison.Measure(session.Fp32Bytes, candidate.Int8Bytes, feeds.Values, options.LatencyRuns, threads: options.AppThreads);
        }

        if (validation is not null)
        {
            validation = Analyse(candidate, validation, session.Validation!);
        }

        return new Measurements(fusion, session.Fp32Bytes.LongLength + ExternalDataScope.ExternalBytes(session.Source),
            candidate.ShippedBytes.LongLength + ExternalDataScope.ExternalBytes(candidate.Shipped), latency, fidelity, fidelitySamples, validation);
    }

    /// <summary>The per-layer analysis and, for calibrated modes, calibration coverage of a validated candidate.</summary>
    private ValidationReport Analyse(Candidate candidate, ValidationReport validation, SampleSet validationData)
    {
        var (quantized, plan) = (candidate.Quantized, candidate.Plan);
        validation = AccuracyGate.WithLayers(validation, candidate.Fp32, quantized, candidate.QuantizedNodeNames, session.InputNames, validationData, options.Validation!);
        if (options.Mode is QuantizationMode.Dynamic or QuantizationMode.Weight4)
        {
            return validation;
        }

        // Calibration coverage, on the FP32 prepared model (after equalization) with the grids the INT8 model uses.
        // An absorbed Relu/Clip's input never exists in the INT8 model (its producer writes the activation's output).
        var absorbedInputs = plan.AbsorbedActivations.Select(n => n.Input[0]).ToHashSet(StringComparer.Ordinal);
        var grids = plan.ActivationParams.Where(kv => !absorbedInputs.Contains(kv.Key)).ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal);
        if (CalibrationCoverage.Measure(candidate.Fp32, grids, session.InputNames, validationData, cancellation, candidate.Saturation) is { } coverage)
        {
            validation = validation with { Coverage = coverage };
            if (coverage.Poor)
            {
                warnings.Add(new Diagnostic(ErrorCodes.CalibrationNotRepresentative, session.ModelPath, CalibrationCoverage.WarningMessage(coverage, validationData.Folder)));
            }
        }

        return validation;
    }

    /// <summary>SQNR and largest error of each output vs FP32 over the first <paramref name="samples"/> samples, in the targets' arithmetic.</summary>
    private List<OutputFidelity> Fidelity(byte[] int8, SampleSet data, int samples, HtmlReportSamples? images)
    {
        var sqnr = new Dictionary<string, SqnrAccumulator>(StringComparer.Ordinal);
        var maxError = new Dictionary<string, double>(StringComparer.Ordinal);
        using var fp32Runner = new ModelRunner(session.Fp32Bytes, session.InputNames);
        using var int8Runner = new ModelRunner(int8, session.InputNames, targets.Arithmetic);
        foreach (var sample in data.ReadSpread(samples))
        {
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
