namespace Quantize.Onnx.Reporting;

/// <summary>FP32 and INT8 values of one image-like output on one validation sample, kept for the HTML report.</summary>
public sealed record OutputSample(string Sample, string Output, long[] Shape, float[] Fp32, float[] Int8)
{
    /// <summary>Image-like: <c>[1, C, H, W]</c> with C 1 (grey) or 3 (RGB).</summary>
    public static bool IsImage(long[] shape) => shape.Length == 4 && shape[0] == 1 && shape[1] is 1 or 3 && shape[2] > 0 && shape[3] > 0;
}

/// <summary>
/// Keeps the outputs of the first few validation samples for the report's side-by-side images, while the
/// gate (or the calibration-sample fidelity) runs both models anyway: at most <see cref="MaxSamples"/> samples, <see cref="MaxOutputs"/> image
/// outputs each, and no image larger than <see cref="MaxPixels"/>, so memory stays bounded.
/// </summary>
internal sealed class HtmlReportSamples
{
    public const int MaxSamples = 3;
    public const int MaxOutputs = 2;
    public const long MaxPixels = 4096L * 4096;

    private readonly List<OutputSample> _samples = [];
    private readonly HashSet<string> _sampleNames = new(StringComparer.Ordinal);
    private readonly HashSet<string> _outputs = new(StringComparer.Ordinal);

    public IReadOnlyList<OutputSample> Samples => _samples;

    /// <summary>A sample's name: its sub-folder (or file) name.</summary>
    public static string SampleName(string source) => Path.GetFileName(Path.TrimEndingDirectorySeparator(source));

    /// <summary>Offers one output of one sample; kept (copied) while fewer than the limits are held.</summary>
    public void Offer(string sample, string output, long[] shape, float[] fp32, float[] int8)
    {
        if (!OutputSample.IsImage(shape) || shape[2] * shape[3] > MaxPixels || fp32.Length != int8.Length)
        {
            return;
        }

        if (!_sampleNames.Contains(sample) && _sampleNames.Count >= MaxSamples)
        {
            return;
        }

        if (!_outputs.Contains(output) && _outputs.Count >= MaxOutputs)
        {
            return;
        }

        _sampleNames.Add(sample);
        _outputs.Add(output);
        _samples.Add(new OutputSample(sample, output, (long[])shape.Clone(), (float[])fp32.Clone(), (float[])int8.Clone()));
    }
}
