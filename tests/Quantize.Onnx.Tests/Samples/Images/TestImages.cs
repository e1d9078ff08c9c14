using Quantize.Onnx.Samples.Images;
using SkiaSharp;

namespace Quantize.Onnx.Tests.Samples.Images;

/// <summary>Tiny generated images: in memory (<see cref="RgbImage"/>) and as files in each supported format.</summary>
internal static class TestImages
{
    /// <summary>An image whose pixel (x, y) is <paramref name="pixel"/>(x, y).</summary>
    public static RgbImage Make(int width, int height, Func<int, int, (byte R, byte G, byte B)> pixel)
    {
        var bytes = new byte[width * height * 3];
        for (int y = 0; y < height; y++)
        {
            for (int x = 0; x < width; x++)
            {
                var (r, g, b) = pixel(x, y);
                int at = ((y * width) + x) * 3;
                (bytes[at], bytes[at + 1], bytes[at + 2]) = (r, g, b);
            }
        }

        return new RgbImage(width, height, bytes);
    }

    /// <summary>A gray ramp: R = G = B = <paramref name="values"/>[x], one row.</summary>
    public static RgbImage Row(params byte[] values) => Make(values.Length, 1, (x, _) => (values[x], values[x], values[x]));

    /// <summary>Writes <paramref name="image"/> as PNG, JPEG (quality 100) or WebP (lossless) by the extension, or BMP (24-bit, by hand: Skia does not encode BMP).</summary>
    public static string Write(string path, RgbImage image)
    {
        if (path.EndsWith(".bmp", StringComparison.OrdinalIgnoreCase))
        {
            File.WriteAllBytes(path, Bmp(image));
            return path;
        }

        using var bitmap = new SKBitmap(new SKImageInfo(image.Width, image.Height, SKColorType.Rgba8888, SKAlphaType.Opaque));
        for (int y = 0; y < image.Height; y++)
        {
            for (int x = 0; x < image.Width; x++)
            {
                int at = ((y * image.Width) + x) * 3;
                bitmap.SetPixel(x, y, new SKColor(image.Pixels[at], image.Pixels[at + 1], image.Pixels[at + 2]));
            }
        }

        var format = Path.GetExtension(path).ToLowerInvariant() switch
        {
            ".png" => SKEncodedImageFormat.Png,
            ".jpg" or ".jpeg" => SKEncodedImageFormat.Jpeg,
            ".webp" => SKEncodedImageFormat.Webp,
            var other => throw new ArgumentException($"No encoder for {other}."),
        };
        using var data = bitmap.Encode(format, 100);
        File.WriteAllBytes(path, data.ToArray());
        return path;
    }

    /// <summary>
    /// Writes <paramref name="image"/> as a JPEG whose EXIF orientation tag (0x0112) is <paramref name="orientation"/>:
    /// an APP1 segment with a big-endian TIFF header and one IFD entry, right after SOI (Skia writes no EXIF).
    /// </summary>
    public static string WriteJpegWithOrientation(string path, RgbImage image, int orientation)
    {
        Write(path, image);
        var jpeg = File.ReadAllBytes(path);
        byte[] tiff =
        [
            (byte)'M', (byte)'M', 0, 42, 0, 0, 0, 8, // big-endian header, IFD at offset 8
            0, 1,                                    // one entry
            0x01, 0x12, 0, 3, 0, 0, 0, 1,            // Orientation, SHORT, count 1
            0, (byte)orientation, 0, 0,              // value, padded to 4 bytes
            0, 0, 0, 0,                              // no next IFD
        ];
        byte[] exif = [.. "Exif\0\0"u8, .. tiff];
        int length = exif.Length + 2;
        byte[] app1 = [0xFF, 0xE1, (byte)(length >> 8), (byte)length, .. exif];
        File.WriteAllBytes(path, [.. jpeg[..2], .. app1, .. jpeg[2..]]);
        return path;
    }

    /// <summary>A bottom-up 24-bit BMP (BGR rows padded to 4 bytes).</summary>
    private static byte[] Bmp(RgbImage image)
    {
        int stride = ((image.Width * 3) + 3) & ~3;
        int size = 54 + (stride * image.Height);
        var b = new byte[size];
        b[0] = (byte)'B';
        b[1] = (byte)'M';
        BitConverter.TryWriteBytes(b.AsSpan(2), size);
        BitConverter.TryWriteBytes(b.AsSpan(10), 54);
        BitConverter.TryWriteBytes(b.AsSpan(14), 40);
        BitConverter.TryWriteBytes(b.AsSpan(18), image.Width);
        BitConverter.TryWriteBytes(b.AsSpan(22), image.Height);
        BitConverter.TryWriteBytes(b.AsSpan(26), (short)1);
        BitConverter.TryWriteBytes(b.AsSpan(28), (short)24);
        for (int y = 0; y < image.Height; y++)
        {
            int row = 54 + ((image.Height - 1 - y) * stride);
            for (int x = 0; x < image.Width; x++)
            {
                int at = ((y * image.Width) + x) * 3;
                b[row + (x * 3)] = image.Pixels[at + 2];
                b[row + (x * 3) + 1] = image.Pixels[at + 1];
                b[row + (x * 3) + 2] = image.Pixels[at];
            }
        }

        return b;
    }
}
