using Quantize.Onnx.Calibration;
using Quantize.Onnx.Model.Proto;

namespace Quantize.Onnx.Quantization;

/// <summary>One INT8 model built from the session's FP32 model with one set of options.</summary>
/// <param name="Fp32">The prepared FP32 model this candidate was quantized from (equalized when the options say so).</param>
internal sealed record Candidate(QuantizationOptions Options, ModelProto Fp32, ModelProto Quantized, byte[] Int8Bytes, QuantizationPlan Plan)
{
    /// <summary>Per tensor, where all its consumers saturate (saturation-aware ranges); values beyond are not clipping that matters.</summary>
    public IReadOnlyDictionary<string, (double Low, double High)> Saturation { get; init; } = new Dictionary<string, (double Low, double High)>();

    public IReadOnlySet<string> QuantizedNodeNames { get; } = Plan.QuantizedNodes.Select(n => n.Name).ToHashSet(StringComparer.Ordinal);

    /// <summary>The machine-dependent numbers this candidate was built from (static mode), for the lock file; null otherwise.</summary>
    public BuildNumbers? Numbers { get; init; }

    /// <summary>The model that ships: <see cref="Quantized"/> unless its inputs ship as uint8 (<see cref="QuantizationOptions.UInt8Inputs"/>), which only the app can feed; measurements run <see cref="Quantized"/> on the float samples.</summary>
    public ModelProto Shipped { get; init; } = Quantized;

    /// <summary>The serialised <see cref="Shipped"/> model; sizes are reported from it.</summary>
    public byte[] ShippedBytes { get; init; } = Int8Bytes;

    /// <summary>The inputs that ship as uint8 (also when the FP32 model ships, so the app's contract holds); null without the option.</summary>
    public IReadOnlyDictionary<string, UInt8Input>? UInt8Inputs { get; init; }

    /// <summary>The outputs that ship as uint8 and their grids (the FP32 model, if it ships, gets a QuantizeLinear on them); null without the option.</summary>
    public IReadOnlyDictionary<string, QuantParams>? UInt8Outputs { get; init; }
}

/// <summary>Numbers a static candidate takes from runs on this machine: activation ranges, equalization's channel ranges, bias shifts.</summary>
internal sealed record BuildNumbers(
    IReadOnlyDictionary<string, TensorRange> Ranges, IReadOnlyDictionary<string, ChannelRange> Channels, IReadOnlyDictionary<string, int[]> BiasShifts);
