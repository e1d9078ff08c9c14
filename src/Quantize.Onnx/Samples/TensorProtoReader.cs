using System.Buffers.Binary;
using Google.Protobuf;
using Microsoft.ML.OnnxRuntime.Tensors;
using Quantize.Onnx.Model.Proto;

namespace Quantize.Onnx.Samples;

/// <summary>
/// Reads a serialized ONNX <c>TensorProto</c> (<c>.pb</c>, the layout of ONNX test data such as
/// <c>test_data_set_0/input_0.pb</c>). Data may be in <c>raw_data</c> or in the typed fields
/// (<c>float_data</c>, <c>int32_data</c>, <c>int64_data</c>, <c>double_data</c>, <c>uint64_data</c>)
/// following the ONNX storage rules. External data and non-numeric types are rejected with
/// <see cref="ErrorCodes.CalibrationFileUnreadable"/>.
/// </summary>
public static class TensorProtoReader
{
    /// <summary>Reads the tensor. Its name is the TensorProto's name when set, else the file name without extension.</summary>
    public static TensorData Read(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        TensorProto proto;
        Common.RegularFile.Require(path, why => Unreadable(path, why));
        try
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1 << 16);
            proto = TensorProto.Parser.ParseFrom(stream);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw Unreadable(path, $"the file cannot be opened ({e.Message}).", e);
        }
        catch (InvalidProtocolBufferException e)
        {
            throw Unreadable(path, $"it is not a valid serialized ONNX TensorProto ({e.Message}). Write it with onnx.numpy_helper.from_array(array).SerializeToString().", e);
        }

        string name = proto.HasName && proto.Name.Length > 0 ? proto.Name : Path.GetFileNameWithoutExtension(path);
        return FromProto(proto, name, path);
    }

    /// <summary>Converts an in-memory TensorProto; <paramref name="path"/> is only used in messages.</summary>
    public static TensorData FromProto(TensorProto proto, string name, string path)
    {
        ArgumentNullException.ThrowIfNull(proto);
        if (!proto.HasDataType)
        {
            throw Unreadable(path, "the TensorProto has no data_type; the file is probably not a serialized TensorProto. Write it with onnx.numpy_helper.from_array(array).SerializeToString().");
        }

        if ((proto.HasDataLocation && proto.DataLocation == TensorProto.Types.DataLocation.External) || proto.ExternalData.Count > 0)
        {
            throw Unreadable(path, "the TensorProto keeps its data in an external file, which is not supported for calibration data. Store the data inside the .pb (raw_data) or save the array as .npy.");
        }

        if (proto.Segment is not null)
        {
            throw Unreadable(path, "segmented TensorProtos are not supported. Save the whole tensor in one .pb or as .npy.");
        }

        var type = ElementTypes.FromOnnx(proto.DataType);
        if (type is null || !ElementTypes.IsSupported(type.Value))
        {
            throw Unreadable(path,
                $"its data type {ElementTypes.DescribeOnnx(proto.DataType)} is not supported. Calibration tensors must be bool, " +
                "int8-int64, uint8-uint64, float16, bfloat16, float32 or float64.");
        }

        long[] shape = proto.Dims.ToArray();
        long count;
        try
        {
            count = TensorData.ElementCountOf(shape);
        }
        catch (Exception e) when (e is ArgumentException or OverflowException)
        {
            throw Unreadable(path, $"its dims {ElementTypes.FormatShape(shape)} are not a valid shape.", e);
        }

        int size = ElementTypes.SizeOf(type.Value);
        if (count > Array.MaxLength / size)
        {
            throw Unreadable(path, $"the tensor {ElementTypes.FormatShape(shape)} is larger than one calibration tensor may be ({Array.MaxLength:N0} bytes). Use smaller samples.");
        }

        long byteCount = count * size;

        byte[] data = proto.HasRawData
            ? FromRaw(proto, byteCount, path, type.Value, shape)
            : FromTypedFields(proto, type.Value, count, size, path, shape);
        return new TensorData(name, type.Value, shape, data);
    }

    private static byte[] FromRaw(TensorProto proto, long byteCount, string path, TensorElementType type, long[] shape)
    {
        if (proto.RawData.Length != byteCount)
        {
            throw Unreadable(path,
                $"raw_data holds {proto.RawData.Length:N0} bytes but {ElementTypes.Describe(type)} {ElementTypes.FormatShape(shape)} needs {byteCount:N0}. The file is truncated or corrupt.");
        }

        return proto.RawData.ToByteArray();
    }

    private static byte[] FromTypedFields(TensorProto proto, TensorElementType type, long count, int size, string path, long[] shape)
    {
        var data = new byte[count * size];
        var span = data.AsSpan();
        string field;
        int available;
        switch (type)
        {
            case TensorElementType.Float:
                (field, available) = ("float_data", proto.FloatData.Count);
                Check(available);
                for (int i = 0; i < count; i++)
                {
                    BinaryPrimitives.WriteSingleLittleEndian(span[(i * 4)..], proto.FloatData[i]);
                }

                break;
            case TensorElementType.Double:
                (field, available) = ("double_data", proto.DoubleData.Count);
                Check(available);
                for (int i = 0; i < count; i++)
                {
                    BinaryPrimitives.WriteDoubleLittleEndian(span[(i * 8)..], proto.DoubleData[i]);
                }

                break;
            case TensorElementType.Int64:
                (field, available) = ("int64_data", proto.Int64Data.Count);
                Check(available);
                for (int i = 0; i < count; i++)
                {
                    BinaryPrimitives.WriteInt64LittleEndian(span[(i * 8)..], proto.Int64Data[i]);
                }

                break;
            case TensorElementType.UInt32:
                (field, available) = ("uint64_data", proto.Uint64Data.Count);
                Check(available);
                for (int i = 0; i < count; i++)
                {
                    BinaryPrimitives.WriteUInt32LittleEndian(span[(i * 4)..], (uint)proto.Uint64Data[i]);
                }

                break;
            case TensorElementType.UInt64:
                (field, available) = ("uint64_data", proto.Uint64Data.Count);
                Check(available);
                for (int i = 0; i < count; i++)
                {
                    BinaryPrimitives.WriteUInt64LittleEndian(span[(i * 8)..], proto.Uint64Data[i]);
                }

                break;
            default:
                // INT32, and per the ONNX rules INT8/UINT8/INT16/UINT16/BOOL/FLOAT16/BFLOAT16 (the bit
                // pattern in the low bits) are all stored one element per int32_data entry.
                (field, available) = ("int32_data", proto.Int32Data.Count);
                Check(available);
                for (int i = 0; i < count; i++)
                {
                    int v = proto.Int32Data[i];
                    switch (size)
                    {
                        case 1:
                            span[i] = (byte)v;
                            break;
                        case 2:
                            BinaryPrimitives.WriteUInt16LittleEndian(span[(i * 2)..], (ushort)v);
                            break;
                        default:
                            BinaryPrimitives.WriteInt32LittleEndian(span[(i * 4)..], v);
                            break;
                    }
                }

                break;
        }

        return data;

        void Check(int n)
        {
            if (n != count)
            {
                string hint = n == 0
                    ? $"The tensor has no data in raw_data or {field}."
                    : "The file is truncated or corrupt.";
                throw Unreadable(path,
                    $"{field} holds {n:N0} values but {ElementTypes.Describe(type)} {ElementTypes.FormatShape(shape)} needs {count:N0}. {hint}");
            }
        }
    }

    private static QuantizeException Unreadable(string path, string problem, Exception? inner = null) =>
        new(ErrorCodes.CalibrationFileUnreadable, path, $"Calibration file '{path}' cannot be read: {problem}", inner);
}
