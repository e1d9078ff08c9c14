using Quantize.Onnx.Tests.Samples;
using Quantize.Onnx.Validation;

namespace Quantize.Onnx.Tests.Validation;

public sealed class ExpectedOutputsTests : IDisposable
{
    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    [Fact]
    public void Reads_npy_and_pb_ground_truth_and_maps_illegal_name_characters()
    {
        var sample = _folder.Sub("s0");
        var expected = _folder.Sub("s0", "expected");
        Samples.Pb.Write(Path.Combine(expected, "out_probs.pb"), Samples.Pb.Floats([1, 2], 0.25f, 0.75f));
        Npy.WriteFloats(Path.Combine(expected, "image.npy"), [1, 1, 2, 2], 1f, 2f, 3f, 4f);

        var probs = ExpectedOutputs.Read(sample, "out:probs", [1, 2])!;
        var image = ExpectedOutputs.Read(sample, "image", [1, 1, 2, 2])!;

        Assert.Equal([0.25f, 0.75f], probs.Values);
        Assert.False(probs.Labels);
        Assert.Equal([1f, 2f, 3f, 4f], image.Values);
        Assert.Null(ExpectedOutputs.Read(sample, "other", [1, 2]));
        Assert.Null(ExpectedOutputs.Read(_folder.Sub("s1"), "image", [1, 1, 2, 2]));
    }

    [Fact]
    public void Integer_class_indices_are_labels_of_a_classifier_output()
    {
        var sample = _folder.Sub("s0");
        Npy.WriteInt64(Path.Combine(_folder.Sub("s0", "expected"), "probs.npy"), [4], 0, 3, 1, 2);

        var labels = ExpectedOutputs.Read(sample, "probs", [4, 10])!;

        Assert.True(labels.Labels);
        Assert.Equal([0f, 3f, 1f, 2f], labels.Values);
    }

    [Theory]
    [InlineData(new long[] { 1, 3 }, new long[] { 1, 2 })] // wrong class count
    [InlineData(new long[] { 2 }, new long[] { 1, 2, 1, 1 })] // float values, not labels, of the wrong shape
    public void A_wrong_shape_is_QNT1108_naming_the_file(long[] fileShape, long[] outputShape)
    {
        var sample = _folder.Sub("s0");
        var file = Npy.WriteFloats(Path.Combine(_folder.Sub("s0", "expected"), "y.npy"), fileShape);

        var e = Assert.Throws<QuantizeException>(() => ExpectedOutputs.Read(sample, "y", outputShape));

        Assert.Equal(ErrorCodes.ExpectedShapeMismatch, e.Code);
        Assert.Equal(file, e.File);
        Assert.Contains($"[{string.Join(", ", fileShape)}]", e.Message, StringComparison.Ordinal);
        Assert.Contains($"[{string.Join(", ", outputShape)}]", e.Message, StringComparison.Ordinal);
    }
}
