using System.Buffers.Binary;
using System.Text;
using Google.Protobuf;
using Quantize.Onnx.Model.Proto;

namespace Quantize.Onnx.Tests.Samples;

/// <summary>Writes .npy files byte by byte, the way numpy.save lays them out.</summary>
internal static class Npy
{
    /// <summary>The bytes of a .npy file with the given header fields and raw data.</summary>
    public static byte[] Build(string descr, string shape, byte[] data, bool fortran = false, int major = 1, string? rawHeader = null)
    {
        string dict = rawHeader ?? $"{{'descr': '{descr}', 'fortran_order': {(fortran ? "True" : "False")}, 'shape': {shape}, }}";
        var encoding = major == 3 ? Encoding.UTF8 : Encoding.Latin1;
        int prelude = major == 1 ? 10 : 12;
        int unpadded = prelude + encoding.GetByteCount(dict) + 1;
        int total = (unpadded + 63) / 64 * 64;
        string header = dict + new string(' ', total - unpadded) + "\n";
        byte[] headerBytes = encoding.GetBytes(header);

        using var ms = new MemoryStream();
        ms.Write([0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', (byte)major, 0]);
        if (major == 1)
        {
            var len = new byte[2];
            BinaryPrimitives.WriteUInt16LittleEndian(len, (ushort)headerBytes.Length);
            ms.Write(len);
        }
        else
        {
            var len = new byte[4];
            BinaryPrimitives.WriteUInt32LittleEndian(len, (uint)headerBytes.Length);
            ms.Write(len);
        }

        ms.Write(headerBytes);
        ms.Write(data);
        return ms.ToArray();
    }

    public static string Write(string path, string descr, string shape, byte[] data, bool fortran = false, int major = 1)
    {
        System.IO.File.WriteAllBytes(path, Build(descr, shape, data, fortran, major));
        return path;
    }

    /// <summary>A float32 .npy ('&lt;f4') with the given C-order shape.</summary>
    public static string WriteFloats(string path, long[] shape, params float[] values)
    {
        var data = new byte[values.Length * 4];
        for (int i = 0; i < values.Length; i++)
        {
            BinaryPrimitives.WriteSingleLittleEndian(data.AsSpan(i * 4), values[i]);
        }

        return Write(path, "<f4", PyShape(shape), data);
    }

    /// <summary>A float32 .npy of the given shape filled with 0, 1, 2, ...</summary>
    public static string WriteFloats(string path, params long[] shape)
    {
        long count = shape.Aggregate(1L, (a, b) => a * b);
        return WriteFloats(path, shape, Enumerable.Range(0, (int)count).Select(i => (float)i).ToArray());
    }

    public static string WriteInt64(string path, long[] shape, params long[] values)
    {
        var data = new byte[values.Length * 8];
        for (int i = 0; i < values.Length; i++)
        {
            BinaryPrimitives.WriteInt64LittleEndian(data.AsSpan(i * 8), values[i]);
        }

        return Write(path, "<i8", PyShape(shape), data);
    }

    /// <summary>Python tuple syntax: () for 0-d, (5,) for 1-d, (1, 3) otherwise.</summary>
    public static string PyShape(long[] shape) => shape.Length switch
    {
        0 => "()",
        1 => $"({shape[0]},)",
        _ => "(" + string.Join(", ", shape) + ")",
    };
}

/// <summary>Writes ONNX TensorProto .pb files with Google.Protobuf.</summary>
internal static class Pb
{
    public static string Write(string path, TensorProto proto)
    {
        System.IO.File.WriteAllBytes(path, proto.ToByteArray());
        return path;
    }

    public static TensorProto Floats(long[] shape, params float[] values)
    {
        var proto = new TensorProto { DataType = (int)TensorProto.Types.DataType.Float };
        proto.Dims.AddRange(shape);
        var raw = new byte[values.Length * 4];
        for (int i = 0; i < values.Length; i++)
        {
            BinaryPrimitives.WriteSingleLittleEndian(raw.AsSpan(i * 4), values[i]);
        }

        proto.RawData = ByteString.CopyFrom(raw);
        return proto;
    }

    public static string WriteFloats(string path, params long[] shape)
    {
        long count = shape.Aggregate(1L, (a, b) => a * b);
        return Write(path, Floats(shape, Enumerable.Range(0, (int)count).Select(i => (float)i).ToArray()));
    }
}
