using System.Buffers.Binary;
using Microsoft.ML.OnnxRuntime.Tensors;
using Quantize.Onnx.Samples;

namespace Quantize.Onnx.Tests.Samples;

public sealed class NpyReaderTests : IDisposable
{
    private readonly TempFolder _dir = new();

    public void Dispose() => _dir.Dispose();

    public static TheoryData<string, TensorElementType, int> Dtypes => new()
    {
        { "|b1", TensorElementType.Bool, 1 },
        { "|i1", TensorElementType.Int8, 1 },
        { "|u1", TensorElementType.UInt8, 1 },
        { "<i2", TensorElementType.Int16, 2 },
        { "<u2", TensorElementType.UInt16, 2 },
        { "<i4", TensorElementType.Int32, 4 },
        { "<u4", TensorElementType.UInt32, 4 },
        { "<i8", TensorElementType.Int64, 8 },
        { "<u8", TensorElementType.UInt64, 8 },
        { "<f2", TensorElementType.Float16, 2 },
        { "<f4", TensorElementType.Float, 4 },
        { "<f8", TensorElementType.Double, 8 },
        { "=f4", TensorElementType.Float, 4 },
        { "<b1", TensorElementType.Bool, 1 },
    };

    [Theory]
    [MemberData(nameof(Dtypes))]
    public void ReadsEveryNumericDtype(string descr, TensorElementType type, int size)
    {
        // 2x3 elements; the bytes are arbitrary but distinct (bool keeps to 0/1).
        var data = new byte[6 * size];
        for (int i = 0; i < data.Length; i++)
        {
            data[i] = type == TensorElementType.Bool ? (byte)(i % 2) : (byte)(i * 7 + 1);
        }

        string path = Npy.Write(_dir.File("sample.npy"), descr, "(2, 3)", data);

        var tensor = NpyReader.Read(path);

        Assert.Equal("sample", tensor.Name);
        Assert.Equal(type, tensor.ElementType);
        Assert.Equal([2L, 3L], tensor.Shape);
        Assert.Equal(6, tensor.ElementCount);
        Assert.Equal(data, tensor.Data);
    }

    [Theory]
    [InlineData(">i2", TensorElementType.Int16, 2)]
    [InlineData(">u2", TensorElementType.UInt16, 2)]
    [InlineData(">f2", TensorElementType.Float16, 2)]
    [InlineData(">i4", TensorElementType.Int32, 4)]
    [InlineData(">u4", TensorElementType.UInt32, 4)]
    [InlineData(">f4", TensorElementType.Float, 4)]
    [InlineData(">i8", TensorElementType.Int64, 8)]
    [InlineData(">u8", TensorElementType.UInt64, 8)]
    [InlineData(">f8", TensorElementType.Double, 8)]
    [InlineData(">i1", TensorElementType.Int8, 1)]
    public void ConvertsBigEndianToLittleEndian(string descr, TensorElementType type, int size)
    {
        var bigEndian = new byte[3 * size];
        for (int i = 0; i < bigEndian.Length; i++)
        {
            bigEndian[i] = (byte)(i + 1);
        }

        var expected = (byte[])bigEndian.Clone();
        for (int e = 0; e < 3; e++)
        {
            Array.Reverse(expected, e * size, size);
        }

        var tensor = NpyReader.Read(Npy.Write(_dir.File("be.npy"), descr, "(3,)", bigEndian));

        Assert.Equal(type, tensor.ElementType);
        Assert.Equal(expected, tensor.Data);
    }

    [Fact]
    public void BigEndianFloatsHaveTheirValues()
    {
        var data = new byte[8];
        BinaryPrimitives.WriteSingleBigEndian(data, 1.5f);
        BinaryPrimitives.WriteSingleBigEndian(data.AsSpan(4), -1024.25f);

        var tensor = NpyReader.Read(Npy.Write(_dir.File("be.npy"), ">f4", "(2,)", data));

        Assert.Equal([1.5f, -1024.25f], tensor.AsFloats().ToArray());
    }

    [Fact]
    public void ReadsFloatValues()
    {
        string path = Npy.WriteFloats(_dir.File("x.npy"), [1, 3], 0.5f, -2f, 3.25f);

        var tensor = NpyReader.Read(path);

        Assert.Equal([0.5f, -2f, 3.25f], tensor.AsFloats().ToArray());
    }

