using Microsoft.ML.OnnxRuntime.Tensors;
using Quantize.Onnx.Samples;
using Quantize.Onnx.Samples.Images;

namespace Quantize.Onnx.Tests.Samples.Images;

/// <summary>Resize, layout, channel order and normalisation, each against pixels computed by hand.</summary>
public sealed class ImageTensorizerTests
{
    private static float[] Tensor(RgbImage image, long?[] dims, ImageOptions options, TensorElementType type = TensorElementType.Float)
    {
        var shape = ImageInputShape.Resolve(new InputSpec("x", type, dims), options, "test.png");
        var tensor = ImageTensorizer.ToTensor(image, shape, "test.png");
        return type switch
        {
            TensorElementType.Float => tensor.AsFloats().ToArray(),
            TensorElementType.UInt8 => Array.ConvertAll(tensor.Data, b => (float)b),
            TensorElementType.Int8 => Array.ConvertAll(tensor.Data, b => (float)(sbyte)b),
            TensorElementType.Float16 => System.Runtime.InteropServices.MemoryMarshal.Cast<byte, Half>(tensor.Data).ToArray().Select(h => (float)h).ToArray(),
            _ => throw new ArgumentOutOfRangeException(nameof(type)),
        };
    }

    /// <summary>Raw 0..255 values (scale 1) of a gray model input.</summary>
    private static readonly ImageOptions Raw = new() { Scale = 1 };

    [Fact]
    public void Bilinear_upscale_uses_pixel_centres_and_repeats_the_edges()
    {
        // 2 -> 4: source x = (x + 0.5) / 2 - 0.5 = -0.25 (edge), 0.25, 0.75, 1.25 (edge).
        var values = Tensor(TestImages.Row(0, 100), [1, 1, 1, 4], Raw);

        Assert.Equal([0f, 25f, 75f, 100f], values);
    }

    [Fact]
    public void Bilinear_downscale_averages_the_two_nearest_centres()
    {
        // 4 -> 2: source x = (x + 0.5) * 2 - 0.5 = 0.5, 2.5.
        var values = Tensor(TestImages.Row(0, 40, 80, 120), [1, 1, 1, 2], Raw);

        Assert.Equal([20f, 100f], values);
    }

    [Fact]
    public void Nearest_upscale_repeats_each_pixel()
    {
        var values = Tensor(TestImages.Row(0, 100), [1, 1, 1, 4], Raw with { Interpolation = ImageInterpolation.Nearest });

        Assert.Equal([0f, 0f, 100f, 100f], values);
    }

    [Fact]
    public void Nchw_and_nhwc_order_channels_and_pixels()
    {
        // 2x1 image: pixel 0 = (1, 2, 3), pixel 1 = (4, 5, 6).
        var image = TestImages.Make(2, 1, (x, _) => x == 0 ? ((byte)1, (byte)2, (byte)3) : ((byte)4, (byte)5, (byte)6));

        Assert.Equal([1f, 4f, 2f, 5f, 3f, 6f], Tensor(image, [1, 3, 1, 2], Raw));
        Assert.Equal([1f, 2f, 3f, 4f, 5f, 6f], Tensor(image, [1, 1, 2, 3], Raw with { Layout = ImageLayout.Nhwc }));
        // Rank 3 (no batch axis) and an explicit layout on a dynamic shape.
        Assert.Equal([1f, 2f, 3f, 4f, 5f, 6f], Tensor(image, [null, null, null], Raw with { Layout = ImageLayout.Nhwc }));
    }

    [Fact]
    public void Bgr_swaps_red_and_blue_and_gray_weighs_them_601()
    {
        var image = TestImages.Make(1, 1, (_, _) => (100, 50, 10));

        Assert.Equal([10f, 50f, 100f], Tensor(image, [1, 3, 1, 1], Raw with { Channels = ImageChannels.Bgr }));
        Assert.Equal((0.299f * 100) + (0.587f * 50) + (0.114f * 10), Tensor(image, [1, 1, 1, 1], Raw).Single(), 4);
    }

    [Fact]
    public void Scale_mean_and_std_apply_per_channel_in_the_models_channel_order()
    {
        var image = TestImages.Make(1, 1, (_, _) => (255, 0, 51));

        // Default scale 1/255, then (v - mean) / std per channel: (1 - 0.5) / 0.5, (0 - 0.25) / 0.25, (0.2 - 0) / 0.1.
        var values = Tensor(image, [1, 3, 1, 1], new ImageOptions { Mean = [0.5, 0.25, 0], Std = [0.5, 0.25, 0.1] });
        Assert.Equal(1f, values[0], 5);
        Assert.Equal(-1f, values[1], 5);
        Assert.Equal(2f, values[2], 5);

        // PaddleOCR: BGR, (x / 255 - 0.5) / 0.5 with one value for all channels.
        var bgr = Tensor(image, [1, 3, 1, 1], new ImageOptions { Channels = ImageChannels.Bgr, Mean = [0.5], Std = [0.5] });
        Assert.Equal([-0.6f, -1f, 1f], bgr.Select(v => MathF.Round(v, 5)));
    }

