using Microsoft.ML.OnnxRuntime.Tensors;
using Quantize.Onnx.Model.Proto;
using Quantize.Onnx.Samples;

namespace Quantize.Onnx.Tests.Samples;

public sealed class InputSpecTests
{
    private static ValueInfoProto TensorInput(string name, int elemType, params object[] dims)
    {
        var shape = new TensorShapeProto();
        foreach (object d in dims)
        {
            shape.Dim.Add(d switch
            {
                long v => new TensorShapeProto.Types.Dimension { DimValue = v },
                int v => new TensorShapeProto.Types.Dimension { DimValue = v },
                string p => new TensorShapeProto.Types.Dimension { DimParam = p },
                _ => new TensorShapeProto.Types.Dimension(),
            });
        }

        return new ValueInfoProto
        {
            Name = name,
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = elemType, Shape = shape } },
        };
    }

    [Fact]
    public void FromValueInfoReadsTypeAndDims()
    {
        var spec = InputSpec.FromValueInfo(TensorInput("x", 1, "p2o.DynamicDimension.0", 3, "H", false));

        Assert.Equal("x", spec.Name);
        Assert.Equal(TensorElementType.Float, spec.ElementType);
        Assert.Equal([null, 3L, null, null], spec.Dims);
        Assert.True(spec.RankKnown);
        Assert.Equal("[?,3,?,?]", spec.FormatShape());
    }

    [Fact]
    public void FromValueInfoReadsScalarsAndOtherTypes()
    {
        var spec = InputSpec.FromValueInfo(TensorInput("sr", 7));

        Assert.Equal(TensorElementType.Int64, spec.ElementType);
        Assert.Empty(spec.Dims);
        Assert.Equal("[]", spec.FormatShape());
        Assert.True(spec.Accepts([]));
        Assert.False(spec.Accepts([1]));
    }

    [Fact]
    public void MissingShapeAcceptsAnyShape()
    {
        var info = new ValueInfoProto { Name = "x", Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = 1 } } };

        var spec = InputSpec.FromValueInfo(info);

        Assert.False(spec.RankKnown);
        Assert.True(spec.Accepts([1, 2, 3]));
        Assert.True(spec.Accepts([]));
    }

    [Fact]
    public void AcceptsChecksRankAndFixedDims()
    {
        var spec = new InputSpec("x", TensorElementType.Float, [null, 3, 96, 96]);

        Assert.True(spec.Accepts([1, 3, 96, 96]));
        Assert.True(spec.Accepts([8, 3, 96, 96]));
        Assert.False(spec.Accepts([1, 3, 96, 95]));
        Assert.False(spec.Accepts([3, 96, 96]));
        Assert.Equal("[?,3,96,96]", spec.FormatShape());
    }

    [Fact]
    public void RejectsNonTensorInputs()
    {
        var info = new ValueInfoProto
        {
            Name = "seq",
            Type = new TypeProto { SequenceType = new TypeProto.Types.Sequence { ElemType = new TypeProto() } },
        };

        var e = Assert.Throws<QuantizeException>(() => InputSpec.FromValueInfo(info));

        Assert.Equal(ErrorCodes.ModelUnsupported, e.Code);
        Assert.Contains("seq", e.Message);
    }

    [Fact]
    public void RejectsStringInputs()
    {
        var e = Assert.Throws<QuantizeException>(() => InputSpec.FromValueInfo(TensorInput("text", 8, 1)));

        Assert.Equal(ErrorCodes.ModelUnsupported, e.Code);
        Assert.Contains("string", e.Message);
    }
}
