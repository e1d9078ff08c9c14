using Google.Protobuf;
using Quantize.Onnx.Model;
using Quantize.Onnx.Model.Proto;
using DataType = Quantize.Onnx.Model.Proto.TensorProto.Types.DataType;

namespace Quantize.Onnx.Tests.Model;

public sealed class TensorValuesTests
{
    [Fact]
    public void Float_tensor_is_little_endian_raw_data_and_reads_back()
    {
        var tensor = TensorValues.FromFloats("w", [2, 2], [1f, -2.5f, 0f, float.MaxValue]);

        Assert.Equal("w", tensor.Name);
        Assert.Equal((int)DataType.Float, tensor.DataType);
        Assert.Equal([2L, 2L], tensor.Dims);
        Assert.Equal([0x00, 0x00, 0x80, 0x3F], tensor.RawData.Span[..4].ToArray());
        Assert.Equal([1f, -2.5f, 0f, float.MaxValue], TensorValues.ReadFloats(tensor));
    }

    [Fact]
    public void Float_data_field_is_read_too()
    {
        var tensor = new TensorProto { DataType = (int)DataType.Float, Dims = { 3 }, FloatData = { 1, 2, 3 } };
        Assert.Equal([1f, 2f, 3f], TensorValues.ReadFloats(tensor));
    }

    [Fact]
    public void Int64_tensors_read_from_raw_data_and_int64_data()
    {
        Assert.Equal([1L, -1L, long.MaxValue], TensorValues.ReadInt64s(TensorValues.FromInt64("s", [3], [1, -1, long.MaxValue])));
        Assert.Equal([4L, 5L], TensorValues.ReadInt64s(new TensorProto { DataType = (int)DataType.Int64, Dims = { 2 }, Int64Data = { 4, 5 } }));
        Assert.Equal([7L], TensorValues.ReadInt64s(TensorValues.FromInt64("scalar", [], [7])));
    }

    [Fact]
    public void Int32_tensors_read_back()
    {
        Assert.Equal([-3, 0, int.MinValue], TensorValues.ReadInt32s(TensorValues.FromInt32("b", [3], [-3, 0, int.MinValue])));
        Assert.Equal([9], TensorValues.ReadInt32s(new TensorProto { DataType = (int)DataType.Int32, Dims = { 1 }, Int32Data = { 9 } }));
    }

    [Fact]
    public void Int8_and_uint8_tensors_hold_one_byte_per_value()
    {
        var i8 = TensorValues.FromInt8("q", [3], [-128, 0, 127]);
        Assert.Equal((int)DataType.Int8, i8.DataType);
        Assert.Equal([0x80, 0x00, 0x7F], i8.RawData.ToByteArray());

        var u8 = TensorValues.FromUInt8("z", [], [200]);
        Assert.Equal((int)DataType.Uint8, u8.DataType);
        Assert.Empty(u8.Dims);
        Assert.Equal([200], u8.RawData.ToByteArray());
    }

    [Fact]
    public void Shape_must_match_the_number_of_values()
    {
        Assert.Throws<ArgumentException>(() => TensorValues.FromFloats("w", [2, 3], [1f, 2f]));
        Assert.Throws<ArgumentException>(() => TensorValues.FromInt64("w", [-1], [1]));
    }

    [Fact]
    public void Reading_the_wrong_type_is_a_programming_error()
    {
        Assert.Throws<ArgumentException>(() => TensorValues.ReadFloats(TensorValues.FromInt64("s", [1], [1])));
    }

    [Fact]
    public void Raw_data_of_the_wrong_length_is_QNT1002()
    {
        var tensor = new TensorProto { Name = "w", DataType = (int)DataType.Float, Dims = { 2 }, RawData = ByteString.CopyFrom(1, 2, 3) };
        var e = Assert.Throws<QuantizeException>(() => TensorValues.ReadFloats(tensor));
        Assert.Equal(ErrorCodes.ModelCorrupt, e.Code);
        Assert.Contains("'w'", e.Message);
    }
}
