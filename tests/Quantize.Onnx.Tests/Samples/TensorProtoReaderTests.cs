using System.Buffers.Binary;
using Google.Protobuf;
using Microsoft.ML.OnnxRuntime.Tensors;
using Quantize.Onnx.Model.Proto;
using Quantize.Onnx.Samples;
using DataType = Quantize.Onnx.Model.Proto.TensorProto.Types.DataType;

namespace Quantize.Onnx.Tests.Samples;

public sealed class TensorProtoReaderTests : IDisposable
{
    private readonly TempFolder _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void ReadsRawDataFloats()
    {
        var proto = Pb.Floats([1, 2, 2], 1f, 2f, -3.5f, 4f);
        proto.Name = "x";
        string path = Pb.Write(_dir.File("input_0.pb"), proto);

        var tensor = TensorProtoReader.Read(path);

        Assert.Equal("x", tensor.Name);
        Assert.Equal(TensorElementType.Float, tensor.ElementType);
        Assert.Equal([1L, 2L, 2L], tensor.Shape);
        Assert.Equal([1f, 2f, -3.5f, 4f], tensor.AsFloats().ToArray());
    }

    [Fact]
    public void NameFallsBackToFileStem()
    {
        string path = Pb.Write(_dir.File("input_3.pb"), Pb.Floats([1], 1f));

        Assert.Equal("input_3", TensorProtoReader.Read(path).Name);
    }

    [Theory]
    [InlineData(DataType.Float, 4)]
    [InlineData(DataType.Double, 8)]
    [InlineData(DataType.Float16, 2)]
    [InlineData(DataType.Bfloat16, 2)]
    [InlineData(DataType.Int8, 1)]
    [InlineData(DataType.Uint8, 1)]
    [InlineData(DataType.Int16, 2)]
    [InlineData(DataType.Uint16, 2)]
    [InlineData(DataType.Int32, 4)]
    [InlineData(DataType.Uint32, 4)]
    [InlineData(DataType.Int64, 8)]
    [InlineData(DataType.Uint64, 8)]
    [InlineData(DataType.Bool, 1)]
    public void ReadsRawDataOfEveryNumericType(DataType type, int size)
    {
        var raw = new byte[6 * size];
        for (int i = 0; i < raw.Length; i++)
        {
            raw[i] = type == DataType.Bool ? (byte)(i % 2) : (byte)(i * 5 + 3);
        }

        var proto = new TensorProto { DataType = (int)type, RawData = ByteString.CopyFrom(raw) };
        proto.Dims.AddRange([3, 2]);

        var tensor = TensorProtoReader.Read(Pb.Write(_dir.File("t.pb"), proto));

        Assert.Equal((TensorElementType)(int)type, tensor.ElementType);
        Assert.Equal([3L, 2L], tensor.Shape);
        Assert.Equal(raw, tensor.Data);
    }

    [Fact]
    public void ReadsFloatData()
    {
        var proto = new TensorProto { DataType = (int)DataType.Float };
        proto.Dims.AddRange([3]);
        proto.FloatData.AddRange([1f, float.MaxValue, -0.25f]);

        var tensor = TensorProtoReader.Read(Pb.Write(_dir.File("f.pb"), proto));

        Assert.Equal([1f, float.MaxValue, -0.25f], tensor.AsFloats().ToArray());
    }

    [Fact]
    public void ReadsDoubleData()
    {
        var proto = new TensorProto { DataType = (int)DataType.Double };
        proto.Dims.AddRange([2]);
        proto.DoubleData.AddRange([Math.PI, -1e300]);

        var tensor = TensorProtoReader.Read(Pb.Write(_dir.File("d.pb"), proto));

        Assert.Equal(Math.PI, BinaryPrimitives.ReadDoubleLittleEndian(tensor.Data));
        Assert.Equal(-1e300, BinaryPrimitives.ReadDoubleLittleEndian(tensor.Data.AsSpan(8)));
    }

    [Fact]
    public void ReadsInt64Data()
    {
        var proto = new TensorProto { DataType = (int)DataType.Int64 };
        proto.Dims.AddRange([2]);
        proto.Int64Data.AddRange([long.MinValue, 42]);

        var tensor = TensorProtoReader.Read(Pb.Write(_dir.File("l.pb"), proto));

        Assert.Equal(long.MinValue, BinaryPrimitives.ReadInt64LittleEndian(tensor.Data));
        Assert.Equal(42, BinaryPrimitives.ReadInt64LittleEndian(tensor.Data.AsSpan(8)));
    }

