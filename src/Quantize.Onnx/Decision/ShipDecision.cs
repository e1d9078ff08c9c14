using Quantize.Onnx.Quantization;
using Quantize.Onnx.Samples;
using Quantize.Onnx.Tuning;
using Quantize.Onnx.Validation;

namespace Quantize.Onnx.Decision;

/// <summary>What the verdicts are made from.</summary>
/// <param name="Candidate">The INT8 candidate; null for a model that came already quantized and ships as it is.</param>
/// <param name="TuningFailure">What a failed tuning search tried, appended to a failing gate's message ("" otherwise).</param>
internal sealed record Measured(
    Candidate? Candidate, Measurements Measurements, RecordedRun? Recorded, IReadOnlyList<string> InputNames, SampleSet? Data, string TuningFailure);

/// <summary>What ships: INT8, or FP32 and why (<paramref name="KeptResult"/>, stamped in provenance), and the speed decision a lock file records.</summary>
internal sealed record ShipVerdict(OutputKind Kind, string KeptResult, string SpeedShip);

/// <summary>
/// The decide stage of one run, in order: ship guards (no integer kernel, not smaller), speed (the lock's recorded
/// decision, else the minimum speed-up and "slower beyond noise" at the app's thread count), the fidelity floor without
/// validation data, the accuracy gate. An already-quantized model meets only the gate (there is nothing else to
/// ship). A failing verdict under <see cref="AccuracyFailureAction.Error"/> throws with the
/// run's report (<paramref name="report"/>); under ship-fp32 it keeps FP32 with a warning.
/// </summary>
internal sealed class ShipDecision(QuantizationOptions options, string modelPath, List<Diagnostic> warnings, Func<OutputKind, QuantizeResult> report)
{
    private string Fp32Ships => ShipGuards.Fp32Ships(options);

