using System.Runtime.InteropServices;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace Quantize.Onnx.Samples.Images;

/// <summary>
/// Turns a decoded image into the tensor of one model input: resize (<see cref="ImagePlacement"/>,
/// bilinear or nearest, on 0..255 floats without rounding), channel order, <c>(v · scale − mean) / std</c>,
/// padding, layout and element type.
/// </summary>
public static class ImageTensorizer
{
    /// <summary>The tensor for <paramref name="image"/>; <paramref name="file"/> names it in errors.</summary>
    public static TensorData ToTensor(RgbImage image, ImageInputShape shape, string file)
    {
        ArgumentNullException.ThrowIfNull(image);
        ArgumentNullException.ThrowIfNull(shape);
        var options = shape.Options;
        var placement = ImagePlacement.Of(image.Width, image.Height, shape.Size, options.Resize);
        int width = placement.TargetWidth, height = placement.TargetHeight, channels = shape.ChannelCount;
        var values = new float[width * height * channels];
        var pixel = new float[3];
        double scale = options.Scale ?? (shape.Input.ElementType is TensorElementType.UInt8 or TensorElementType.Int8 ? 1.0 : 1.0 / 255);
        for (int y = 0; y < height; y++)
        {
            for (int x = 0; x < width; x++)
            {
                bool inside = x >= placement.X && x < placement.X + placement.Width && y >= placement.Y && y < placement.Y + placement.Height;
                if (inside)
                {
                    Sample(image, placement, x - placement.X + placement.CropX, y - placement.Y + placement.CropY, options.Interpolation, pixel);
                }

                for (int c = 0; c < channels; c++)
                {
                    double v = options.PadValue;
                    if (inside)
                    {
                        float raw = shape.Channels switch
                        {
                            ImageChannels.Gray => (0.299f * pixel[0]) + (0.587f * pixel[1]) + (0.114f * pixel[2]),
                            ImageChannels.Bgr => pixel[2 - c],
                            _ => pixel[c],
                        };
                        v = ((raw * scale) - PerChannel(options.Mean, c)) / PerChannel(options.Std, c);
                    }

                    int index = shape.Layout == ImageLayout.Nchw ? (((c * height) + y) * width) + x : (((y * width) + x) * channels) + c;
                    values[index] = (float)v;
                }
            }
        }

        return new TensorData(shape.Input.Name, shape.Input.ElementType, shape.TensorShape(width, height), ToBytes(values, shape.Input.ElementType));
    }

    /// <summary>Pixel (x, y) of the image scaled to the placement's scaled size, as R, G, B floats.</summary>
    internal static void Sample(RgbImage image, ImagePlacement placement, int x, int y, ImageInterpolation interpolation, float[] rgb)
    {
        double sx = (double)image.Width / placement.ScaledWidth, sy = (double)image.Height / placement.ScaledHeight;
        var p = image.Pixels;
        if (interpolation == ImageInterpolation.Nearest)
        {
            int nx = Math.Min((int)Math.Floor(x * sx), image.Width - 1), ny = Math.Min((int)Math.Floor(y * sy), image.Height - 1);
            int at = ((ny * image.Width) + nx) * 3;
            rgb[0] = p[at];
            rgb[1] = p[at + 1];
            rgb[2] = p[at + 2];
            return;
        }

        // Pixel centres at +0.5; outside the outer centres the edge pixel repeats (OpenCV's INTER_LINEAR).
        double fx = Math.Clamp(((x + 0.5) * sx) - 0.5, 0, image.Width - 1), fy = Math.Clamp(((y + 0.5) * sy) - 0.5, 0, image.Height - 1);
        int x0 = (int)fx, y0 = (int)fy, x1 = Math.Min(x0 + 1, image.Width - 1), y1 = Math.Min(y0 + 1, image.Height - 1);
        double ax = fx - x0, ay = fy - y0;
        for (int c = 0; c < 3; c++)
        {
            double top = (p[(((y0 * image.Width) + x0) * 3) + c] * (1 - ax)) + (p[(((y0 * image.Width) + x1) * 3) + c] * ax);
            double bottom = (p[(((y1 * image.Width) + x0) * 3) + c] * (1 - ax)) + (p[(((y1 * image.Width) + x1) * 3) + c] * ax);
            rgb[c] = (float)((top * (1 - ay)) + (bottom * ay));
        }
    }

    private static double PerChannel(IReadOnlyList<double> values, int channel) => values.Count == 1 ? values[0] : values[channel];

    private static byte[] ToBytes(float[] values, TensorElementType type)
    {
        switch (type)
        {
            case TensorElementType.Float:
                return MemoryMarshal.AsBytes(values.AsSpan()).ToArray();
            case TensorElementType.Double:
                return MemoryMarshal.AsBytes(Array.ConvertAll(values, v => (double)v).AsSpan()).ToArray();
            case TensorElementType.Float16:
                return MemoryMarshal.AsBytes(Array.ConvertAll(values, v => (Half)v).AsSpan()).ToArray();
            case TensorElementType.UInt8:
                return Array.ConvertAll(values, v => (byte)Math.Clamp(Math.Round(v), 0, 255));
            case TensorElementType.Int8:
                return Array.ConvertAll(values, v => unchecked((byte)(sbyte)Math.Clamp(Math.Round(v), -128, 127)));
            default:
                throw new ArgumentOutOfRangeException(nameof(type), type, "Images become float32, float64, float16, uint8 or int8 tensors.");
        }
    }
}