    [Fact]
    public void Integer_inputs_get_raw_pixels_rounded_and_saturated()
    {
        var image = TestImages.Row(0, 100, 255);

        Assert.Equal([0f, 100f, 255f], Tensor(image, [1, 1, 1, 3], new ImageOptions(), TensorElementType.UInt8));
        // int8 with mean 128: 0 - 128 = -128, 100 - 128 = -28, 255 - 128 = 127.
        Assert.Equal([-128f, -28f, 127f], Tensor(image, [1, 1, 1, 3], new ImageOptions { Mean = [128] }, TensorElementType.Int8));
        Assert.Equal([0f, 100f / 255, 1f], Tensor(image, [1, 1, 1, 3], new ImageOptions(), TensorElementType.Float16), new ToleranceComparer(1e-3f));
    }

    [Fact]
    public void Letterbox_centres_and_fit_pads_right_and_bottom()
    {
        // 2x1 image (10, 20) into 2x2: fitted at its own size; letterbox rounds the 1-row offset down to 0, so use 2x4.
        var image = TestImages.Row(10, 20);
        var options = Raw with { Size = (2, 4), Resize = ImageResize.Letterbox, PadValue = -1 };

        // 2x1 into 2x4: scale min(1, 4) = 1 -> 2x1 at y = (4 - 1) / 2 = 1.
        Assert.Equal([-1f, -1f, 10f, 20f, -1f, -1f, -1f, -1f], Tensor(image, [1, 1, null, null], options));
        Assert.Equal([10f, 20f, -1f, -1f, -1f, -1f, -1f, -1f], Tensor(image, [1, 1, null, null], options with { Resize = ImageResize.Fit }));
    }

    [Fact]
    public void Crop_scales_to_cover_and_keeps_the_centre()
    {
        // 4x2 into 2x2: cover scale max(0.5, 1) = 1, crop x from (4 - 2) / 2 = 1: columns 1 and 2.
        var image = TestImages.Make(4, 2, (x, y) => ((byte)((10 * x) + y), 0, 0));

        var values = Tensor(image, [1, 1, 2, 2], Raw with { Resize = ImageResize.Crop, Channels = ImageChannels.Gray });

        var expected = new[] { 10, 20, 11, 21 }.Select(v => 0.299f * v).ToArray();
        Assert.Equal(expected, values, new ToleranceComparer(1e-4f));
    }

    [Fact]
    public void Fit_height_scales_to_the_height_caps_the_width_and_pads_right()
    {
        // 2x2 into 8x4 (width x height): width ceil(4 * 2 / 2) = 4, padded to 8.
        var image = TestImages.Make(2, 2, (x, _) => x == 0 ? ((byte)0, (byte)0, (byte)0) : ((byte)200, (byte)200, (byte)200));
        var row = Tensor(image, [1, 1, 4, 8], Raw with { Resize = ImageResize.FitHeight })[..8];
        Assert.Equal([0f, 50f, 150f, 200f, 0f, 0f, 0f, 0f], row);

        // 16x2 into 8x4: ceil(4 * 16 / 2) = 32 > 8, so the line is squeezed to the full 8 columns (PaddleOCR).
        var wide = TestImages.Make(16, 2, (x, _) => ((byte)(x * 10), (byte)(x * 10), (byte)(x * 10)));
        Assert.Equal(ImagePlacement.Of(16, 2, (8, 4), ImageResize.FitHeight), new ImagePlacement(8, 4, 8, 4, 0, 0, 8, 4, 0, 0));
        Assert.DoesNotContain(0f, Tensor(wide, [1, 1, 4, 8], Raw with { Resize = ImageResize.FitHeight })[1..8]);
    }

    [Fact]
    public void Without_a_fixed_or_given_size_the_image_keeps_its_own()
    {
        var shape = ImageInputShape.Resolve(new InputSpec("x", TensorElementType.Float, [1, 3, null, null]), new ImageOptions(), "a.png");
        var tensor = ImageTensorizer.ToTensor(TestImages.Row(1, 2, 3), shape, "a.png");

        Assert.Equal([1L, 3, 1, 3], tensor.Shape);
    }

    private sealed class ToleranceComparer(float tolerance) : IEqualityComparer<float>
    {
        public bool Equals(float a, float b) => Math.Abs(a - b) <= tolerance;

        public int GetHashCode(float value) => 0;
    }
}
