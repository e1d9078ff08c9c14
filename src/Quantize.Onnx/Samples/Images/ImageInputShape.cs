using Microsoft.ML.OnnxRuntime.Tensors;

namespace Quantize.Onnx.Samples.Images;

/// <summary>
/// An image preprocessing resolved against one model input: layout, channels, target size and element
/// type. Everything the options leave open is read from the input's shape; anything they say that the
/// shape contradicts is error <see cref="ErrorCodes.ImagePreprocessingMismatch"/> naming both.
/// </summary>
public sealed record ImageInputShape(
    InputSpec Input, ImageOptions Options, ImageLayout Layout, ImageChannels Channels, (int Width, int Height)? Size, bool HasBatch)
{
    public int ChannelCount => Channels == ImageChannels.Gray ? 1 : 3;

    /// <summary>The tensor shape for an image resized to <paramref name="width"/> x <paramref name="height"/>.</summary>
    public long[] TensorShape(int width, int height)
    {
        long[] hwc = Layout == ImageLayout.Nchw ? [ChannelCount, height, width] : [height, width, ChannelCount];
        return HasBatch ? [1, .. hwc] : hwc;
    }

    public static ImageInputShape Resolve(InputSpec input, ImageOptions options, string file)
    {
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(options);
        string model = $"model input '{input.Name}' {input.FormatShape()}";
        if (input.ElementType is not (TensorElementType.Float or TensorElementType.Double or TensorElementType.Float16 or TensorElementType.UInt8 or TensorElementType.Int8))
        {
            throw Mismatch(file, $"Images cannot feed {model}: it takes {ElementTypes.Describe(input.ElementType)}; images become float32, float64, float16, uint8 or int8 tensors. Provide .npy samples instead.");
        }

        var dims = input.RankKnown ? input.Dims : [null, null, null, null];
        if (dims.Count is not (3 or 4))
        {
            throw Mismatch(file, $"Images cannot feed {model}: an image input has rank 4 ([N,C,H,W] or [N,H,W,C]) or 3 (without the batch axis). Provide .npy samples instead.");
        }

        bool hasBatch = dims.Count == 4;
        if (hasBatch && dims[0] is long n && n != 1)
        {
            throw Mismatch(file, $"{Capital(model)} has a fixed batch of {n}; image samples are one image each (batch 1).");
        }

        var spatial = hasBatch ? dims.Skip(1).ToArray() : dims.ToArray();
        var layout = options.Layout ?? InferLayout(spatial);
        var (c, h, w) = layout == ImageLayout.Nchw ? (spatial[0], spatial[1], spatial[2]) : (spatial[2], spatial[0], spatial[1]);
        string layoutName = ImageOptions.Names.Of(layout).ToUpperInvariant();
        if (c is long count && count is not (1 or 3))
        {
            throw Mismatch(file, $"The image layout {layoutName} puts the channels on an axis of size {count} in {model}; images have 1 (gray) or 3 (RGB/BGR) channels. " +
                $"Set the image layout to {(layout == ImageLayout.Nchw ? "nhwc" : "nchw")} if that is how the model reads images.");
        }

        var channels = options.Channels ?? (c == 1 ? ImageChannels.Gray : ImageChannels.Rgb);
        int channelCount = channels == ImageChannels.Gray ? 1 : 3;
        if (c is long fixedChannels && fixedChannels != channelCount)
        {
            throw Mismatch(file, $"Image channels '{ImageOptions.Names.Of(channels)}' give {channelCount} channel(s) but {model} takes {fixedChannels} ({layoutName}). " +
                $"Set the image channels to {(fixedChannels == 1 ? "gray" : "rgb or bgr")}.");
        }

        foreach (var (what, values) in new[] { ("mean", options.Mean), ("std", options.Std) })
        {
            if (values.Count != 1 && values.Count != channelCount)
            {
                throw Mismatch(file, $"The image {what} has {values.Count} values but the images have {channelCount} channel(s) for {model}: give one value, or one per channel.");
            }
        }

        var size = options.Size;
        if (size is { } s && ((w is long fw && fw != s.Width) || (h is long fh && fh != s.Height)))
        {
            throw Mismatch(file, $"The image size {s.Width}x{s.Height} (width x height) disagrees with {model}, which takes {w?.ToString() ?? "?"}x{h?.ToString() ?? "?"} ({layoutName}). " +
                "Remove the image size to use the model's, or set it to the model's.");
        }

        if (size is null && w is long mw && h is long mh)
        {
            size = ((int)mw, (int)mh);
        }

        if (size is null && options.Resize is not ImageResize.Stretch)
        {
            throw Mismatch(file, $"Resize '{ImageOptions.Names.Of(options.Resize)}' needs a target size, but {model} has no fixed height and width. Set the image size (e.g. 192x48).");
        }

        return new ImageInputShape(input, options, layout, channels, size, hasBatch);
    }

    /// <summary>NCHW unless only the last axis looks like channels (1 or 3 while the first does not).</summary>
    private static ImageLayout InferLayout(IReadOnlyList<long?> spatial)
    {
        static bool LooksLikeChannels(long? d) => d is 1 or 3;
        return !LooksLikeChannels(spatial[0]) && LooksLikeChannels(spatial[2]) ? ImageLayout.Nhwc : ImageLayout.Nchw;
    }

    private static string Capital(string s) => char.ToUpperInvariant(s[0]) + s[1..];

    private static QuantizeException Mismatch(string file, string message) => new(ErrorCodes.ImagePreprocessingMismatch, file, message);
}
