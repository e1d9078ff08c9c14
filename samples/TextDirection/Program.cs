using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using SkiaSharp;

// Loads Models/ppocr_cls.onnx from the output folder (the model the build put there) and classifies
// each text-line image given (default: the two demo lines) as upright (0) or upside down (180).
string modelPath = Path.Combine(AppContext.BaseDirectory, "Models", "ppocr_cls.onnx");
string[] images = args.Length > 0 ? args : [Path.Combine(AppContext.BaseDirectory, "line-0.png"), Path.Combine(AppContext.BaseDirectory, "line-180.png")];
string[] classes = ["0", "180"];

using var options = new SessionOptions { IntraOpNumThreads = 1 };
using var session = new InferenceSession(modelPath, options);
Console.WriteLine($"Model: {modelPath} ({new FileInfo(modelPath).Length / 1024} KB)");
foreach (string image in images)
{
    var input = TextLine.ToTensor(image);
    using var results = session.Run([NamedOnnxValue.CreateFromTensor(session.InputMetadata.Keys.First(), input)]);
    var probabilities = results.First().AsTensor<float>();
    int best = probabilities[0, 1] > probabilities[0, 0] ? 1 : 0;
    Console.WriteLine($"{Path.GetFileName(image)}: {classes[best]} degrees (p = {probabilities[0, best]:F3})");
}

/// <summary>PaddleOCR's text-line preprocessing: BGR, height 48, width ceil(48 * w / h) capped at 192, bilinear, zero-padded right, (x/255 - 0.5) / 0.5.</summary>
internal static class TextLine
{
    public static DenseTensor<float> ToTensor(string path, int height = 48, int maxWidth = 192)
    {
        using var bitmap = SKBitmap.Decode(path) ?? throw new InvalidOperationException($"{path} is not an image.");
        int width = Math.Min((int)Math.Ceiling(height * (double)bitmap.Width / bitmap.Height), maxWidth);
        var tensor = new DenseTensor<float>([1, 3, height, maxWidth]);
        double sx = (double)bitmap.Width / width, sy = (double)bitmap.Height / height;
        for (int y = 0; y < height; y++)
        {
            double fy = Math.Clamp(((y + 0.5) * sy) - 0.5, 0, bitmap.Height - 1);
            int y0 = (int)fy, y1 = Math.Min(y0 + 1, bitmap.Height - 1);
            for (int x = 0; x < width; x++)
            {
                double fx = Math.Clamp(((x + 0.5) * sx) - 0.5, 0, bitmap.Width - 1);
                int x0 = (int)fx, x1 = Math.Min(x0 + 1, bitmap.Width - 1);
                SKColor a = bitmap.GetPixel(x0, y0), b = bitmap.GetPixel(x1, y0), c = bitmap.GetPixel(x0, y1), d = bitmap.GetPixel(x1, y1);
                double ax = fx - x0, ay = fy - y0;
                double Mix(byte pa, byte pb, byte pc, byte pd) => (((pa * (1 - ax)) + (pb * ax)) * (1 - ay)) + (((pc * (1 - ax)) + (pd * ax)) * ay);
                // Channel 0 is blue (BGR, as OpenCV reads images).
                tensor[0, 0, y, x] = Normalize(Mix(a.Blue, b.Blue, c.Blue, d.Blue));
                tensor[0, 1, y, x] = Normalize(Mix(a.Green, b.Green, c.Green, d.Green));
                tensor[0, 2, y, x] = Normalize(Mix(a.Red, b.Red, c.Red, d.Red));
            }
        }

        return tensor;
    }

    private static float Normalize(double value) => (float)(((value / 255) - 0.5) / 0.5);
}
