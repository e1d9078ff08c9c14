using Microsoft.ML.OnnxRuntime.Tensors;
using Quantize.Onnx.Model;
using Quantize.Onnx.Model.Proto;
using DataType = Quantize.Onnx.Model.Proto.TensorProto.Types.DataType;

namespace Quantize.Onnx.Tests.Model;

public sealed class TensorElementInfoTests
{
    [Theory]
    [InlineData(DataType.Float, 10, 40)]
    [InlineData(DataType.Double, 3, 24)]
    [InlineData(DataType.Float16, 3, 6)]
    [InlineData(DataType.Bfloat16, 3, 6)]
    [InlineData(DataType.Int8, 5, 5)]
    [InlineData(DataType.Bool, 5, 5)]
    [InlineData(DataType.Float8E4M3Fn, 5, 5)]
    [InlineData(DataType.Float8E8M0, 5, 5)]
    [InlineData(DataType.Int64, 2, 16)]
    [InlineData(DataType.Complex64, 2, 16)]
    [InlineData(DataType.Complex128, 2, 32)]
    [InlineData(DataType.Int4, 5, 3)]
    [InlineData(DataType.Uint4, 4, 2)]
    [InlineData(DataType.Float4E2M1, 1, 1)]
    [InlineData(DataType.Int2, 5, 2)]
    [InlineData(DataType.Uint2, 8, 2)]
    [InlineData(DataType.Int4, 0, 0)]
    public void ByteSize_rounds_packed_types_up_to_whole_bytes(DataType type, long count, long bytes) =>
        Assert.Equal(bytes, TensorElementInfo.ByteSize(type, count));

    [Fact]
    public void Every_defined_type_but_string_and_undefined_has_a_size()
    {
        foreach (var type in Enum.GetValues<DataType>())
        {
            Assert.Equal(type is not (DataType.String or DataType.Undefined), TensorElementInfo.HasFixedSize(type));
        }

        Assert.Throws<ArgumentException>(() => TensorElementInfo.ByteSize(DataType.String, 1));
    }

    [Fact]
    public void TryGetByteSize_uses_the_shape()
    {
        var tensor = new TensorProto { DataType = (int)DataType.Int4, Dims = { 3, 5 } };
        Assert.True(TensorElementInfo.TryGetByteSize(tensor, out long bytes));
        Assert.Equal(8, bytes);

        var scalar = new TensorProto { DataType = (int)DataType.Float };
        Assert.True(TensorElementInfo.TryGetByteSize(scalar, out bytes));
        Assert.Equal(4, bytes);

        Assert.False(TensorElementInfo.TryGetByteSize(new TensorProto { DataType = (int)DataType.String, Dims = { 2 } }, out _));
        Assert.False(TensorElementInfo.TryGetByteSize(new TensorProto { DataType = (int)DataType.Float, Dims = { -1 } }, out _));
        Assert.False(TensorElementInfo.TryGetByteSize(new TensorProto { DataType = (int)DataType.Float, Dims = { long.MaxValue, 2 } }, out _));
    }

    [Theory]
    [InlineData(DataType.Float, "FLOAT")]
    [InlineData(DataType.Bfloat16, "BFLOAT16")]
    [InlineData(DataType.Float8E4M3Fnuz, "FLOAT8E4M3FNUZ")]
    [InlineData(DataType.Uint4, "UINT4")]
    [InlineData((DataType)99, "type 99")]
    public void Name_uses_the_onnx_spelling(DataType type, string name) => Assert.Equal(name, TensorElementInfo.Name(type));

    [Fact]
    public void IsFloat_is_true_for_the_four_float_types_only()
    {
        DataType[] floats = [DataType.Float, DataType.Float16, DataType.Bfloat16, DataType.Double];
        foreach (var type in Enum.GetValues<DataType>())
        {
            Assert.Equal(floats.Contains(type), TensorElementInfo.IsFloat(type));
        }
    }

    [Fact]
    public void Onnx_runtime_mapping_round_trips_where_it_exists()
    {
        foreach (var type in Enum.GetValues<DataType>())
        {
            if (TensorElementInfo.TryToOrt(type, out var ort))
            {
                Assert.Equal(type, TensorElementInfo.FromOrt(ort));
                Assert.Equal((int)type, (int)ort); // both follow the ONNX numbering
            }
            else
            {
                Assert.True(type is DataType.Undefined || (int)type > (int)DataType.Bfloat16, type.ToString());
            }
        }

        Assert.Equal(TensorElementType.Float16, TensorElementInfo.TryToOrt(DataType.Float16, out var f16) ? f16 : default);
        Assert.Throws<ArgumentOutOfRangeException>(() => TensorElementInfo.FromOrt(TensorElementType.DataTypeMax));
    }
}
