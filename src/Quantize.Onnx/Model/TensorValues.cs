using System.Buffers.Binary;
using System.Runtime.InteropServices;
using Google.Protobuf;
using Quantize.Onnx.Model.Proto;
using DataType = Quantize.Onnx.Model.Proto.TensorProto.Types.DataType;

namespace Quantize.Onnx.Model;

/// <summary>
/// Reads the values of a <see cref="TensorProto"/> into arrays and builds tensors from arrays.
/// Built tensors store their data in <c>raw_data</c>, little endian, as ONNX specifies.
/// Reading needs a self-contained tensor (external data already inlined, as
/// <see cref="ModelLoader.Load"/> does) or one deferred by the active <see cref="ExternalDataScope"/>:
/// its values are read from disk on demand, and a large built tensor is written to the scope's spill
/// file instead of being kept in memory.
/// </summary>
public static class TensorValues
{
    /// <summary>Values of a FLOAT tensor, from <c>raw_data</c> or <c>float_data</c>.</summary>
    public static float[] ReadFloats(TensorProto tensor)
    {
        int count = CheckReadable(tensor, DataType.Float);
        if (ExternalDataScope.IsExternal(tensor))
        {
            return ReadDeferred<float>(tensor, count);
        }

        if (tensor.HasRawData)
        {
            ReadOnlySpan<byte> raw = CheckRawLength(tensor, count, sizeof(float));
            var values = new float[count];
            for (int i = 0; i < values.Length; i++)
            {
                values[i] = BinaryPrimitives.ReadSingleLittleEndian(raw.Slice(i * sizeof(float)));
            }

            return values;
        }

        CheckTypedLength(tensor, count, tensor.FloatData.Count, "float_data");
        return [.. tensor.FloatData];
    }

    /// <summary>Values of an INT64 tensor (shapes, pads, axes), from <c>raw_data</c> or <c>int64_data</c>.</summary>
    public static long[] ReadInt64s(TensorProto tensor)
    {
        int count = CheckReadable(tensor, DataType.Int64);
        if (ExternalDataScope.IsExternal(tensor))
        {
            return ReadDeferred<long>(tensor, count);
        }

        if (tensor.HasRawData)
        {
            ReadOnlySpan<byte> raw = CheckRawLength(tensor, count, sizeof(long));
            var values = new long[count];
            for (int i = 0; i < values.Length; i++)
            {
                values[i] = BinaryPrimitives.ReadInt64LittleEndian(raw.Slice(i * sizeof(long)));
            }

            return values;
        }

        CheckTypedLength(tensor, count, tensor.Int64Data.Count, "int64_data");
        return [.. tensor.Int64Data];
    }

    /// <summary>Values of an INT32 tensor, from <c>raw_data</c> or <c>int32_data</c>.</summary>
    public static int[] ReadInt32s(TensorProto tensor)
    {
        int count = CheckReadable(tensor, DataType.Int32);
        if (ExternalDataScope.IsExternal(tensor))
        {
            return ReadDeferred<int>(tensor, count);
        }

        if (tensor.HasRawData)
        {
            ReadOnlySpan<byte> raw = CheckRawLength(tensor, count, sizeof(int));
            var values = new int[count];
            for (int i = 0; i < values.Length; i++)
            {
                values[i] = BinaryPrimitives.ReadInt32LittleEndian(raw.Slice(i * sizeof(int)));
            }

            return values;
        }

        CheckTypedLength(tensor, count, tensor.Int32Data.Count, "int32_data");
        return [.. tensor.Int32Data];
    }

    /// <summary>A FLOAT tensor named <paramref name="name"/> with shape <paramref name="dims"/>.</summary>
    public static TensorProto FromFloats(string name, ReadOnlySpan<long> dims, ReadOnlySpan<float> values)
    {
        var bytes = new byte[checked(values.Length * sizeof(float))];
        for (int i = 0; i < values.Length; i++)
        {
            BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(i * sizeof(float)), values[i]);
        }

