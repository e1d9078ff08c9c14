using System.Globalization;

namespace Quantize.Onnx.Samples.Images;

/// <summary>How an image is fitted to the model's height and width.</summary>
public enum ImageResize
{
    /// <summary>Scaled to the target size; the aspect ratio may change.</summary>
    Stretch,

    /// <summary>Aspect kept, fitted inside the target and centred; the border is <see cref="ImageOptions.PadValue"/>.</summary>
    Letterbox,

    /// <summary>Aspect kept, fitted inside the target at the top-left corner; padded right and bottom.</summary>
    Fit,

    /// <summary>Aspect kept, scaled to cover the target, centre cropped.</summary>
    Crop,

    /// <summary>
    /// Text lines (PaddleOCR recognition/direction models): scaled to the target height keeping the
    /// aspect, the width rounded up and capped at the target width (wider lines are squeezed), padded right.
    /// </summary>
    FitHeight,
}

/// <summary>How resized pixels are computed.</summary>
public enum ImageInterpolation
{
    /// <summary>Bilinear with pixel centres at +0.5 (OpenCV's INTER_LINEAR, without antialiasing).</summary>
    Bilinear,

    /// <summary>Nearest neighbour: source pixel floor(x · source / target) (OpenCV's INTER_NEAREST).</summary>
    Nearest,
}

/// <summary>Whether the EXIF orientation tag of a photo turns its pixels before anything else.</summary>
public enum ImageOrientation
{
    /// <summary>Applied, as image viewers, browsers and OpenCV's imread do.</summary>
    Exif,

    /// <summary>The stored pixels as they are, as PIL's Image.open does (match a training pipeline that never transposed).</summary>
    Ignore,
}

/// <summary>Order of the model's axes for an image input.</summary>
public enum ImageLayout
{
    /// <summary>[N, C, H, W] (or [C, H, W]).</summary>
    Nchw,

    /// <summary>[N, H, W, C] (or [H, W, C]).</summary>
    Nhwc,
}

/// <summary>The channels the model reads.</summary>
public enum ImageChannels
{
    Rgb,
    Bgr,

    /// <summary>One channel: 0.299 R + 0.587 G + 0.114 B (ITU-R 601, as OpenCV and PIL convert).</summary>
    Gray,
}

/// <summary>
/// Turning an image file into a model input tensor: resize to the target size, then per pixel
/// <c>(value · Scale − Mean[c]) / Std[c]</c> with value in 0..255, in the model's layout and element
/// type (integer types are rounded and saturated). Null members are taken from the model's input
/// shape: size from its fixed height and width (else the image's own size), layout from where its
/// channel axis is (else NCHW), channels from its channel count (1: gray, else RGB).
/// </summary>
public sealed record ImageOptions
{
    /// <summary>Target (width, height); null: the model's fixed height and width, else the image's own size.</summary>
    public (int Width, int Height)? Size { get; init; }

    public ImageResize Resize { get; init; } = ImageResize.Stretch;

    public ImageInterpolation Interpolation { get; init; } = ImageInterpolation.Bilinear;

    public ImageLayout? Layout { get; init; }

    public ImageOrientation Orientation { get; init; } = ImageOrientation.Exif;

    public ImageChannels? Channels { get; init; }

    /// <summary>Multiplies the 0..255 pixel value before mean and std; null: 1/255 (values in [0, 1]) for float inputs, 1 for uint8/int8 inputs.</summary>
    public double? Scale { get; init; }

    /// <summary>Subtracted per channel (in the model's channel order) after scaling; one value applies to all channels.</summary>
    public IReadOnlyList<double> Mean { get; init; } = [0.0];

    /// <summary>Divides per channel after the mean; one value applies to all channels.</summary>
    public IReadOnlyList<double> Std { get; init; } = [1.0];

    /// <summary>The tensor value of padding (letterbox, fit, fit-height), after normalisation.</summary>
    public double PadValue { get; init; }

    /// <summary>The options as stable key/value pairs (provenance); empty values are the model-derived defaults.</summary>
    public IEnumerable<KeyValuePair<string, string>> ToSettings()
    {
        var c = CultureInfo.InvariantCulture;
        yield return new("image-size", Size is { } s ? $"{s.Width}x{s.Height}" : "");
        yield return new("image-resize", Names.Of(Resize));
        yield return new("image-interpolation", Names.Of(Interpolation));
        yield return new("image-layout", Layout is { } l ? Names.Of(l) : "");
        yield return new("image-channels", Channels is { } ch ? Names.Of(ch) : "");
        yield return new("image-scale", Scale?.ToString("R", c) ?? "");
        yield return new("image-mean", string.Join(";", Mean.Select(v => v.ToString("R", c))));
        yield return new("image-std", string.Join(";", Std.Select(v => v.ToString("R", c))));
        yield return new("image-pad-value", PadValue.ToString("R", c));
        yield return new("image-orientation", Names.Of(Orientation));
    }

    /// <summary>Parses "224x224" (width x height) or "224" (square); throws <see cref="ErrorCodes.InvalidOption"/>.</summary>
    public static (int Width, int Height) ParseSize(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var parts = text.Trim().Split('x', 'X');
        int width = 0, height = 0;
        bool ok = parts.Length is 1 or 2
            && int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out width) && width > 0
            && int.TryParse(parts[^1], NumberStyles.None, CultureInfo.InvariantCulture, out height) && height > 0;
        return ok ? (width, height) : throw BadOption("image size", text, "<width>x<height> in pixels, e.g. 192x48, or one number for a square");
    }

    /// <summary>Parses "0.5" or "0.485;0.456;0.406" (also ','-separated); throws <see cref="ErrorCodes.InvalidOption"/>.</summary>
    public static double[] ParseValues(string what, string text, bool positive)
    {
        ArgumentNullException.ThrowIfNull(text);
        var parts = text.Split([';', ','], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var values = new double[parts.Length];
        for (int i = 0; i < parts.Length; i++)
        {
            if (!double.TryParse(parts[i], NumberStyles.Float, CultureInfo.InvariantCulture, out values[i]) || !double.IsFinite(values[i])
                || (positive && values[i] <= 0))
            {
                throw BadOption(what, text, positive ? "positive numbers separated by ';'" : "numbers separated by ';'");
            }
        }

        if (values.Length is not (1 or 3 or 4))
        {
            throw BadOption(what, text, "one number (all channels) or one per channel (3, or 4), separated by ';'");
        }

        return values;
    }

    /// <summary>The kebab-case names used on the command line and in MSBuild (fit-height, nchw, bgr, ...).</summary>
    public static class Names
    {
        public static string Of<T>(T value) where T : struct, Enum =>
            string.Concat(value.ToString()!.Select((ch, i) => char.IsUpper(ch) && i > 0 ? "-" + char.ToLowerInvariant(ch) : char.ToLowerInvariant(ch).ToString()));

        public static T Parse<T>(string what, string text) where T : struct, Enum
        {
            foreach (var value in Enum.GetValues<T>())
            {
                if (string.Equals(Of(value), text.Trim(), StringComparison.OrdinalIgnoreCase))
                {
                    return value;
                }
            }

            throw BadOption(what, text, string.Join(", ", Enum.GetValues<T>().Select(v => Of(v))));
        }
    }

    private static QuantizeException BadOption(string what, string text, string allowed) =>
        new(ErrorCodes.InvalidOption, null, $"Invalid {what} '{text}': expected {allowed}.");
}