    [Fact]
    public void ReadsZeroDimensionalArray()
    {
        var data = new byte[8];
        BinaryPrimitives.WriteInt64LittleEndian(data, 16000);

        var tensor = NpyReader.Read(Npy.Write(_dir.File("sr.npy"), "<i8", "()", data));

        Assert.Equal("sr", tensor.Name);
        Assert.Equal(TensorElementType.Int64, tensor.ElementType);
        Assert.Empty(tensor.Shape);
        Assert.Equal(1, tensor.ElementCount);
        Assert.Equal(16000, BinaryPrimitives.ReadInt64LittleEndian(tensor.Data));
    }

    [Fact]
    public void ReadsEmptyArray()
    {
        var tensor = NpyReader.Read(Npy.Write(_dir.File("e.npy"), "<f4", "(0, 3)", []));

        Assert.Equal([0L, 3L], tensor.Shape);
        Assert.Equal(0, tensor.ElementCount);
        Assert.Empty(tensor.Data);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void ReadsHeaderVersions(int major)
    {
        var data = new byte[4 * 4];
        BinaryPrimitives.WriteSingleLittleEndian(data.AsSpan(12), 7f);

        var tensor = NpyReader.Read(Npy.Write(_dir.File("v.npy"), "<f4", "(2, 2)", data, major: major));

        Assert.Equal([2L, 2L], tensor.Shape);
        Assert.Equal(7f, tensor.AsFloats()[3]);
    }

    [Fact]
    public void ReadsHeaderWithDoubleQuotesAndPython2Longs()
    {
        var bytes = Npy.Build("", "", new byte[12], rawHeader: "{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": (3L,)}");
        string path = _dir.File("py2.npy");
        File.WriteAllBytes(path, bytes);

        var tensor = NpyReader.Read(path);

        Assert.Equal([3L], tensor.Shape);
    }

    [Fact]
    public void ReadHeaderDoesNotNeedTheData()
    {
        string path = Npy.Write(_dir.File("h.npy"), "<u2", "(4, 5)", []);

        var (type, shape) = NpyReader.ReadHeader(path);

        Assert.Equal(TensorElementType.UInt16, type);
        Assert.Equal([4L, 5L], shape);
    }

    [Fact]
    public void RejectsFortranOrderWithAHint()
    {
        string path = Npy.Write(_dir.File("f.npy"), "<f4", "(2, 3)", new byte[24], fortran: true);

        var e = Assert.Throws<QuantizeException>(() => NpyReader.Read(path));

        Assert.Equal(ErrorCodes.CalibrationFileUnreadable, e.Code);
        Assert.Equal(path, e.File);
        Assert.Contains("Fortran", e.Message);
        Assert.Contains("ascontiguousarray", e.Message);
        Assert.Contains(path, e.Message);
    }

    [Fact]
    public void AcceptsFortranOrderWhenItEqualsCOrder()
    {
        var tensor = NpyReader.Read(Npy.Write(_dir.File("f1.npy"), "<f4", "(1, 3)", new byte[12], fortran: true));

        Assert.Equal([1L, 3L], tensor.Shape);
    }

    [Fact]
    public void RejectsTruncatedData()
    {
        string path = Npy.Write(_dir.File("t.npy"), "<f4", "(1, 3, 4, 4)", new byte[100]);

        var e = Assert.Throws<QuantizeException>(() => NpyReader.Read(path));

        Assert.Equal(ErrorCodes.CalibrationFileUnreadable, e.Code);
        Assert.Equal(path, e.File);
        Assert.Contains("truncated", e.Message);
        Assert.Contains("192", e.Message);
    }

    [Fact]
    public void RejectsTruncatedHeader()
    {
        var bytes = Npy.Build("<f4", "(3,)", new byte[12]);
        string path = _dir.File("th.npy");
        File.WriteAllBytes(path, bytes[..30]);

        var e = Assert.Throws<QuantizeException>(() => NpyReader.Read(path));

        Assert.Equal(ErrorCodes.CalibrationFileUnreadable, e.Code);
        Assert.Contains("truncated", e.Message);
    }

    [Theory]
    [InlineData("|O", "object")]
    [InlineData("<U5", "unicode strings")]
    [InlineData("|S3", "byte strings")]
    [InlineData("<c8", "complex")]
    [InlineData("<c16", "complex")]
    [InlineData("|V8", "structured")]
    [InlineData("<M8[ns]", "datetimes")]
    [InlineData("<m8[s]", "timedeltas")]
    [InlineData("<f16", "longdouble")]
    public void RejectsUnsupportedDtypesSayingWhat(string descr, string what)
    {
        string path = Npy.Write(_dir.File("u.npy"), descr, "(2,)", new byte[64]);

        var e = Assert.Throws<QuantizeException>(() => NpyReader.Read(path));

        Assert.Equal(ErrorCodes.CalibrationFileUnreadable, e.Code);
        Assert.Equal(path, e.File);
        Assert.Contains(what, e.Message);
        Assert.Contains("not supported", e.Message);
        Assert.Contains("float32", e.Message);
    }

    [Fact]
    public void RejectsStructuredArrays()
    {
        var bytes = Npy.Build("", "", new byte[16], rawHeader: "{'descr': [('a', '<f4'), ('b', '<i4')], 'fortran_order': False, 'shape': (2,), }");
        string path = _dir.File("rec.npy");
        File.WriteAllBytes(path, bytes);

        var e = Assert.Throws<QuantizeException>(() => NpyReader.Read(path));

        Assert.Equal(ErrorCodes.CalibrationFileUnreadable, e.Code);
        Assert.Contains("structured", e.Message);
    }

    [Fact]
    public void RejectsFilesThatAreNotNpy()
    {
        string path = _dir.File("image.npy");
        File.WriteAllBytes(path, [0x89, (byte)'P', (byte)'N', (byte)'G', 13, 10, 26, 10, 0, 0, 0, 13]);

        var e = Assert.Throws<QuantizeException>(() => NpyReader.Read(path));

        Assert.Equal(ErrorCodes.CalibrationFileUnreadable, e.Code);
        Assert.Contains("not a NumPy .npy file", e.Message);
    }

    [Fact]
    public void RejectsUnknownFormatVersion()
    {
        var bytes = Npy.Build("<f4", "(1,)", new byte[4]);
        bytes[6] = 4;
        string path = _dir.File("v4.npy");
        File.WriteAllBytes(path, bytes);

        var e = Assert.Throws<QuantizeException>(() => NpyReader.Read(path));

        Assert.Equal(ErrorCodes.CalibrationFileUnreadable, e.Code);
        Assert.Contains("version 4", e.Message);
    }

    [Theory]
    [InlineData("{'descr': '<f4', 'shape': (2,), }", "lacks")]
    [InlineData("{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }", "bad dimension")]
    [InlineData("{'descr': '<f4', 'fortran_order': False, 'shape': (2,)", "cannot be parsed")]
    [InlineData("['descr']", "cannot be parsed")]
    public void RejectsMalformedHeaders(string header, string problem)
    {
        string path = _dir.File("bad.npy");
        File.WriteAllBytes(path, Npy.Build("", "", new byte[8], rawHeader: header));

        var e = Assert.Throws<QuantizeException>(() => NpyReader.Read(path));

        Assert.Equal(ErrorCodes.CalibrationFileUnreadable, e.Code);
        Assert.Contains(problem, e.Message);
    }

    [Theory]
    [InlineData("(1000000, 1000000, 1000000)", "larger than")]
    [InlineData("(9223372036854775807, 2)", "too large")]
    public void RejectsHugeShapes(string shape, string problem)
    {
        string path = Npy.Write(_dir.File("huge.npy"), "<f4", shape, new byte[16]);

        var e = Assert.Throws<QuantizeException>(() => NpyReader.Read(path));

        Assert.Equal(ErrorCodes.CalibrationFileUnreadable, e.Code);
        Assert.Contains(problem, e.Message);
    }

    [Fact]
    public void MissingFileIsUnreadable()
    {
        string path = _dir.File("nope.npy");

        var e = Assert.Throws<QuantizeException>(() => NpyReader.Read(path));

        Assert.Equal(ErrorCodes.CalibrationFileUnreadable, e.Code);
        Assert.Equal(path, e.File);
    }
}
