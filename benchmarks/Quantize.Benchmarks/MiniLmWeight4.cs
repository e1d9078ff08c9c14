using System.Diagnostics;
using Quantize.Onnx;

namespace Quantize.Benchmarks;

/// <summary>
/// The weight-only 4-bit rows of the MiniLM benchmark (<c>minilm --weight4</c>): MatMulNBits with blocks of
/// 32 and 128, float compute (accuracy level 0) and int8 compute (level 4), symmetric and (block 32) asymmetric,
/// quantized by our engine.
/// </summary>
internal static class MiniLmWeight4
{
    private static readonly (string Label, int BlockSize, int AccuracyLevel, bool Asymmetric)[] Variants =
    [
        ("4-bit block 32", 32, 0, false),
        ("4-bit block 32, int8 compute (level 4)", 32, 4, false),
        ("4-bit block 32 asymmetric, level 4", 32, 4, true),
        ("4-bit block 128", 128, 0, false),
        ("4-bit block 128, int8 compute (level 4)", 128, 4, false),
    ];

    /// <summary>Quantizes <paramref name="model"/> once per variant into <paramref name="work"/>: (label, path, quantize time).</summary>
    public static List<(string Label, string Path, TimeSpan Time)> Quantize(string model, string work, QuantizationOptions options)
    {
        var result = new List<(string, string, TimeSpan)>();
        foreach (var (label, blockSize, accuracyLevel, asymmetric) in Variants)
        {
            var path = System.IO.Path.Combine(work, $"minilm.weight4.b{blockSize}.l{accuracyLevel}{(asymmetric ? ".asym" : "")}.onnx");
            var timer = Stopwatch.StartNew();
            var r = new Quantizer(options with { Mode = QuantizationMode.Weight4, BlockSize = blockSize, AccuracyLevel = accuracyLevel, Weight4Asymmetric = asymmetric })
                .Run(model, null, path);
            result.Add((label, path, timer.Elapsed));
            Console.WriteLine($"{System.IO.Path.GetFileName(path)}: {r.Output}, kernels {string.Join(", ", r.Fusion.IntegerKernels.Select(k => $"{k.Key} {k.Value}"))}; warnings: {string.Join(" | ", r.Warnings.Select(w => w.Code))}");
        }

        return result;
    }
}
