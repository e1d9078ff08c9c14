using System.Buffers.Binary;
using System.Runtime.InteropServices;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace Quantize.Onnx.Samples;

/// <summary>
/// One dense tensor read from a calibration file: element type, shape and the raw element bytes
/// (little-endian, C order). Immutable by convention; readers hand out a fresh array per tensor.
/// </summary>
public sealed class TensorData
{
    public TensorData(string name, TensorElementType elementType, long[] shape, byte[] data)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(shape);
        ArgumentNullException.ThrowIfNull(data);
        if (!ElementTypes.IsSupported(elementType))
        {
            throw new ArgumentException($"Element type {elementType} is not a fixed-size numeric type.", nameof(elementType));
        }

        long count = ElementCountOf(shape);
        long bytes = count * ElementTypes.SizeOf(elementType);
        if (bytes != data.LongLength)
        {
            throw new ArgumentException(
                $"Shape {ElementTypes.FormatShape(shape)} of {ElementTypes.Describe(elementType)} needs {bytes} bytes, got {data.LongLength}.",
                nameof(data));
        }

        Name = name;
        ElementType = elementType;
        Shape = shape;
        Data = data;
        ElementCount = count;
    }

    /// <summary>The tensor's name: the file stem or the TensorProto name (the model input name inside a sample).</summary>
    public string Name { get; }

    public TensorElementType ElementType { get; }

    /// <summary>Dimensions, outermost first; empty for a 0-d (scalar) tensor.</summary>
    public long[] Shape { get; }

    /// <summary>Element bytes, little-endian, C (row-major) order.</summary>
    public byte[] Data { get; }

    public long ElementCount { get; }

    /// <summary>Creates an ONNX Runtime tensor of this type and shape holding a copy of the data. The caller disposes it.</summary>
    public OrtValue ToOrtValue()
    {
        var value = OrtValue.CreateAllocatedTensorValue(OrtAllocator.DefaultInstance, ElementType, Shape);
        try
        {
            if (Data.Length > 0)
            {
                Data.AsSpan().CopyTo(value.GetTensorMutableRawData());
            }

            return value;
        }
        catch
        {
            value.Dispose();
            throw;
        }
    }

    /// <summary>The elements as floats; only for <see cref="TensorElementType.Float"/> tensors.</summary>
    public ReadOnlySpan<float> AsFloats()
    {
        if (ElementType != TensorElementType.Float)
        {
            throw new InvalidOperationException($"Tensor '{Name}' holds {ElementTypes.Describe(ElementType)}, not float32.");
        }

        return MemoryMarshal.Cast<byte, float>(Data);
    }

    /// <summary>
    /// Finds the first NaN or infinity (flat C-order index) in a float32/float64/float16/bfloat16
    /// tensor. Always false for integer and bool tensors.
    /// </summary>
    public bool TryFindNonFinite(out long index)
    {
        index = FindNonFinite(ElementType, Data);
        return index >= 0;
    }

    /// <summary>Describes the element at <paramref name="index"/> of a float tensor as NaN, +Inf, -Inf or its value.</summary>
    public string DescribeElement(long index) => DescribeElement(ElementType, Data, index);

    /// <summary>
    /// The flat index of the first NaN or infinity in little-endian float32/float64/float16/bfloat16
    /// element bytes, or -1 (always -1 for integer and bool types).
    /// </summary>
    internal static long FindNonFinite(TensorElementType type, ReadOnlySpan<byte> data) => type switch
    {
        TensorElementType.Float => FindNonFinite32(MemoryMarshal.Cast<byte, uint>(data)),
        TensorElementType.Double => FindNonFinite64(MemoryMarshal.Cast<byte, ulong>(data)),
        TensorElementType.Float16 => FindNonFinite16(MemoryMarshal.Cast<byte, ushort>(data), 0x7C00),
        TensorElementType.BFloat16 => FindNonFinite16(MemoryMarshal.Cast<byte, ushort>(data), 0x7F80),
        _ => -1,
    };

    /// <summary>The element at <paramref name="index"/> of little-endian element bytes as NaN, +Inf, -Inf or its value.</summary>
    internal static string DescribeElement(TensorElementType type, ReadOnlySpan<byte> data, long index)
    {
        int size = ElementTypes.SizeOf(type);
        var bytes = data.Slice(checked((int)(index * size)), size);
        double value = type switch
        {
            TensorElementType.Float => BinaryPrimitives.ReadSingleLittleEndian(bytes),
            TensorElementType.Double => BinaryPrimitives.ReadDoubleLittleEndian(bytes),
            TensorElementType.Float16 => (double)BinaryPrimitives.ReadHalfLittleEndian(bytes),
            TensorElementType.BFloat16 => BitConverter.Int32BitsToSingle(BinaryPrimitives.ReadUInt16LittleEndian(bytes) << 16),
            _ => double.NaN,
        };
        return double.IsNaN(value) ? "NaN"
            : double.IsPositiveInfinity(value) ? "+Inf"
            : double.IsNegativeInfinity(value) ? "-Inf"
            : value.ToString(System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>The same data under another name (the arrays are shared, not copied).</summary>
    internal TensorData WithName(string name) =>
        name == Name ? this : new TensorData(name, ElementType, Shape, Data, ElementCount);

    private TensorData(string name, TensorElementType elementType, long[] shape, byte[] data, long count)
    {
        Name = name;
        ElementType = elementType;
        Shape = shape;
        Data = data;
        ElementCount = count;
    }

    /// <summary>Product of the dimensions (1 for a scalar); throws on a negative dimension or overflow.</summary>
    internal static long ElementCountOf(IReadOnlyList<long> shape)
    {
        long count = 1;
        foreach (long d in shape)
        {
            if (d < 0)
            {
                throw new ArgumentException($"Negative dimension in shape {ElementTypes.FormatShape(shape)}.", nameof(shape));
            }

            count = checked(count * d);
        }

        return count;
    }

    private static long FindNonFinite32(ReadOnlySpan<uint> bits)
    {
        for (int i = 0; i < bits.Length; i++)
        {
            if ((bits[i] & 0x7F80_0000u) == 0x7F80_0000u)
            {
                return i;
            }
        }

        return -1;
    }

    private static long FindNonFinite64(ReadOnlySpan<ulong> bits)
    {
        for (int i = 0; i < bits.Length; i++)
        {
            if ((bits[i] & 0x7FF0_0000_0000_0000ul) == 0x7FF0_0000_0000_0000ul)
            {
                return i;
            }
        }

        return -1;
    }

    private static long FindNonFinite16(ReadOnlySpan<ushort> bits, ushort exponentMask)
    {
        for (int i = 0; i < bits.Length; i++)
        {
            if ((bits[i] & exponentMask) == exponentMask)
            {
                return i;
            }
        }

        return -1;
    }
}
