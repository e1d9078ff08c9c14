using Quantize.Onnx.Model.Proto;

namespace Quantize.Onnx.Quantization;

/// <summary>
/// What the QDQ writer will do: which nodes run quantized, which Relu/Clip nodes disappear into their
/// producer, and the scale/zero point of every activation that gets a QuantizeLinear.
/// </summary>
internal sealed class QuantizationPlan
{
    public HashSet<NodeProto> QuantizedNodes { get; } = new(ReferenceEqualityComparer.Instance);

    /// <summary>Absorbed Relu/Clip nodes; their producer writes their output directly.</summary>
    public HashSet<NodeProto> AbsorbedActivations { get; } = new(ReferenceEqualityComparer.Instance);

    public Dictionary<string, QuantParams> ActivationParams { get; } = new(StringComparer.Ordinal);

    /// <summary>Quantized MatMuls whose output stays float (no QuantizeLinear): ORT runs them as MatMulIntegerToFloat.</summary>
    public HashSet<NodeProto> FloatOutputNodes { get; } = new(ReferenceEqualityComparer.Instance);

    /// <summary>Why nodes of a supported op type stayed float, for the report.</summary>
    public List<string> Notes { get; } = [];
}
