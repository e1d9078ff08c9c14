using Google.Protobuf;
using Quantize.Onnx.Hardware;
using Quantize.Onnx.Model;
using Quantize.Onnx.Model.Proto;

namespace Quantize.Onnx.Quantization;

/// <summary>
/// The build stage: one builder per mode turns the session's prepared FP32 model into a <see cref="Candidate"/>. The
/// plain run builds one, the tuner (static mode) several. Every mode ends in the same tail (<see cref="Seal"/>).
/// </summary>
internal abstract class CandidateBuilder(QuantizeSession session)
{
    protected QuantizeSession Session { get; } = session;

    /// <summary>Time spent calibrating so far (static mode only).</summary>
    public virtual TimeSpan CalibrationTime => TimeSpan.Zero;

    /// <summary>The candidate built with <paramref name="options"/>; null when the mode finds nothing to quantize (with a warning).</summary>
    /// <param name="replay">Numbers recorded by an earlier run (the lock file), static mode only.</param>
    public abstract Candidate? Build(QuantizationOptions options, BuildNumbers? replay = null);

    /// <param name="arithmetic">How bias correction runs INT8 candidates (see <see cref="TargetPlan"/>).</param>
    public static CandidateBuilder For(QuantizationMode mode, QuantizeSession session, Int8Arithmetic arithmetic, List<Diagnostic> warnings,
        Action<QuantizeProgress>? progress, CancellationToken cancellation) => mode switch
        {
            QuantizationMode.Dynamic => new DynamicBuilder(session, warnings),
            QuantizationMode.Fp16 => new Fp16Builder(session),
            QuantizationMode.Weight4 => new Weight4Builder(session, warnings),
            _ => new StaticBuilder(session, arithmetic, warnings, progress, cancellation),
        };

    /// <summary>The ops every integer mode quantizes beside its own: large embedding tables (int8 per row) and LSTMs (DynamicQuantizeLSTM).</summary>
    protected static void QuantizeEmbeddingsAndLstms(ModelProto quantized, QuantizationOptions options)
    {
        EmbeddingQuantizer.Rewrite(quantized.Graph, options);
        LstmQuantizer.Rewrite(quantized, options);
    }

    /// <summary>The tail of every mode: copies of a weight that only control-flow bodies read stored once, provenance stamped, the model serialised once.</summary>
    protected static Candidate Seal(QuantizationOptions options, ModelProto fp32, ModelProto quantized, QuantizationPlan plan)
    {
        SharedInitializers.Dedupe(quantized);
        Provenance.Stamp(quantized, Quantizer.ToolVersion, options.ToSettings());
        return new Candidate(options, fp32, quantized, quantized.ToByteArray(), plan);
    }
}
