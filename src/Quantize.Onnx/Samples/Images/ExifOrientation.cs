namespace Quantize.Onnx.Samples.Images;

/// <summary>
/// Turns decoded pixels the way the file's EXIF orientation tag (values 1–8, TIFF/EXIF 2.3) asks viewers to
/// show them: phone cameras store the sensor's rows and record the rotation in the tag instead of
/// rotating the pixels.
/// </summary>
public static class ExifOrientation
{
    /// <summary>True when the tag (5–8) swaps width and height.</summary>
    public static bool SwapsAxes(int orientation) => orientation is >= 5 and <= 8;

    /// <summary>
    /// The image as displayed. 1 (or an unknown value) is returned unchanged; 2 mirror, 3 rotate 180°,
    /// 4 flip, 5 transpose, 6 rotate 90° clockwise, 7 transverse, 8 rotate 90° counter-clockwise.
    /// </summary>
    public static RgbImage Apply(RgbImage image, int orientation)
    {
        ArgumentNullException.ThrowIfNull(image);
        if (orientation is < 2 or > 8)
        {
            return image;
        }

        int w = image.Width, h = image.Height;
        bool swap = SwapsAxes(orientation);
        int outW = swap ? h : w, outH = swap ? w : h;
        var source = image.Pixels;
        var pixels = new byte[source.Length];
        for (int y = 0; y < outH; y++)
        {
            for (int x = 0; x < outW; x++)
            {
                // (sx, sy): the stored pixel shown at display position (x, y).
                var (sx, sy) = orientation switch
                {
                    2 => (w - 1 - x, y),
                    3 => (w - 1 - x, h - 1 - y),
                    4 => (x, h - 1 - y),
                    5 => (y, x),
                    6 => (y, h - 1 - x),
                    7 => (w - 1 - y, h - 1 - x),
                    _ => (w - 1 - y, x), // 8
                };
                int from = ((sy * w) + sx) * 3, to = ((y * outW) + x) * 3;
                pixels[to] = source[from];
                pixels[to + 1] = source[from + 1];
                pixels[to + 2] = source[from + 2];
            }
        }

        return new RgbImage(outW, outH, pixels);
    }
}
