using Microsoft.ML.OnnxRuntime;
using Quantize.Onnx.Samples;
using Quantize.Onnx.Validation;

namespace Quantize.Onnx.Decision;

/// <summary>
/// Without samples (dynamic, fp16 and weight4 modes need none) INT8 is timed and compared on a made-up input
/// (<see cref="SyntheticSample"/>). A model that refuses it (a speech model's STFT padding needs more samples than the
/// made-up 32) cannot be measured, so nothing says INT8 is worth shipping: the model is written unchanged, as when
/// there is nothing to quantize, with warning QNT2503 saying to give samples.
/// </summary>
internal static class MadeUpInput
{
    /// <returns>The warning when the FP32 model refuses the session's made-up input; null when it runs, or the session has real samples.</returns>
    public static Diagnostic? Refusal(QuantizeSession session)
    {
        if (session.FirstSample.Source != SyntheticSample.Source)
        {
            return null;
        }

        try
        {
            ModelRunner.RunOnce(session.Fp32Bytes, session.InputNames, session.FirstSample);
            return null;
        }
        catch (OnnxRuntimeException e)
        {
            var shapes = string.Join(", ", session.FirstSample.Inputs.Select(t => $"'{t.Name}' {ElementTypes.FormatShape(t.Shape)}"));
            return new Diagnostic(ErrorCodes.CannotMeasureWithoutSamples, session.ModelPath,
                $"The model was written unchanged: without samples its INT8 form is measured on a made-up input ({shapes}), which ONNX Runtime refuses " +
                $"({e.Message.Trim()}), so nothing shows INT8 is faster and faithful. Give sample inputs with --calibration or --validation " +
                "(QuantizeCalibrationData / QuantizeValidationData).");
        }
    }
}
