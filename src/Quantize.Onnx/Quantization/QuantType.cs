namespace Quantize.Onnx.Quantization;

/// <summary>Integer type of a quantized tensor.</summary>
public enum QuantType
{
    UInt8,
    Int8,
}
