using System.Diagnostics;
using Quantize.Onnx;

namespace Quantize.Benchmarks;

/// <summary>
/// The weight-only 4-bit rows of the MiniLM benchmark (<c>minilm --weight4</c>): MatMulNBits with blocks of
/// 32 and 128, float compute (accuracy level 0) and int8 compute (level 4), quantized by our engine.
/// </summary>
internal static class MiniLmWeight4
{
    private static readonly (string Label, int BlockSize, int AccuracyLevel)[] Variants =
    [
        ("4-bit block 32", 32, 0),
        ("4-bit block 32, int8 compute (level 4)", 32, 4),
        ("4-bit block 128", 128, 0),
        ("4-bit block 128, int8 compute (level 4)", 128, 4),
    ];

    /// <summary>Quantizes <paramref name="model"/> once per variant into <paramref name="work"/>: (label, path, quantize time).</summary>
    public static List<(string Label, string Path, TimeSpan Time)> Quantize(string model, string work, QuantizationOptions options)
    {
        var result = new List<(string, string, TimeSpan)>();
        foreach (var (label, blockSize, accuracyLevel) in Variants)
        {
            var path = System.IO.Path.Combine(work, $"minilm.weight4.b{blockSize}.l{accuracyLevel}.onnx");
            var timer = Stopwatch.StartNew();
            var r = new Quantizer(options with { Mode = QuantizationMode.Weight4, BlockSize = blockSize, AccuracyLevel = accuracyLevel }).Run(model, null, path);
            result.Add((label, path, timer.Elapsed));
            Console.WriteLine($"{System.IO.Path.GetFileName(path)}: {r.Output}, kernels {string.Join(", ", r.Fusion.IntegerKernels.Select(k => $"{k.Key} {k.Value}"))}; warnings: {string.Join(" | ", r.Warnings.Select(w => w.Code))}");
        }

        return result;
    }
}
