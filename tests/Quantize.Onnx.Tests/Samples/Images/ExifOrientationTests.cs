using Microsoft.ML.OnnxRuntime.Tensors;
using Quantize.Onnx.Samples;
using Quantize.Onnx.Samples.Images;

namespace Quantize.Onnx.Tests.Samples.Images;

/// <summary>EXIF orientation: the pixel permutation per tag, and its use when photos are decoded and become samples.</summary>
public sealed class ExifOrientationTests : IDisposable
{
    private readonly TempFolder _dir = new();

    public void Dispose() => _dir.Dispose();

    // Stored 3x2 image "a b c / d e f": each pixel's red value is its letter.
    private static readonly RgbImage Stored = TestImages.Make(3, 2, (x, y) => ((byte)('a' + x + (3 * y)), 0, 0));

    [Theory]
    [InlineData(1, 3, "abcdef")]
    [InlineData(2, 3, "cbafed")] // mirror
    [InlineData(3, 3, "fedcba")] // rotate 180
    [InlineData(4, 3, "defabc")] // flip
    [InlineData(5, 2, "adbecf")] // transpose
    [InlineData(6, 2, "daebfc")] // rotate 90 clockwise
    [InlineData(7, 2, "fcebda")] // transverse
    [InlineData(8, 2, "cfbead")] // rotate 90 counter-clockwise
    [InlineData(0, 3, "abcdef")] // not a valid tag: unchanged
    [InlineData(9, 3, "abcdef")]
    public void Each_tag_shows_the_stored_pixels_as_viewers_do(int orientation, int width, string rows)
    {
        var shown = ExifOrientation.Apply(Stored, orientation);

        Assert.Equal(width, shown.Width);
        Assert.Equal(6 / width, shown.Height);
        Assert.Equal(rows, new string([.. Enumerable.Range(0, 6).Select(i => (char)shown.Pixels[i * 3])]));
    }

    // 16x8, left half red, right half blue: 8x8 blocks survive JPEG.
    private static readonly RgbImage LeftRedRightBlue = TestImages.Make(16, 8, (x, _) => x < 8 ? ((byte)255, (byte)0, (byte)0) : ((byte)0, (byte)0, (byte)255));

    [Fact]
    public void A_photo_tagged_rotate_90_is_decoded_upright_unless_orientation_is_ignored()
    {
        var path = TestImages.WriteJpegWithOrientation(_dir.File("phone.jpg"), LeftRedRightBlue, 6);

        var upright = ImageDecoder.Decode(path);
        Assert.Equal((8, 16), (upright.Width, upright.Height));
        Assert.Equal((8, 16), ImageDecoder.ReadSize(path));
        Assert.True(Red(upright, 4, 3) > 200 && Red(upright, 4, 12) < 50, "rotated clockwise, the left (red) half is on top");

        var stored = ImageDecoder.Decode(path, ImageOrientation.Ignore);
        Assert.Equal((16, 8), (stored.Width, stored.Height));
        Assert.Equal((16, 8), ImageDecoder.ReadSize(path, ImageOrientation.Ignore));
        Assert.True(Red(stored, 3, 4) > 200 && Red(stored, 12, 4) < 50);
    }

    [Fact]
    public void A_sample_takes_the_shape_of_the_upright_photo_and_provenance_records_the_choice()
    {
        TestImages.WriteJpegWithOrientation(_dir.File("phone.jpg"), LeftRedRightBlue, 8);
        var input = new InputSpec("x", TensorElementType.Float, [1, 3, null, null]);

        var upright = SampleSet.Open(_dir.Path, [input]).ReadSample(0).Inputs[0];
        var ignore = new ImageOptions { Orientation = ImageOrientation.Ignore };
        var stored = SampleSet.Open(_dir.Path, [input], new SampleSetOptions { Images = ignore }).ReadSample(0).Inputs[0];

        Assert.Equal([1L, 3, 16, 8], upright.Shape);
        Assert.Equal([1L, 3, 8, 16], stored.Shape);
        Assert.Contains(new KeyValuePair<string, string>("image-orientation", "ignore"), ignore.ToSettings());
        Assert.Contains(new KeyValuePair<string, string>("image-orientation", "exif"), new ImageOptions().ToSettings());
    }

    private static int Red(RgbImage image, int x, int y) => image.Pixels[((y * image.Width) + x) * 3];
}
