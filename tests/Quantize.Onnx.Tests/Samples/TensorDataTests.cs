using System.Buffers.Binary;
using Microsoft.ML.OnnxRuntime.Tensors;
using Quantize.Onnx.Samples;

namespace Quantize.Onnx.Tests.Samples;

public sealed class TensorDataTests
{
    private static TensorData Floats(long[] shape, params float[] values)
    {
        var data = new byte[values.Length * 4];
        for (int i = 0; i < values.Length; i++)
        {
            BinaryPrimitives.WriteSingleLittleEndian(data.AsSpan(i * 4), values[i]);
        }

        return new TensorData("x", TensorElementType.Float, shape, data);
    }

    private static TensorData Halves(TensorElementType type, params ushort[] bits)
    {
        var data = new byte[bits.Length * 2];
        for (int i = 0; i < bits.Length; i++)
        {
            BinaryPrimitives.WriteUInt16LittleEndian(data.AsSpan(i * 2), bits[i]);
        }

        return new TensorData("h", type, [bits.Length], data);
    }

    [Fact]
    public void ToOrtValueCopiesTypeShapeAndData()
    {
        var tensor = Floats([1, 2, 2], 1f, 2f, 3f, 4f);

        using var value = tensor.ToOrtValue();

        var info = value.GetTensorTypeAndShape();
        Assert.Equal(TensorElementType.Float, info.ElementDataType);
        Assert.Equal([1L, 2L, 2L], info.Shape);
        Assert.Equal([1f, 2f, 3f, 4f], value.GetTensorDataAsSpan<float>().ToArray());

        tensor.Data[0] = 0xFF; // A copy: later changes do not reach the OrtValue.
        Assert.Equal(1f, value.GetTensorDataAsSpan<float>()[0]);
    }

    [Fact]
    public void ToOrtValueHandlesScalarsAndOtherTypes()
    {
        var data = new byte[8];
        BinaryPrimitives.WriteInt64LittleEndian(data, 16000);
        var scalar = new TensorData("sr", TensorElementType.Int64, [], data);

        using var value = scalar.ToOrtValue();

        var info = value.GetTensorTypeAndShape();
        Assert.Equal(TensorElementType.Int64, info.ElementDataType);
        Assert.Empty(info.Shape);
        Assert.Equal(16000, value.GetTensorDataAsSpan<long>()[0]);
    }

    [Theory]
    [InlineData(TensorElementType.Float16)]
    [InlineData(TensorElementType.BFloat16)]
    [InlineData(TensorElementType.Bool)]
    [InlineData(TensorElementType.UInt8)]
    [InlineData(TensorElementType.Double)]
    public void ToOrtValueKeepsTheBytesOfEveryType(TensorElementType type)
    {
        int size = ElementTypes.SizeOf(type);
        var data = Enumerable.Range(0, 3 * size).Select(i => type == TensorElementType.Bool ? (byte)(i % 2) : (byte)(i + 1)).ToArray();
        var tensor = new TensorData("t", type, [3], data);

        using var value = tensor.ToOrtValue();

        Assert.Equal(type, value.GetTensorTypeAndShape().ElementDataType);
        Assert.Equal(data, value.GetTensorMutableRawData().ToArray());
    }

    [Fact]
    public void AsFloatsRejectsOtherTypes()
    {
        var tensor = new TensorData("i", TensorElementType.Int32, [1], new byte[4]);

        Assert.Throws<InvalidOperationException>(() => tensor.AsFloats().Length);
    }

    [Fact]
    public void ConstructorChecksTheDataLength()
    {
        Assert.Throws<ArgumentException>(() => new TensorData("x", TensorElementType.Float, [2, 2], new byte[12]));
        Assert.Throws<ArgumentException>(() => new TensorData("x", TensorElementType.String, [1], new byte[8]));
    }

    [Fact]
    public void FindsNaNAndInfinityInFloats()
    {
        Assert.False(Floats([3], 1f, float.MaxValue, float.Epsilon).TryFindNonFinite(out _));

        Assert.True(Floats([4], 0f, 1f, float.NaN, float.PositiveInfinity).TryFindNonFinite(out long nan));
        Assert.Equal(2, nan);

        var inf = Floats([2], 0f, float.NegativeInfinity);
        Assert.True(inf.TryFindNonFinite(out long infIndex));
        Assert.Equal(1, infIndex);
        Assert.Equal("-Inf", inf.DescribeElement(infIndex));
    }

    [Fact]
    public void FindsNonFiniteDoubles()
    {
        var data = new byte[24];
        BinaryPrimitives.WriteDoubleLittleEndian(data, 1e308);
        BinaryPrimitives.WriteDoubleLittleEndian(data.AsSpan(8), -0.0);
        BinaryPrimitives.WriteDoubleLittleEndian(data.AsSpan(16), double.PositiveInfinity);
        var tensor = new TensorData("d", TensorElementType.Double, [3], data);

        Assert.True(tensor.TryFindNonFinite(out long index));
        Assert.Equal(2, index);
        Assert.Equal("+Inf", tensor.DescribeElement(index));
    }

    [Fact]
    public void FindsNonFiniteHalfFloats()
    {
        // float16: 1.0 = 0x3C00, 65504 = 0x7BFF (largest finite), +Inf = 0x7C00, NaN = 0x7E00.
        Assert.False(Halves(TensorElementType.Float16, 0x3C00, 0x7BFF, 0xFBFF).TryFindNonFinite(out _));
        var nan = Halves(TensorElementType.Float16, 0x3C00, 0x7E00);
        Assert.True(nan.TryFindNonFinite(out long index));
        Assert.Equal(1, index);
        Assert.Equal("NaN", nan.DescribeElement(index));
        Assert.True(Halves(TensorElementType.Float16, 0xFC00).TryFindNonFinite(out _));
    }

    [Fact]
    public void FindsNonFiniteBFloat16()
    {
        // bfloat16: 1.0 = 0x3F80, largest finite = 0x7F7F, +Inf = 0x7F80, NaN = 0x7FC0.
        Assert.False(Halves(TensorElementType.BFloat16, 0x3F80, 0x7F7F).TryFindNonFinite(out _));
        var inf = Halves(TensorElementType.BFloat16, 0x3F80, 0x3F80, 0x7F80);
        Assert.True(inf.TryFindNonFinite(out long index));
        Assert.Equal(2, index);
        Assert.Equal("+Inf", inf.DescribeElement(index));
        Assert.True(Halves(TensorElementType.BFloat16, 0x7FC0).TryFindNonFinite(out _));
    }

    [Fact]
    public void IntegersAreAlwaysFinite()
    {
        var data = Enumerable.Repeat((byte)0xFF, 16).ToArray();

        Assert.False(new TensorData("i", TensorElementType.Int32, [4], data).TryFindNonFinite(out long index));
        Assert.Equal(-1, index);
    }
}