    [Fact]
    public void ReadsUInt64DataForUInt32AndUInt64()
    {
        var u64 = new TensorProto { DataType = (int)DataType.Uint64 };
        u64.Dims.Add(2);
        u64.Uint64Data.AddRange([ulong.MaxValue, 7]);
        var u32 = new TensorProto { DataType = (int)DataType.Uint32 };
        u32.Dims.Add(2);
        u32.Uint64Data.AddRange([uint.MaxValue, 9]);

        var t64 = TensorProtoReader.Read(Pb.Write(_dir.File("u64.pb"), u64));
        var t32 = TensorProtoReader.Read(Pb.Write(_dir.File("u32.pb"), u32));

        Assert.Equal(ulong.MaxValue, BinaryPrimitives.ReadUInt64LittleEndian(t64.Data));
        Assert.Equal(7ul, BinaryPrimitives.ReadUInt64LittleEndian(t64.Data.AsSpan(8)));
        Assert.Equal(TensorElementType.UInt32, t32.ElementType);
        Assert.Equal(uint.MaxValue, BinaryPrimitives.ReadUInt32LittleEndian(t32.Data));
        Assert.Equal(9u, BinaryPrimitives.ReadUInt32LittleEndian(t32.Data.AsSpan(4)));
    }

    public static TheoryData<DataType, int[], byte[]> Int32DataCases => new()
    {
        { DataType.Int32, [-1, 5], [0xFF, 0xFF, 0xFF, 0xFF, 5, 0, 0, 0] },
        { DataType.Int8, [-2, 127], [0xFE, 0x7F] },
        { DataType.Uint8, [255, 1], [0xFF, 0x01] },
        { DataType.Int16, [-2, 300], [0xFE, 0xFF, 0x2C, 0x01] },
        { DataType.Uint16, [65535, 2], [0xFF, 0xFF, 0x02, 0x00] },
        { DataType.Bool, [1, 0], [1, 0] },
        // float16 1.0 = 0x3C00, -2.0 = 0xC000 (bit patterns in int32_data).
        { DataType.Float16, [0x3C00, 0xC000], [0x00, 0x3C, 0x00, 0xC0] },
        // bfloat16 1.0 = 0x3F80, -2.0 = 0xC000.
        { DataType.Bfloat16, [0x3F80, 0xC000], [0x80, 0x3F, 0x00, 0xC0] },
    };

    [Theory]
    [MemberData(nameof(Int32DataCases))]
    public void ReadsInt32DataForTheSmallTypes(DataType type, int[] values, byte[] expected)
    {
        var proto = new TensorProto { DataType = (int)type };
        proto.Dims.Add(2);
        proto.Int32Data.AddRange(values);

        var tensor = TensorProtoReader.Read(Pb.Write(_dir.File("i.pb"), proto));

        Assert.Equal((TensorElementType)(int)type, tensor.ElementType);
        Assert.Equal(expected, tensor.Data);
    }

    [Fact]
    public void ReadsScalar()
    {
        var proto = new TensorProto { DataType = (int)DataType.Int64 };
        proto.Int64Data.Add(16000);

        var tensor = TensorProtoReader.Read(Pb.Write(_dir.File("sr.pb"), proto));

        Assert.Empty(tensor.Shape);
        Assert.Equal(1, tensor.ElementCount);
    }

    [Fact]
    public void RejectsExternalData()
    {
        var proto = new TensorProto { DataType = (int)DataType.Float, DataLocation = TensorProto.Types.DataLocation.External };
        proto.Dims.Add(4);
        proto.ExternalData.Add(new StringStringEntryProto { Key = "location", Value = "weights.bin" });
        string path = Pb.Write(_dir.File("ext.pb"), proto);

        var e = Assert.Throws<QuantizeException>(() => TensorProtoReader.Read(path));

        Assert.Equal(ErrorCodes.CalibrationFileUnreadable, e.Code);
        Assert.Equal(path, e.File);
        Assert.Contains("external", e.Message);
    }

