using System.Runtime.InteropServices;
using Microsoft.ML.OnnxRuntime.Tensors;
using Quantize.Onnx.Calibration;

namespace Quantize.Onnx.Validation;

/// <summary>Ground truth of one output on one validation sample.</summary>
/// <param name="Values">The expected values as floats (C order).</param>
/// <param name="Labels">True when the file holds one class index per row of the output instead of values.</param>
public sealed record ExpectedOutput(string File, float[] Values, bool Labels);

/// <summary>
/// Reads ground truth from a validation sample folder: <c>&lt;sample&gt;/expected/&lt;outputName&gt;.npy</c> (or
/// <c>.pb</c>; characters that cannot appear in file names written as '_'). Its shape must equal the model
/// output's shape on that sample, or (class labels) hold one integer class index per row of a rank-1 to rank-3
/// output whose last axis has ≥ 2 classes; anything else is error QNT1108 naming the file.
/// </summary>
public static class ExpectedOutputs
{
    /// <summary>The ground truth of <paramref name="output"/> for the sample at <paramref name="sampleSource"/>, or null when there is none.</summary>
    public static ExpectedOutput? Read(string sampleSource, string output, IReadOnlyList<long> outputShape)
    {
        var file = Find(sampleSource, output);
        if (file is null)
        {
            return null;
        }

        var tensor = TensorFileReader.Read(file);
        var values = ToFloats(tensor, file);
        var count = outputShape.Aggregate(1L, (a, b) => a * b);
        if (tensor.Shape.SequenceEqual(outputShape))
        {
            return new ExpectedOutput(file, values, Labels: false);
        }

        var lastAxis = outputShape.Count is 0 or > 3 ? 0 : outputShape[^1];
        if (lastAxis >= 2 && values.LongLength == count / lastAxis && tensor.ElementType is not (TensorElementType.Float or TensorElementType.Double))
        {
            return new ExpectedOutput(file, values, Labels: true);
        }

        throw new QuantizeException(ErrorCodes.ExpectedShapeMismatch, file,
            $"Expected output '{file}' has shape {Format(tensor.Shape)}, but the model's output '{output}' has shape {Format(outputShape)} on this sample. " +
            $"Write the expected output with the output's shape (or, for a classifier, one integer class index per row).");
    }

    /// <summary>True when the sample folder has an <c>expected</c> file for <paramref name="output"/>.</summary>
    public static string? Find(string sampleSource, string output)
    {
        var folder = Path.Combine(sampleSource, "expected");
        if (!Directory.Exists(folder))
        {
            return null;
        }

        foreach (var stem in new[] { output, CalibrationDataSet.SafeFileName(output) }.Distinct(StringComparer.Ordinal))
        {
            foreach (var ext in new[] { ".npy", ".pb" })
            {
                var path = Path.Combine(folder, stem + ext);
                if (File.Exists(path))
                {
                    return path;
                }
            }
        }

        return null;
    }

    private static float[] ToFloats(TensorData tensor, string file) => tensor.ElementType switch
    {
        TensorElementType.Float => tensor.AsFloats().ToArray(),
        TensorElementType.Double => Array.ConvertAll(MemoryMarshal.Cast<byte, double>(tensor.Data).ToArray(), v => (float)v),
        TensorElementType.Int64 => Array.ConvertAll(MemoryMarshal.Cast<byte, long>(tensor.Data).ToArray(), v => (float)v),
        TensorElementType.Int32 => Array.ConvertAll(MemoryMarshal.Cast<byte, int>(tensor.Data).ToArray(), v => (float)v),
        TensorElementType.UInt8 => Array.ConvertAll(tensor.Data, v => (float)v),
        TensorElementType.Bool => Array.ConvertAll(tensor.Data, v => (float)v),
        _ => throw new QuantizeException(ErrorCodes.CalibrationFileUnreadable, file,
            $"Expected output '{file}' holds {tensor.ElementType}; use float32, float64, int64, int32, uint8 or bool."),
    };

    private static string Format(IEnumerable<long> shape) => "[" + string.Join(", ", shape) + "]";
}
