using Quantize.Onnx.Samples.Images;
using Quantize.Onnx.Validation;

namespace Quantize.Onnx.Samples;

/// <summary>
/// Ground truth a sample carries beyond <c>expected/&lt;output&gt;.npy</c>: the class index of an image
/// in a class folder, and expected images (<c>&lt;sample&gt;/expected/&lt;output&gt;.png</c>, e.g. the
/// high-resolution image a super-resolution model should produce).
/// </summary>
public sealed class SampleGroundTruth(string source, int? classIndex, ImageSampleReader? images)
{
    /// <summary>The class index of the sample's label, if it has one.</summary>
    public int? ClassIndex { get; } = classIndex;

    /// <summary>
    /// The ground truth of <paramref name="output"/> (shape <paramref name="outputShape"/> on this sample), or null.
    /// A class index applies to a classifier output (rank 1-3, one row, ≥ 2 classes on the last axis). An
    /// expected image is converted like the inputs (layout, channel order, scale) but neither resized nor
    /// normalised by mean/std; a size that differs from the output's is error QNT1108.
    /// </summary>
    public ExpectedOutput? For(string output, IReadOnlyList<long> outputShape)
    {
        ArgumentNullException.ThrowIfNull(outputShape);
        if (ClassIndex is int index)
        {
            long count = outputShape.Aggregate(1L, (a, b) => a * b);
            long classes = outputShape.Count is >= 1 and <= 3 ? outputShape[^1] : 0;
            if (classes >= 2 && count == classes)
            {
                return new ExpectedOutput(source, [index], Labels: true);
            }
        }

        return images is null ? null : ExpectedImage(output, outputShape);
    }

    private ExpectedOutput? ExpectedImage(string output, IReadOnlyList<long> outputShape)
    {
        var folder = Path.Combine(source, "expected");
        if (!Directory.Exists(folder))
        {
            return null;
        }

        var file = new[] { output, SampleSet.SafeFileName(output) }
            .SelectMany(stem => ImageDecoder.Extensions.Select(ext => Path.Combine(folder, stem + ext)))
            .FirstOrDefault(File.Exists);
        if (file is null)
        {
            return null;
        }

        // The output's spatial size is the image's own; only its channel axis steers layout and channels.
        var dims = outputShape.Select((d, i) => (long?)d).ToArray();
        var options = images!.Options with { Size = null, Resize = ImageResize.Stretch, Mean = [0.0], Std = [1.0], PadValue = 0 };
        ImageInputShape shape;
        try
        {
            shape = ImageInputShape.Resolve(new InputSpec(output, Microsoft.ML.OnnxRuntime.Tensors.TensorElementType.Float, SpatialUnknown(dims, options.Layout)), options, file);
        }
        catch (QuantizeException e)
        {
            throw new QuantizeException(ErrorCodes.ExpectedShapeMismatch, file, $"Expected image '{file}' cannot stand for output '{output}' {ElementTypes.FormatShape(outputShape)}: {e.Message}", e);
        }

        var tensor = ImageTensorizer.ToTensor(ImageDecoder.Decode(file, options.Orientation), shape, file);
        if (!tensor.Shape.SequenceEqual(outputShape))
        {
            throw new QuantizeException(ErrorCodes.ExpectedShapeMismatch, file,
                $"Expected image '{file}' becomes {ElementTypes.FormatShape(tensor.Shape)} but the model's output '{output}' has shape {ElementTypes.FormatShape(outputShape)} on this sample. " +
                "Save the expected image at the output's size.");
        }

        return new ExpectedOutput(file, tensor.AsFloats().ToArray(), Labels: false);
    }

    /// <summary>The output's dims with height and width unknown, so the image keeps its own size.</summary>
    private static long?[] SpatialUnknown(long?[] dims, ImageLayout? layout)
    {
        if (dims.Length is not (3 or 4))
        {
            return dims;
        }

        int offset = dims.Length - 3;
        bool nhwc = layout == ImageLayout.Nhwc || (layout is null && dims[offset] is not (1 or 3) && dims[offset + 2] is 1 or 3);
        var copy = (long?[])dims.Clone();
        foreach (int axis in nhwc ? new[] { offset, offset + 1 } : new[] { offset + 1, offset + 2 })
        {
            copy[axis] = null;
        }

        return copy;
    }
}
