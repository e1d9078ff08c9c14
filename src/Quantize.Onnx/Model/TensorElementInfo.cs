using Microsoft.ML.OnnxRuntime.Tensors;
using Quantize.Onnx.Model.Proto;
using DataType = Quantize.Onnx.Model.Proto.TensorProto.Types.DataType;

namespace Quantize.Onnx.Model;

/// <summary>
/// Facts about ONNX tensor element types (<see cref="TensorProto.Types.DataType"/>): storage size,
/// name, whether the type is a float type, and the matching ONNX Runtime element type.
/// </summary>
public static class TensorElementInfo
{
    /// <summary>
    /// Bits one element occupies in <c>raw_data</c>: 4 for INT4/UINT4/FLOAT4E2M1 and 2 for INT2/UINT2
    /// (packed, low bits first), otherwise 8 × the byte size. 0 for STRING and UNDEFINED, whose size is
    /// not fixed.
    /// </summary>
    public static int BitsPerElement(DataType type) => type switch
    {
        DataType.Bool or DataType.Uint8 or DataType.Int8 => 8,
        DataType.Float8E4M3Fn or DataType.Float8E4M3Fnuz or DataType.Float8E5M2
            or DataType.Float8E5M2Fnuz or DataType.Float8E8M0 => 8,
        DataType.Uint16 or DataType.Int16 or DataType.Float16 or DataType.Bfloat16 => 16,
        DataType.Float or DataType.Int32 or DataType.Uint32 => 32,
        DataType.Double or DataType.Int64 or DataType.Uint64 or DataType.Complex64 => 64,
        DataType.Complex128 => 128,
        DataType.Uint4 or DataType.Int4 or DataType.Float4E2M1 => 4,
        DataType.Uint2 or DataType.Int2 => 2,
        _ => 0,
    };

    /// <summary>True when elements of the type have a fixed size (everything but STRING and UNDEFINED).</summary>
    public static bool HasFixedSize(DataType type) => BitsPerElement(type) > 0;

    /// <summary>
    /// Bytes that <paramref name="elementCount"/> elements occupy in <c>raw_data</c>:
    /// ceil(count × bits / 8), so packed 4-bit and 2-bit types round up to whole bytes.
    /// </summary>
    /// <exception cref="ArgumentException">The type has no fixed size (STRING, UNDEFINED, unknown).</exception>
    public static long ByteSize(DataType type, long elementCount)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(elementCount);
        int bits = BitsPerElement(type);
        if (bits == 0)
        {
            throw new ArgumentException($"Tensor element type {Name(type)} has no fixed size.", nameof(type));
        }

        return checked((elementCount * bits + 7) / 8);
    }

    /// <summary>
    /// The number of elements a tensor with <paramref name="dims"/> holds (1 for a scalar), or false
    /// when a dimension is negative or the product overflows.
    /// </summary>
    public static bool TryGetElementCount(IEnumerable<long> dims, out long count)
    {
        ArgumentNullException.ThrowIfNull(dims);
        count = 1;
        foreach (long d in dims)
        {
            if (d < 0)
            {
                count = 0;
                return false;
            }

            try
            {
                count = checked(count * d);
            }
            catch (OverflowException)
            {
                count = 0;
                return false;
            }
        }

        return true;
    }

    /// <summary>
    /// The byte size the data of <paramref name="tensor"/> must have in <c>raw_data</c> (or in an
    /// external file), from its dims and element type; false when that is not computable (STRING,
    /// unknown type, negative dims).
    /// </summary>
    public static bool TryGetByteSize(TensorProto tensor, out long bytes)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        bytes = 0;
        var type = (DataType)tensor.DataType;
        if (!HasFixedSize(type) || !TryGetElementCount(tensor.Dims, out long count))
        {
            return false;
        }

        try
        {
            bytes = ByteSize(type, count);
            return true;
        }
        catch (OverflowException)
        {
            return false;
        }
    }

    /// <summary>The ONNX spelling of the type ("FLOAT", "BFLOAT16", "INT4", ...); "type N" for values this version does not know.</summary>
    public static string Name(DataType type) =>
        Enum.IsDefined(type) ? type.ToString().ToUpperInvariant() : $"type {(int)type}";

    /// <summary>The ONNX spelling of a raw <c>data_type</c>/<c>elem_type</c> value.</summary>
    public static string Name(int dataType) => Name((DataType)dataType);

    /// <summary>True for the floating-point types the quantizer treats as float: FLOAT, FLOAT16, BFLOAT16, DOUBLE.</summary>
    public static bool IsFloat(DataType type) =>
        type is DataType.Float or DataType.Float16 or DataType.Bfloat16 or DataType.Double;

    /// <summary>The ONNX Runtime element type for an ONNX type, where ONNX Runtime's managed API has one.</summary>
    public static bool TryToOrt(DataType type, out TensorElementType ortType)
    {
        ortType = type switch
        {
            DataType.Float => TensorElementType.Float,
            DataType.Uint8 => TensorElementType.UInt8,
            DataType.Int8 => TensorElementType.Int8,
            DataType.Uint16 => TensorElementType.UInt16,
            DataType.Int16 => TensorElementType.Int16,
            DataType.Int32 => TensorElementType.Int32,
            DataType.Int64 => TensorElementType.Int64,
            DataType.String => TensorElementType.String,
            DataType.Bool => TensorElementType.Bool,
            DataType.Float16 => TensorElementType.Float16,
            DataType.Double => TensorElementType.Double,
            DataType.Uint32 => TensorElementType.UInt32,
            DataType.Uint64 => TensorElementType.UInt64,
            DataType.Complex64 => TensorElementType.Complex64,
            DataType.Complex128 => TensorElementType.Complex128,
            DataType.Bfloat16 => TensorElementType.BFloat16,
            _ => TensorElementType.DataTypeMax,
        };
        return ortType != TensorElementType.DataTypeMax;
    }

    /// <summary>The ONNX type for an ONNX Runtime element type.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is not an element type (e.g. DataTypeMax).</exception>
    public static DataType FromOrt(TensorElementType ortType) => ortType switch
    {
        TensorElementType.Float => DataType.Float,
        TensorElementType.UInt8 => DataType.Uint8,
        TensorElementType.Int8 => DataType.Int8,
        TensorElementType.UInt16 => DataType.Uint16,
        TensorElementType.Int16 => DataType.Int16,
        TensorElementType.Int32 => DataType.Int32,
        TensorElementType.Int64 => DataType.Int64,
        TensorElementType.String => DataType.String,
        TensorElementType.Bool => DataType.Bool,
        TensorElementType.Float16 => DataType.Float16,
        TensorElementType.Double => DataType.Double,
        TensorElementType.UInt32 => DataType.Uint32,
        TensorElementType.UInt64 => DataType.Uint64,
        TensorElementType.Complex64 => DataType.Complex64,
        TensorElementType.Complex128 => DataType.Complex128,
        TensorElementType.BFloat16 => DataType.Bfloat16,
        _ => throw new ArgumentOutOfRangeException(nameof(ortType), ortType, "Not an ONNX Runtime tensor element type."),
    };
}
