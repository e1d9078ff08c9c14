using Quantize.Onnx.Samples.Images;

namespace Quantize.Onnx.Tests.Samples.Images;

/// <summary>SkiaSharp decoding of every supported format (its native library loads on this machine).</summary>
public sealed class ImageDecoderTests : IDisposable
{
    private readonly TempFolder _dir = new();

    public void Dispose() => _dir.Dispose();

    // Smooth, so JPEG (lossy) stays close; odd sizes catch row-stride mistakes.
    private static readonly RgbImage Pattern = TestImages.Make(17, 9, (x, y) => ((byte)(x * 8), (byte)(y * 16), (byte)(200 - (x * 4))));

    [Theory]
    [InlineData("png", 0)]
    [InlineData("bmp", 0)]
    [InlineData("webp", 0)]
    [InlineData("jpg", 12)] // lossy
    public void Decodes_each_format_to_rgb(string extension, int tolerance)
    {
        var path = TestImages.Write(_dir.File("image." + extension), Pattern);

        var image = ImageDecoder.Decode(path);

        Assert.Equal((17, 9), (image.Width, image.Height));
        Assert.Equal((17, 9), ImageDecoder.ReadSize(path));
        for (int i = 0; i < Pattern.Pixels.Length; i++)
        {
            Assert.InRange(image.Pixels[i], Pattern.Pixels[i] - tolerance, Pattern.Pixels[i] + tolerance);
        }
    }

    [Fact]
    public void A_file_that_is_not_an_image_is_QNT1106_naming_it()
    {
        var path = _dir.File("broken.png");
        File.WriteAllBytes(path, [0x89, (byte)'P', (byte)'N', (byte)'G', 1, 2, 3]);

        var e = Assert.Throws<QuantizeException>(() => ImageDecoder.Decode(path));

        Assert.Equal(ErrorCodes.CalibrationFileUnreadable, e.Code);
        Assert.Equal(path, e.File);
        Assert.Contains("broken.png", e.Message);
    }

    [Fact]
    public void A_truncated_image_is_QNT1106()
    {
        var path = TestImages.Write(_dir.File("cut.png"), TestImages.Make(64, 64, (x, y) => ((byte)(x * 3), (byte)(y * 3), (byte)((x * y) % 255))));
        var bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..(bytes.Length / 2)]);

        Assert.Equal(ErrorCodes.CalibrationFileUnreadable, Assert.Throws<QuantizeException>(() => ImageDecoder.Decode(path)).Code);
    }
}
