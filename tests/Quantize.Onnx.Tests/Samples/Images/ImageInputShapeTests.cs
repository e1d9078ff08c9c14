using Microsoft.ML.OnnxRuntime.Tensors;
using Quantize.Onnx.Samples;
using Quantize.Onnx.Samples.Images;

namespace Quantize.Onnx.Tests.Samples.Images;

/// <summary>What is taken from the model input's shape, and QNT1110 when the options contradict it.</summary>
public sealed class ImageInputShapeTests
{
    private static ImageInputShape Resolve(long?[] dims, ImageOptions? options = null, TensorElementType type = TensorElementType.Float) =>
        ImageInputShape.Resolve(new InputSpec("x", type, dims), options ?? new ImageOptions(), "img.png");

    private static QuantizeException Fails(long?[] dims, ImageOptions? options = null, TensorElementType type = TensorElementType.Float)
    {
        var e = Assert.Throws<QuantizeException>(() => Resolve(dims, options, type));
        Assert.Equal(ErrorCodes.ImagePreprocessingMismatch, e.Code);
        Assert.Equal("img.png", e.File);
        return e;
    }

    [Fact]
    public void Layout_channels_and_size_come_from_the_model_shape()
    {
        var nchw = Resolve([1, 3, 48, 192]);
        Assert.Equal((ImageLayout.Nchw, ImageChannels.Rgb, (192, 48)), (nchw.Layout, nchw.Channels, nchw.Size!.Value));

        var nhwc = Resolve([null, 224, 224, 1]);
        Assert.Equal((ImageLayout.Nhwc, ImageChannels.Gray), (nhwc.Layout, nhwc.Channels));

        Assert.Null(Resolve([1, 3, null, null]).Size);
    }

    [Fact]
    public void A_size_that_disagrees_with_the_model_names_both()
    {
        var e = Fails([1, 3, 48, 192], new ImageOptions { Size = (224, 224) });

        Assert.Contains("224x224", e.Message);
        Assert.Contains("192x48", e.Message);
        Assert.Contains("'x' [1,3,48,192]", e.Message);
    }

    [Fact]
    public void Channels_or_layout_that_disagree_with_the_model_are_QNT1110()
    {
        Assert.Contains("Set the image channels to rgb or bgr", Fails([1, 3, 8, 8], new ImageOptions { Channels = ImageChannels.Gray }).Message);
        Assert.Contains("Set the image channels to gray", Fails([1, 1, 8, 8], new ImageOptions { Channels = ImageChannels.Rgb }).Message);
        Assert.Contains("axis of size 8", Fails([1, 3, 8, 8], new ImageOptions { Layout = ImageLayout.Nhwc }).Message);
        Assert.Contains("2 values", Fails([1, 3, 8, 8], new ImageOptions { Mean = [0.5, 0.5] }).Message);
    }

    [Fact]
    public void Inputs_that_are_not_images_are_QNT1110()
    {
        Assert.Contains("rank 4", Fails([1, 80]).Message);
        Assert.Contains("int64", Fails([1, 3, 8, 8], type: TensorElementType.Int64).Message);
        Assert.Contains("batch of 4", Fails([4, 3, 8, 8]).Message);
        Assert.Contains("needs a target size", Fails([1, 3, null, null], new ImageOptions { Resize = ImageResize.Letterbox }).Message);
    }

    [Fact]
    public void Options_parse_the_command_line_vocabulary()
    {
        Assert.Equal((192, 48), ImageOptions.ParseSize("192x48"));
        Assert.Equal((224, 224), ImageOptions.ParseSize("224"));
        Assert.Equal(ImageResize.FitHeight, ImageOptions.Names.Parse<ImageResize>("resize", "fit-height"));
        Assert.Equal("fit-height", ImageOptions.Names.Of(ImageResize.FitHeight));
        Assert.Equal([0.485, 0.456, 0.406], ImageOptions.ParseValues("mean", "0.485;0.456;0.406", positive: false));
        Assert.Equal(ErrorCodes.InvalidOption, Assert.Throws<QuantizeException>(() => ImageOptions.ParseSize("192x")).Code);
        Assert.Equal(ErrorCodes.InvalidOption, Assert.Throws<QuantizeException>(() => ImageOptions.ParseValues("std", "0", positive: true)).Code);
        Assert.Equal(ErrorCodes.InvalidOption, Assert.Throws<QuantizeException>(() => ImageOptions.Names.Parse<ImageChannels>("channels", "rgba")).Code);
    }
}
