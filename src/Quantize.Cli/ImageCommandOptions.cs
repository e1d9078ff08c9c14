using System.CommandLine;
using Quantize.Common;
using Quantize.Onnx;
using Quantize.Onnx.Samples.Images;

namespace Quantize.Cli;

/// <summary>
/// The options that turn image samples into tensors (<see cref="ImageOptions"/>), declared and read together, and
/// --uint8-inputs, which builds that preprocessing into the model, and its counterpart --uint8-outputs.
/// </summary>
internal sealed class ImageCommandOptions
{
    private readonly Option<string?> _imageSize = new(WorkerSwitches.ImageSize) { Description = "Image target size <width>x<height>, e.g. 192x48. Default: the model input's fixed height and width, else each image's own size." };
    private readonly Option<string> _imageResize = new(WorkerSwitches.ImageResize)
    {
        Description = "How images are fitted to the target size: stretch (default), letterbox (aspect kept, centred, padded), fit (aspect kept, padded right/bottom), " +
            "crop (aspect kept, centre crop), fit-height (text lines: target height, width capped at the target width, padded right).",
        DefaultValueFactory = _ => "stretch",
    };
    private readonly Option<string> _imageInterpolation = new(WorkerSwitches.ImageInterpolation) { Description = "bilinear (default, OpenCV INTER_LINEAR) or nearest.", DefaultValueFactory = _ => "bilinear" };
    private readonly Option<string?> _imageLayout = new(WorkerSwitches.ImageLayout) { Description = "nchw or nhwc. Default: from the model input's shape (where its 1 or 3 channels are), else nchw." };
    private readonly Option<string?> _imageChannels = new(WorkerSwitches.ImageChannels) { Description = "rgb, bgr or gray. Default: gray for a 1-channel input, else rgb." };
    private readonly Option<double?> _imageScale = new(WorkerSwitches.ImageScale) { Description = "Multiplies 0..255 pixel values before mean/std. Default 1/255 (float inputs; values in [0,1]), 1 for uint8/int8 inputs." };
    private readonly Option<string?> _imageMean = new(WorkerSwitches.ImageMean) { Description = "Subtracted after scaling: one value, or one per channel in the model's channel order, ';'-separated (e.g. 0.485;0.456;0.406). Default 0." };
    private readonly Option<string?> _imageStd = new(WorkerSwitches.ImageStd) { Description = "Divides after the mean: one value or one per channel, ';'-separated (e.g. 0.229;0.224;0.225). Default 1." };
    private readonly Option<double> _imagePadValue = new(WorkerSwitches.ImagePadValue) { Description = "Tensor value of padding (letterbox, fit, fit-height), after normalisation. Default 0." };
    private readonly Option<string> _imageOrientation = new(WorkerSwitches.ImageOrientation)
    {
        Description = "exif (default: photos are turned by their EXIF orientation tag, as viewers and OpenCV show them) or ignore (the stored pixels, as PIL's Image.open reads them).",
        DefaultValueFactory = _ => "exif",
    };

    private readonly Option<bool> _uint8Inputs = new(WorkerSwitches.UInt8Inputs)
    {
        Description = "Static mode: the model takes uint8 image bytes [0,255] (as the app holds them) instead of float; the image scale/mean/std is built into the graph " +
            "(exact with one mean and std whose mean/scale is an integer, e.g. the defaults; else in float). Inputs must be float images. Default false.",
    };

    private readonly Option<bool> _uint8Outputs = new(WorkerSwitches.UInt8Outputs)
    {
        Description = "Static mode: each model output ships as uint8, its final QuantizeLinear's output (the DequantizeLinear dropped); scale and zero point are in the model's " +
            "metadata (quantize.output.<name>.scale / .zero_point) for the app to dequantize. An output no QuantizeLinear produces is QNT1532. Default false.",
    };

    public IEnumerable<Option> All => [_uint8Inputs, _uint8Outputs, _imageSize, _imageResize, _imageInterpolation, _imageLayout, _imageChannels, _imageScale, _imageMean, _imageStd, _imagePadValue, _imageOrientation];

    /// <summary>Whether the model's inputs ship as uint8 image bytes (<see cref="QuantizationOptions.UInt8Inputs"/>).</summary>
    public bool UInt8Inputs(ParseResult parse) => parse.GetValue(_uint8Inputs);

    /// <summary>Whether the model's outputs ship as uint8 (<see cref="QuantizationOptions.UInt8Outputs"/>).</summary>
    public bool UInt8Outputs(ParseResult parse) => parse.GetValue(_uint8Outputs);

    /// <summary>The image preprocessing the command line asks for; a value out of range is QNT1201.</summary>
    public ImageOptions Read(ParseResult parse) =>
        new()
        {
            Size = parse.GetValue(_imageSize) is { Length: > 0 } size ? ImageOptions.ParseSize(size) : null,
            Resize = ImageOptions.Names.Parse<ImageResize>("image resize", parse.GetValue(_imageResize)!),
            Interpolation = ImageOptions.Names.Parse<ImageInterpolation>("image interpolation", parse.GetValue(_imageInterpolation)!),
            Layout = parse.GetValue(_imageLayout) is { Length: > 0 } layout ? ImageOptions.Names.Parse<ImageLayout>("image layout", layout) : null,
            Channels = parse.GetValue(_imageChannels) is { Length: > 0 } channels ? ImageOptions.Names.Parse<ImageChannels>("image channels", channels) : null,
            Scale = parse.GetValue(_imageScale) is double scale && (!double.IsFinite(scale) || scale == 0)
                ? throw new QuantizeException(ErrorCodes.InvalidOption, null, $"--image-scale must be a finite number other than 0, got {scale}.")
                : parse.GetValue(_imageScale),
            Mean = parse.GetValue(_imageMean) is { Length: > 0 } mean ? ImageOptions.ParseValues("image mean", mean, positive: false) : [0.0],
            Std = parse.GetValue(_imageStd) is { Length: > 0 } std ? ImageOptions.ParseValues("image std", std, positive: true) : [1.0],
            PadValue = parse.GetValue(_imagePadValue),
            Orientation = ImageOptions.Names.Parse<ImageOrientation>("image orientation", parse.GetValue(_imageOrientation)!),
        };
}
