namespace Quantize.Onnx.Samples.Images;

/// <summary>
/// Where a resized image lands in the target: the source is scaled to <see cref="ScaledWidth"/> x
/// <see cref="ScaledHeight"/>; the target pixel (x, y) inside the content rectangle
/// (<see cref="X"/>, <see cref="Y"/>, <see cref="Width"/>, <see cref="Height"/>) shows scaled pixel
/// (x − X + <see cref="CropX"/>, y − Y + <see cref="CropY"/>); the rest of the target is padding.
/// </summary>
public readonly record struct ImagePlacement(
    int TargetWidth, int TargetHeight, int ScaledWidth, int ScaledHeight, int X, int Y, int Width, int Height, int CropX, int CropY)
{
    /// <summary>The placement of a <paramref name="sourceWidth"/> x <paramref name="sourceHeight"/> image; no target: the image's own size.</summary>
    public static ImagePlacement Of(int sourceWidth, int sourceHeight, (int Width, int Height)? target, ImageResize mode)
    {
        if (target is not { } t)
        {
            return new(sourceWidth, sourceHeight, sourceWidth, sourceHeight, 0, 0, sourceWidth, sourceHeight, 0, 0);
        }

        double fit = Math.Min((double)t.Width / sourceWidth, (double)t.Height / sourceHeight);
        switch (mode)
        {
            case ImageResize.Stretch:
                return new(t.Width, t.Height, t.Width, t.Height, 0, 0, t.Width, t.Height, 0, 0);
            case ImageResize.Letterbox:
            case ImageResize.Fit:
                {
                    int w = Math.Clamp((int)Math.Round(sourceWidth * fit), 1, t.Width);
                    int h = Math.Clamp((int)Math.Round(sourceHeight * fit), 1, t.Height);
                    var (x, y) = mode == ImageResize.Letterbox ? ((t.Width - w) / 2, (t.Height - h) / 2) : (0, 0);
                    return new(t.Width, t.Height, w, h, x, y, w, h, 0, 0);
                }

            case ImageResize.Crop:
                {
                    double cover = Math.Max((double)t.Width / sourceWidth, (double)t.Height / sourceHeight);
                    int w = Math.Max(t.Width, (int)Math.Round(sourceWidth * cover));
                    int h = Math.Max(t.Height, (int)Math.Round(sourceHeight * cover));
                    return new(t.Width, t.Height, w, h, 0, 0, t.Width, t.Height, (w - t.Width) / 2, (h - t.Height) / 2);
                }

            case ImageResize.FitHeight:
                {
                    // PaddleOCR: resized_w = min(ceil(H * w / h), W); the height is always H.
                    int w = Math.Clamp((int)Math.Ceiling(t.Height * (double)sourceWidth / sourceHeight), 1, t.Width);
                    return new(t.Width, t.Height, w, t.Height, 0, 0, w, t.Height, 0, 0);
                }

            default:
                throw new ArgumentOutOfRangeException(nameof(mode), mode, null);
        }
    }
}
