using System.Diagnostics;
using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using Quantize.Onnx.Decision;
using Quantize.Onnx.Model;
using Quantize.Onnx.Model.Proto;
using Quantize.Onnx.Quantization;
using Quantize.Onnx.Validation;

namespace Quantize.Onnx;

/// <summary>
/// A model that already holds quantized ops (a QAT/QDQ export, QLinear* or integer ops) is not
/// quantized a second time: it is written unchanged apart from provenance, with warning QNT2501 naming
/// what was found. With validation samples its accuracy is still checked, by the same verdicts as an INT8
/// candidate's (<see cref="ShipDecision"/>). There is no FP32 reference, so the model is compared with itself:
/// fidelity checks pass trivially, and the ground-truth metrics (expected/&lt;output&gt;.npy) are the ones that say something.
/// </summary>
internal static class AlreadyQuantized
{
    /// <summary>What provenance says of such a model.</summary>
    public const string Result = "unchanged-already-quantized";

    public static QuantizeResult Ship(
        ModelProto source, IReadOnlyDictionary<string, int> found, string modelPath, string outputPath, string? calibrationFolder,
        QuantizationOptions options, List<Diagnostic> warnings, Stopwatch total, CancellationToken cancellation)
    {
        if (options.UInt8Inputs || options.UInt8Outputs)
        {
            // Shipped unchanged it keeps its float tensors: an app written for bytes would fail at its first Run, after a green build.
            throw new QuantizeException(ErrorCodes.UInt8OnQuantizedModel, modelPath,
                $"The model is already quantized ({QuantizedOps.Describe(found)}), so it would ship unchanged with its float inputs and outputs, but uint8 model I/O " +
                "(QuantizeUInt8Inputs/QuantizeUInt8Outputs, --uint8-inputs/--uint8-outputs) was asked for. Give the FP32 model to quantize it with uint8 I/O, or drop the option.");
        }

        var modelInputs = QuantizeSession.ModelInputs(source);
        var inputNames = modelInputs.Select(i => i.Name).ToList();
        var validationData = QuantizeSession.OpenValidation(options.Validation, calibrationFolder, modelInputs, source.Graph.Output.Select(o => o.Name).ToList(), modelPath, warnings, options.Images, out _);

        // It ships as it is, so ONNX Runtime must at least load it (a broken export is an error, not a warning).
        var bytes = source.ToByteArray();
        try
        {
            using var session = OrtSessions.Create(bytes);
        }
        catch (OnnxRuntimeException e)
        {
            throw new QuantizeException(ErrorCodes.ModelUnsupported, modelPath,
                $"The model holds quantized ops ({QuantizedOps.Describe(found)}) but ONNX Runtime cannot load it: {e.Message}. Check the export: it must run in ONNX Runtime before it can be shipped.", e);
        }

        warnings.Add(new Diagnostic(ErrorCodes.AlreadyQuantized, modelPath,
            $"The model is already quantized ({QuantizedOps.Describe(found)}), so it is written unchanged instead of being quantized twice. " +
            "Give the FP32 model to quantize it with these settings, or set Quantize=\"false\" on the item to copy it without this warning."));

        var validation = validationData is null ? null
            : AccuracyGate.Evaluate(bytes, bytes, inputNames, validationData, options.Validation!.Checks, sameAsCalibration: false, cancellation, binaryThreshold: options.Validation.BinaryThreshold);
        var settings = options.ToSettings();
        var measurements = new Measurements(new FusionReport(new Dictionary<string, int>(), [], 0, 0), bytes.LongLength, bytes.LongLength, new LatencyComparison(0, 0), [], 0, validation);
        var verdict = new ShipDecision(options, modelPath, warnings, Report).Decide(new Measured(null, measurements, null, inputNames, validationData, ""));
        ShippedModel.WriteSource(source, settings, verdict.KeptResult, outputPath);
        return Report(verdict.Kind);

        QuantizeResult Report(OutputKind kind) =>
            QuantizeResult.Unchanged(modelPath, outputPath, bytes.LongLength, warnings, total.Elapsed, settings) with { Output = kind, Validation = validation };
    }
}
