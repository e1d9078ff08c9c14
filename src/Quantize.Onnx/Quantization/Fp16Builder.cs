namespace Quantize.Onnx.Quantization;

/// <summary>Whole-model FP16: every float weight stored as FLOAT16 behind a Cast; nothing is quantized to integers.</summary>
internal sealed class Fp16Builder(QuantizeSession session) : CandidateBuilder(session)
{
    public override Candidate Build(QuantizationOptions options, BuildNumbers? replay = null)
    {
        var fp32 = Session.Prepared.Clone();
        var converted = fp32.Clone();
        Fp16Weights.Convert(converted);
        return Seal(options, fp32, converted, new QuantizationPlan());
    }
}
