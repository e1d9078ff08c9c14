using SkiaSharp;

namespace Quantize.Onnx.Samples.Images;

/// <summary>
/// Decodes PNG, JPEG, BMP and WebP files with SkiaSharp (Skia's codecs). The EXIF orientation tag is applied
/// unless the caller opts out, so a phone photo reaches the model the way every viewer shows it.
/// </summary>
public static class ImageDecoder
{
    /// <summary>File extensions read as images (case-insensitive).</summary>
    public static readonly IReadOnlyList<string> Extensions = [".png", ".jpg", ".jpeg", ".bmp", ".webp"];

    public static bool IsImageFile(string path) =>
        Extensions.Any(e => path.EndsWith(e, StringComparison.OrdinalIgnoreCase));

    /// <summary>Width and height from the file's header (as displayed when <paramref name="orientation"/> is EXIF), without decoding pixels.</summary>
    public static (int Width, int Height) ReadSize(string path, ImageOrientation orientation = ImageOrientation.Exif)
    {
        using var codec = OpenCodec(path);
        return orientation == ImageOrientation.Exif && ExifOrientation.SwapsAxes((int)codec.EncodedOrigin)
            ? (codec.Info.Height, codec.Info.Width)
            : (codec.Info.Width, codec.Info.Height);
    }

    /// <summary>Decodes the whole image to 8-bit RGB (unpremultiplied; alpha dropped), turned by its EXIF orientation unless told to ignore it.</summary>
    /// <summary>Most pixels of one image (8192 × 8192): its RGBA buffer, 256 MiB, stays far inside int and inside memory.</summary>
    public const long MaxPixels = 8192L * 8192;

    public static RgbImage Decode(string path, ImageOrientation orientation = ImageOrientation.Exif)
    {
        using var codec = OpenCodec(path);
        // A header may declare any size: check it before Skia computes a buffer size in int (it overflows, and a native
        // decoder then writes past the buffer) or we allocate gigabytes for one sample.
        if ((long)codec.Info.Width * codec.Info.Height > MaxPixels)
        {
            throw Unreadable(path, $"it declares {codec.Info.Width}x{codec.Info.Height} pixels, more than the {MaxPixels / 1_000_000} million a calibration image may have; resize it.");
        }

        var info = new SKImageInfo(codec.Info.Width, codec.Info.Height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        var rgba = new byte[info.BytesSize];
        SKCodecResult result;
        unsafe
        {
            fixed (byte* p = rgba)
            {
                result = codec.GetPixels(info, (IntPtr)p);
            }
        }

        // A truncated file decodes partially (the rest stays zero); that is not a sample to calibrate with.
        if (result != SKCodecResult.Success)
        {
            throw Unreadable(path, $"decoding failed ({result}); the file is damaged or truncated.");
        }

        var rgb = new byte[info.Width * info.Height * 3];
        for (int i = 0, j = 0; i < rgba.Length; i += 4, j += 3)
        {
            rgb[j] = rgba[i];
            rgb[j + 1] = rgba[i + 1];
            rgb[j + 2] = rgba[i + 2];
        }

        var image = new RgbImage(info.Width, info.Height, rgb);
        return orientation == ImageOrientation.Exif ? ExifOrientation.Apply(image, (int)codec.EncodedOrigin) : image;
    }

    private static SKCodec OpenCodec(string path)
    {
        SKStream? stream = null;
        try
        {
            if (!File.Exists(path))
            {
                throw Unreadable(path, "the file does not exist.");
            }

            Common.RegularFile.Require(path, why => Unreadable(path, why));
            stream = new SKFileStream(path);
            if (!((SKFileStream)stream).IsValid)
            {
                throw Unreadable(path, "the file cannot be opened.");
            }

            var codec = SKCodec.Create(stream, out var result);
            if (codec is null)
            {
                throw Unreadable(path, $"it is not a PNG, JPEG, BMP or WebP image that can be decoded ({result}).");
            }

            stream = null; // the codec owns it now
            return codec;
        }
        finally
        {
            stream?.Dispose();
        }
    }

    private static QuantizeException Unreadable(string path, string why) =>
        new(ErrorCodes.CalibrationFileUnreadable, path, $"Image '{path}' cannot be read: {why} Re-save it as PNG or JPEG, or remove it from the sample set.");
}