    [Theory]
    [InlineData(DataType.String, "string")]
    [InlineData(DataType.Complex64, "complex64")]
    [InlineData(DataType.Float8E4M3Fn, "float8e4m3fn")]
    [InlineData(DataType.Int4, "int4")]
    public void RejectsUnsupportedTypes(DataType type, string name)
    {
        var proto = new TensorProto { DataType = (int)type };
        proto.Dims.Add(1);
        string path = Pb.Write(_dir.File("s.pb"), proto);

        var e = Assert.Throws<QuantizeException>(() => TensorProtoReader.Read(path));

        Assert.Equal(ErrorCodes.CalibrationFileUnreadable, e.Code);
        Assert.Contains(name, e.Message);
        Assert.Contains("not supported", e.Message);
    }

    [Fact]
    public void RejectsRawDataOfTheWrongLength()
    {
        var proto = Pb.Floats([2, 2], 1f, 2f, 3f);
        string path = Pb.Write(_dir.File("short.pb"), proto);

        var e = Assert.Throws<QuantizeException>(() => TensorProtoReader.Read(path));

        Assert.Equal(ErrorCodes.CalibrationFileUnreadable, e.Code);
        Assert.Contains("raw_data holds 12 bytes", e.Message);
    }

    [Fact]
    public void RejectsTypedDataOfTheWrongLength()
    {
        var proto = new TensorProto { DataType = (int)DataType.Int64 };
        proto.Dims.AddRange([3]);
        proto.Int64Data.AddRange([1, 2]);
        string path = Pb.Write(_dir.File("few.pb"), proto);

        var e = Assert.Throws<QuantizeException>(() => TensorProtoReader.Read(path));

        Assert.Equal(ErrorCodes.CalibrationFileUnreadable, e.Code);
        Assert.Contains("int64_data holds 2 values", e.Message);
    }

    [Fact]
    public void RejectsTensorWithoutData()
    {
        var proto = new TensorProto { DataType = (int)DataType.Float };
        proto.Dims.AddRange([3]);
        string path = Pb.Write(_dir.File("nodata.pb"), proto);

        var e = Assert.Throws<QuantizeException>(() => TensorProtoReader.Read(path));

        Assert.Equal(ErrorCodes.CalibrationFileUnreadable, e.Code);
        Assert.Contains("no data", e.Message);
    }

    [Fact]
    public void RejectsGarbage()
    {
        string path = _dir.File("garbage.pb");
        File.WriteAllBytes(path, [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01, 0x02]);

        var e = Assert.Throws<QuantizeException>(() => TensorProtoReader.Read(path));

        Assert.Equal(ErrorCodes.CalibrationFileUnreadable, e.Code);
        Assert.Equal(path, e.File);
    }

    [Fact]
    public void RejectsProtoWithoutDataType()
    {
        // A valid protobuf message that is not a TensorProto (an empty message parses as anything).
        string path = _dir.File("empty.pb");
        File.WriteAllBytes(path, []);

        var e = Assert.Throws<QuantizeException>(() => TensorProtoReader.Read(path));

        Assert.Equal(ErrorCodes.CalibrationFileUnreadable, e.Code);
        Assert.Contains("data_type", e.Message);
    }

    [Fact]
    public void RejectsHugeDims()
    {
        var proto = new TensorProto { DataType = (int)DataType.Double };
        proto.Dims.AddRange([1L << 40, 1L << 20]);
        string path = Pb.Write(_dir.File("huge.pb"), proto);

        var e = Assert.Throws<QuantizeException>(() => TensorProtoReader.Read(path));

        Assert.Equal(ErrorCodes.CalibrationFileUnreadable, e.Code);
        Assert.Contains("larger than", e.Message);
    }

    [Fact]
    public void RejectsNegativeDims()
    {
        var proto = new TensorProto { DataType = (int)DataType.Float };
        proto.Dims.AddRange([-1, 3]);
        string path = Pb.Write(_dir.File("neg.pb"), proto);

        var e = Assert.Throws<QuantizeException>(() => TensorProtoReader.Read(path));

        Assert.Equal(ErrorCodes.CalibrationFileUnreadable, e.Code);
        Assert.Contains("[-1,3]", e.Message);
    }
}