    public ShipVerdict Decide(Measured m)
    {
        var candidate = m.Candidate;
        var kind = candidate is null ? OutputKind.Unchanged : OutputKind.Quantized;
        var keptResult = candidate is null ? AlreadyQuantized.Result : RecordedRun.KeptNotFaster;
        var (fusion, latency, fidelity, validation, recorded) = (m.Measurements.Fusion, m.Measurements.Latency, m.Measurements.Fidelity, m.Measurements.Validation, m.Recorded);
        var gate = options.Validation;
        var floatByDesign = options.Mode is QuantizationMode.Fp16 or QuantizationMode.Weight4;
        var guard = !options.KeepFloatIfSlower || candidate is null ? null : ShipGuards.NotWorthShipping(fusion, m.Measurements.Fp32Bytes, m.Measurements.Int8Bytes, floatByDesign, Fp32Ships);
        if (guard is { } notWorthIt)
        {
            kind = OutputKind.KeptFloat;
            keptResult = notWorthIt.Result;
            warnings.Add(new Diagnostic(notWorthIt.Code, modelPath, notWorthIt.Message));
        }

        var unfused = fusion.UnfusedNodes.Count == 0 ? "" : $" ONNX Runtime left these quantized node groups un-fused (DQ -> float op -> Q): {string.Join(", ", fusion.UnfusedNodes.Take(8))}{(fusion.UnfusedNodes.Count > 8 ? ", ..." : "")}; excluding them may make INT8 faster.";
        // With a lock file that recorded the ship decision, the speed measured here informs the report but does not decide:
        // another machine, or this one under load, must not ship different bytes.
        var speedDecided = recorded is not null;
        var speedShip = RecordedRun.ShipInt8;
        if (speedDecided && recorded!.KeepsFp32ForSpeed && kind == OutputKind.Quantized)
        {
            kind = recorded.Ship == RecordedRun.KeptBelowMinSpeedup ? OutputKind.KeptFloatFailedCheck : OutputKind.KeptFloat;
            keptResult = speedShip = recorded.Ship;
            warnings.Add(new Diagnostic(recorded.Ship == RecordedRun.KeptBelowMinSpeedup ? ErrorCodes.SpeedupTooLowShippedFp32 : ErrorCodes.KeptFloatNotFaster, modelPath,
                $"The lock file records that FP32 ships ({recorded.Ship}: INT8 was {recorded.Speedup:0.00}x as fast on {recorded.MeasuredOn}); this machine measured {latency.Speedup:F2}x. " +
                $"Delete the lock file, or rebuild with tuning or QuantizeLock (--lock), to decide again. {Fp32Ships}"));
        }

        // A speed verdict must not flip on a noisy sample: only a speed-up whose whole 95 % interval is below the bar fails it.
        if (!speedDecided && kind == OutputKind.Quantized && gate?.MinSpeedup is double minSpeedup && (latency.SpeedupInterval?.High ?? latency.Speedup) < minSpeedup)
        {
            var message = $"The INT8 model is {latency.Speedup:F2}x as fast as FP32 on this machine ({latency.Int8Milliseconds:F2} ms vs {latency.Fp32Milliseconds:F2} ms, {latency.ThreadsText}, 95 % interval {latency.SpeedupInterval}), below the minimum speed-up {minSpeedup:0.##}x.{unfused}";
            if (gate.OnFailure == AccuracyFailureAction.Error)
            {
                throw new QuantizeException(ErrorCodes.SpeedupTooLow, modelPath,
                    message + " Nothing was written. Lower the minimum speed-up (QuantizeMinSpeedup / --min-speedup), or ship the FP32 model instead with QuantizeOnAccuracyFailure=ship-fp32 (--on-accuracy-failure ship-fp32).")
                {
                    Result = report(OutputKind.NotWritten),
                };
            }

            kind = OutputKind.KeptFloatFailedCheck;
            keptResult = speedShip = RecordedRun.KeptBelowMinSpeedup;
            warnings.Add(new Diagnostic(ErrorCodes.SpeedupTooLowShippedFp32, modelPath, message + " " + Fp32Ships));
        }
        else if (!speedDecided && kind == OutputKind.Quantized && latency.Verdict == SpeedVerdict.Slower && options.KeepFloatIfSlower && !floatByDesign) // FP16 and 4-bit weights aim at size and memory traffic, not at this batch's speed
        {
            kind = OutputKind.KeptFloat;
            speedShip = RecordedRun.KeptNotFaster;
            warnings.Add(new Diagnostic(ErrorCodes.KeptFloatNotFaster, modelPath,
                $"The INT8 model is slower than FP32 on this machine beyond its timing noise ({latency.Int8Milliseconds:F2} ms vs {latency.Fp32Milliseconds:F2} ms, {latency.ThreadsText}, speed-up {latency.Speedup:F2}x, 95 % interval {latency.SpeedupInterval}).{unfused} {Fp32Ships} " +
                "Exclude the op types or nodes that do not gain from int8, or set keep-float-if-slower to false to ship INT8 anyway."));
        }

        if (kind == OutputKind.Quantized && validation is null && fidelity.Count > 0 && fidelity.MinBy(f => f.SqnrDb) is { SqnrDb: < Quantizer.FidelityFloorDb } noise)
        {
            // No validation data, so nobody set a threshold: a default floor keeps noise from shipping silently.
            var layers = ShipGuards.WorstLayers(candidate!, m.InputNames, m.Data!, gate ?? new ValidationOptions());
            var message = $"INT8 output '{noise.Output}' is {noise.SqnrDb:F1} dB SQNR from FP32 on {m.Measurements.FidelitySamples} calibration sample(s), below the {Quantizer.FidelityFloorDb:0} dB floor that applies without validation data: " +
                $"the quantized model would compute noise. Likely causes: activation ranges that the calibration samples do not represent (check that they are preprocessed as the app feeds the model), " +
                $"or layers that do not survive 8 bits{layers}. Give validation samples with your own checks (QuantizeValidationData / --validation, --check), or keep the worst layers float (QuantizeExcludeNodes / --exclude-nodes).";
            if (gate?.OnFailure != AccuracyFailureAction.ShipFp32)
            {
                throw new QuantizeException(ErrorCodes.FidelityTooLow, modelPath, message + " Nothing was written; to ship the FP32 model instead, set QuantizeOnAccuracyFailure=ship-fp32 (--on-accuracy-failure ship-fp32).")
                {
                    Result = report(OutputKind.NotWritten),
                };
            }

            kind = OutputKind.KeptFloatFailedCheck;
            keptResult = "kept-fp32-fidelity-below-floor";
            warnings.Add(new Diagnostic(ErrorCodes.FidelityTooLowShippedFp32, modelPath, message + " " + Fp32Ships));
        }

        if (kind is OutputKind.Quantized or OutputKind.Unchanged && validation is { Passed: false })
        {
            var message = candidate is null
                ? $"The already-quantized model fails its accuracy checks on {validation.Samples} validation sample(s): " + string.Join(", ", validation.Checks.Where(c => !c.Passed).Select(c => c.Describe())) + "."
                : AccuracyGate.FailureMessage(modelPath, validation, candidate.Options.ExcludedNodes, gate!.WorstLayerCount) + m.TuningFailure;
            if (gate!.OnFailure == AccuracyFailureAction.Error)
            {
                throw new QuantizeException(ErrorCodes.AccuracyCheckFailed, modelPath, message + (candidate is null ? " Nothing was written."
                    : " Nothing was written. To ship the FP32 model instead, set QuantizeOnAccuracyFailure=ship-fp32 (--on-accuracy-failure ship-fp32)."))
                {
                    Result = report(OutputKind.NotWritten),
                };
            }

            if (candidate is null)
            {
                warnings.Add(new Diagnostic(ErrorCodes.AccuracyCheckFailedShippedFp32, modelPath, message + " There is no FP32 model to ship instead; it is written unchanged."));
            }
            else
            {
                kind = OutputKind.KeptFloatFailedCheck;
                keptResult = "kept-fp32-accuracy-check-failed";
                warnings.Add(new Diagnostic(ErrorCodes.AccuracyCheckFailedShippedFp32, modelPath, message + " " + Fp32Ships));
            }
        }

        return new ShipVerdict(kind, keptResult, speedShip);
    }
}
