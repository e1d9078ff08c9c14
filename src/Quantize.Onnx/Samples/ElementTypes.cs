using Microsoft.ML.OnnxRuntime.Tensors;

namespace Quantize.Onnx.Samples;

/// <summary>
/// Facts about the tensor element types calibration data may hold: byte size, a readable name for
/// messages, and the mapping from ONNX <c>TensorProto.DataType</c> numbers.
/// </summary>
public static class ElementTypes
{
    /// <summary>True for the fixed-size numeric types that calibration files may hold.</summary>
    public static bool IsSupported(TensorElementType type) => type switch
    {
        TensorElementType.Float or TensorElementType.Double or TensorElementType.Float16
            or TensorElementType.BFloat16 or TensorElementType.Int8 or TensorElementType.UInt8
            or TensorElementType.Int16 or TensorElementType.UInt16 or TensorElementType.Int32
            or TensorElementType.UInt32 or TensorElementType.Int64 or TensorElementType.UInt64
            or TensorElementType.Bool => true,
        _ => false,
    };

    /// <summary>Bytes per element; throws for types <see cref="IsSupported"/> rejects.</summary>
    public static int SizeOf(TensorElementType type) => type switch
    {
        TensorElementType.Bool or TensorElementType.Int8 or TensorElementType.UInt8 => 1,
        TensorElementType.Int16 or TensorElementType.UInt16 or TensorElementType.Float16
            or TensorElementType.BFloat16 => 2,
        TensorElementType.Float or TensorElementType.Int32 or TensorElementType.UInt32 => 4,
        TensorElementType.Double or TensorElementType.Int64 or TensorElementType.UInt64 => 8,
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, "Not a fixed-size numeric element type."),
    };

    /// <summary>The NumPy-style name used in messages: float32, int64, bool, bfloat16, ...</summary>
    public static string Describe(TensorElementType type) => type switch
    {
        TensorElementType.Float => "float32",
        TensorElementType.Double => "float64",
        TensorElementType.Float16 => "float16",
        TensorElementType.BFloat16 => "bfloat16",
        TensorElementType.Int8 => "int8",
        TensorElementType.UInt8 => "uint8",
        TensorElementType.Int16 => "int16",
        TensorElementType.UInt16 => "uint16",
        TensorElementType.Int32 => "int32",
        TensorElementType.UInt32 => "uint32",
        TensorElementType.Int64 => "int64",
        TensorElementType.UInt64 => "uint64",
        TensorElementType.Bool => "bool",
        TensorElementType.String => "string",
        _ => DescribeOnnx((int)type),
    };

    /// <summary>
    /// Maps an ONNX <c>TensorProto.DataType</c> number to the ONNX Runtime element type, or null when
    /// ONNX Runtime's managed API has no such type. The numbers coincide by design.
    /// </summary>
    public static TensorElementType? FromOnnx(int dataType) =>
        dataType >= 1 && dataType <= (int)TensorElementType.BFloat16
            ? (TensorElementType)dataType
            : null;

    /// <summary>A readable name for an ONNX <c>TensorProto.DataType</c> number.</summary>
    public static string DescribeOnnx(int dataType) => dataType switch
    {
        >= 1 and <= 16 when dataType != 14 && dataType != 15 => Describe((TensorElementType)dataType),
        14 => "complex64",
        15 => "complex128",
        17 => "float8e4m3fn",
        18 => "float8e4m3fnuz",
        19 => "float8e5m2",
        20 => "float8e5m2fnuz",
        21 => "uint4",
        22 => "int4",
        23 => "float4e2m1",
        24 => "float8e8m0",
        25 => "uint2",
        26 => "int2",
        0 => "undefined",
        _ => $"ONNX data type {dataType}",
    };

    /// <summary>Formats a shape the way messages show it: [1,3,96,96]; [] for a scalar.</summary>
    public static string FormatShape(IEnumerable<long> shape) => "[" + string.Join(",", shape) + "]";
}
