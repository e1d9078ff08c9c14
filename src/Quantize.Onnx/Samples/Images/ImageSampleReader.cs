namespace Quantize.Onnx.Samples.Images;

/// <summary>Reads image files as model inputs with one <see cref="ImageOptions"/>, resolving it against each input once.</summary>
public sealed class ImageSampleReader(ImageOptions options)
{
    private readonly Dictionary<string, ImageInputShape> _shapes = new(StringComparer.Ordinal);

    public ImageOptions Options { get; } = options ?? throw new ArgumentNullException(nameof(options));

    /// <summary>Decodes and converts <paramref name="file"/> for <paramref name="input"/>.</summary>
    public TensorData Read(string file, InputSpec input)
    {
        var shape = Resolve(input, file);
        return ImageTensorizer.ToTensor(ImageDecoder.Decode(file, Options.Orientation), shape, file);
    }

    /// <summary>The shape <paramref name="file"/> becomes, from its header only (no pixels decoded).</summary>
    public long[] ReadShape(string file, InputSpec input)
    {
        var shape = Resolve(input, file);
        var (width, height) = ImageDecoder.ReadSize(file, Options.Orientation);
        var placement = ImagePlacement.Of(width, height, shape.Size, Options.Resize);
        return shape.TensorShape(placement.TargetWidth, placement.TargetHeight);
    }

    /// <summary>The preprocessing resolved against <paramref name="input"/>; error QNT1110 (naming <paramref name="file"/>) when they disagree.</summary>
    public ImageInputShape Resolve(InputSpec input, string file)
    {
        ArgumentNullException.ThrowIfNull(input);
        if (!_shapes.TryGetValue(input.Name, out var shape))
        {
            _shapes[input.Name] = shape = ImageInputShape.Resolve(input, Options, file);
        }

        return shape;
    }
}
