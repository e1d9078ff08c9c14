using System.Diagnostics;
using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using Quantize.Onnx.Model;
using Quantize.Onnx.Model.Proto;
using Quantize.Onnx.Quantization;
using Quantize.Onnx.Reporting;
using Quantize.Onnx.Samples;
using Quantize.Onnx.Validation;

namespace Quantize.Onnx;

/// <summary>
/// A model that already holds quantized ops (a QAT/QDQ export, QLinear* or integer ops) is not
/// quantized a second time: it is written unchanged apart from provenance, with warning QNT2501 naming
/// what was found. With validation samples its accuracy is still checked. There is no FP32 reference,
/// so the model is compared with itself: fidelity checks pass trivially, and the ground-truth metrics
/// (expected/&lt;output&gt;.npy) are the ones that say something.
/// </summary>
internal static class AlreadyQuantized
{
    public static QuantizeResult Ship(
        ModelProto source, IReadOnlyDictionary<string, int> found, string modelPath, string outputPath, IReadOnlyList<string> inputNames,
        SampleSet? validationData, QuantizationOptions options, List<Diagnostic> warnings, Stopwatch total, CancellationToken cancellation)
    {
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

        ValidationReport? validation = null;
        if (validationData is not null)
        {
            var gate = options.Validation!;
            validation = AccuracyGate.Evaluate(bytes, bytes, inputNames, validationData, gate.Checks, sameAsCalibration: false, cancellation, binaryThreshold: gate.BinaryThreshold);
            if (!validation.Passed)
            {
                var message = $"The already-quantized model fails its accuracy checks on {validation.Samples} validation sample(s): " +
                    string.Join(", ", validation.Checks.Where(c => !c.Passed).Select(c => c.Describe())) + ".";
                if (gate.OnFailure == AccuracyFailureAction.Error)
                {
                    throw new QuantizeException(ErrorCodes.AccuracyCheckFailed, modelPath, message + " Nothing was written.");
                }

                warnings.Add(new Diagnostic(ErrorCodes.AccuracyCheckFailedShippedFp32, modelPath, message + " There is no FP32 model to ship instead; it is written unchanged."));
            }
        }

        var result = Quantizer.Unchanged(source, bytes, modelPath, outputPath, "unchanged-already-quantized", warnings, total, options.ToSettings());
        return result with { Validation = validation };
    }
}
