using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using Quantize.Onnx.Model;
using Quantize.Onnx.Model.Proto;

namespace Quantize.Onnx.Calibration;

/// <summary>ORT sessions and runs of the calibrators, with ORT's failures turned into QNT1301 naming the sample.</summary>
internal static class CalibrationRuns
{
    public static InferenceSession CreateSession(ModelProto model, SessionOptions options)
    {
        try
        {
            return OrtSessions.Create(model.ToByteArray(), options);
        }
        catch (OnnxRuntimeException e)
        {
            throw new QuantizeException(ErrorCodes.ModelRunFailed, null,
                $"ONNX Runtime could not load the model for calibration: {e.Message}", e);
        }
    }

    public static IDisposableReadOnlyCollection<OrtValue> Run(
        InferenceSession session, RunOptions runOptions, Dictionary<string, OrtValue> feeds, string[] outputNames, string source)
    {
        try
        {
            return session.Run(runOptions, feeds, outputNames);
        }
        catch (OnnxRuntimeException e)
        {
            throw new QuantizeException(ErrorCodes.ModelRunFailed, source,
                $"ONNX Runtime failed to run the model on this calibration sample: {e.Message}. Check that the sample matches what the model expects.", e);
        }
    }
}