        return Build(name, dims, values.Length, DataType.Float, bytes);
    }

    /// <summary>A FLOAT16 tensor (values rounded to nearest; callers check the range fits).</summary>
    public static TensorProto FromHalfs(string name, ReadOnlySpan<long> dims, ReadOnlySpan<float> values)
    {
        var bytes = new byte[checked(values.Length * 2)];
        for (int i = 0; i < values.Length; i++)
        {
            BinaryPrimitives.WriteHalfLittleEndian(bytes.AsSpan(i * 2), (Half)values[i]);
        }

        return Build(name, dims, values.Length, DataType.Float16, bytes);
    }

    /// <summary>An INT8 tensor.</summary>
    public static TensorProto FromInt8(string name, ReadOnlySpan<long> dims, ReadOnlySpan<sbyte> values) =>
        Build(name, dims, values.Length, DataType.Int8, MemoryMarshal.AsBytes(values).ToArray());

    /// <summary>A UINT8 tensor.</summary>
    public static TensorProto FromUInt8(string name, ReadOnlySpan<long> dims, ReadOnlySpan<byte> values) =>
        Build(name, dims, values.Length, DataType.Uint8, values.ToArray());

    /// <summary>An INT32 tensor (e.g. a quantized bias).</summary>
    public static TensorProto FromInt32(string name, ReadOnlySpan<long> dims, ReadOnlySpan<int> values)
    {
        var bytes = new byte[checked(values.Length * sizeof(int))];
        for (int i = 0; i < values.Length; i++)
        {
            BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(i * sizeof(int)), values[i]);
        }

        return Build(name, dims, values.Length, DataType.Int32, bytes);
    }

    /// <summary>An INT64 tensor (shapes, axes, pads).</summary>
    public static TensorProto FromInt64(string name, ReadOnlySpan<long> dims, ReadOnlySpan<long> values)
    {
        var bytes = new byte[checked(values.Length * sizeof(long))];
        for (int i = 0; i < values.Length; i++)
        {
            BinaryPrimitives.WriteInt64LittleEndian(bytes.AsSpan(i * sizeof(long)), values[i]);
        }

        return Build(name, dims, values.Length, DataType.Int64, bytes);
    }

    private static TensorProto Build(string name, ReadOnlySpan<long> dims, int valueCount, DataType type, byte[] bytes)
    {
        ArgumentNullException.ThrowIfNull(name);
        long expected = 1;
        foreach (long d in dims)
        {
            if (d < 0)
            {
                throw new ArgumentException($"Tensor '{name}': dimension {d} is negative.", nameof(dims));
            }

            expected = checked(expected * d);
        }

        if (expected != valueCount)
        {
            throw new ArgumentException(
                $"Tensor '{name}': shape [{string.Join(", ", dims.ToArray())}] holds {expected} values but {valueCount} were given.",
                nameof(dims));
        }

        var tensor = new TensorProto { Name = name, DataType = (int)type };
        foreach (long d in dims)
        {
            tensor.Dims.Add(d);
        }

        if (ExternalDataScope.Current is { } scope && bytes.Length >= scope.SpillMinBytes)
        {
            scope.Spill(tensor, bytes); // the array is garbage once written: big weights are never all in memory at once
        }
        else
        {
            tensor.RawData = UnsafeByteOperations.UnsafeWrap(bytes);
        }

        return tensor;
    }

    /// <summary>Makes <paramref name="target"/> hold <paramref name="source"/>'s data (inline or deferred), keeping its name and dims.</summary>
    public static void ReplaceData(TensorProto target, TensorProto source)
    {
        target.ClearRawData();
        target.ExternalData.Clear();
        target.ClearDataLocation();
        if (ExternalDataScope.IsExternal(source))
        {
            target.ExternalData.Add(source.ExternalData);
            target.DataLocation = source.DataLocation;
        }
        else
        {
            target.RawData = source.RawData;
        }
    }

    /// <summary>Values of a deferred tensor, read from disk straight into the result array.</summary>
    private static T[] ReadDeferred<T>(TensorProto tensor, int count)
        where T : unmanaged
    {
        var scope = ExternalDataScope.Current ?? throw new InvalidOperationException(
            $"Tensor '{tensor.Name}' still refers to external data; load the model with ModelLoader.Load, which inlines it.");
        if (!BitConverter.IsLittleEndian)
        {
            throw new PlatformNotSupportedException("Deferred tensors are read as little-endian memory.");
        }

        var values = new T[count];
        Span<byte> bytes = MemoryMarshal.AsBytes(values.AsSpan());
        long length = ExternalDataScope.ExternalLength(tensor);
        if (length != bytes.Length)
        {
            throw Corrupt(tensor, $"has {length} bytes of external data but its shape [{string.Join(", ", tensor.Dims)}] needs {bytes.Length}");
        }

        scope.Read(tensor, bytes);
        return values;
    }

    private static int CheckReadable(TensorProto tensor, DataType expected)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        if (tensor.DataType != (int)expected)
        {
            throw new ArgumentException(
                $"Tensor '{tensor.Name}' is {TensorElementInfo.Name(tensor.DataType)}, not {TensorElementInfo.Name(expected)}.",
                nameof(tensor));
        }

        if (ExternalDataScope.IsExternal(tensor) && ExternalDataScope.Current is null)
        {
            throw new InvalidOperationException(
                $"Tensor '{tensor.Name}' still refers to external data; load the model with ModelLoader.Load, which inlines it.");
        }

        if (!TensorElementInfo.TryGetElementCount(tensor.Dims, out long count) || count > Array.MaxLength)
        {
            throw Corrupt(tensor, $"has an invalid shape [{string.Join(", ", tensor.Dims)}]");
        }

        return (int)count;
    }

    private static ReadOnlySpan<byte> CheckRawLength(TensorProto tensor, int count, int elementSize)
    {
        ReadOnlySpan<byte> raw = tensor.RawData.Span;
        if (raw.Length != (long)count * elementSize)
        {
            throw Corrupt(tensor, $"has {raw.Length} bytes of raw_data but its shape [{string.Join(", ", tensor.Dims)}] needs {(long)count * elementSize}");
        }

        return raw;
    }

    private static void CheckTypedLength(TensorProto tensor, int count, int actual, string field)
    {
        if (actual != count)
        {
            throw Corrupt(tensor, $"has {actual} values in {field} but its shape [{string.Join(", ", tensor.Dims)}] needs {count}");
        }
    }

    private static QuantizeException Corrupt(TensorProto tensor, string problem) =>
        new(ErrorCodes.ModelCorrupt, null, $"Tensor '{tensor.Name}' {problem}; the model is damaged, re-export it.");
}
