using System.Runtime.InteropServices;
using Microsoft.ML.OnnxRuntime.Tensors;
using Quantize.Common;
using Quantize.Onnx.Samples;

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
/// Class labels may also be text: <c>&lt;sample&gt;/expected/&lt;outputName&gt;.txt</c>, or <c>&lt;sample&gt;/label.txt</c>
/// for the model's first classifier output, holding one label per row (whitespace-separated): a class name listed
/// in the validation folder's <c>classes.txt</c> (one name per line, in class-index order), else a class index.
/// </summary>
public static class ExpectedOutputs
{
    /// <summary>The per-sample label file of the first classifier output.</summary>
    public const string SampleLabelFile = "label.txt";


    /// <summary>The ground truth of <paramref name="output"/> for the sample at <paramref name="sampleSource"/>, or null when there is none.</summary>
    /// <param name="firstClassifier">This output is the model's first output with a class axis (it takes <c>label.txt</c>).</param>
    /// <param name="classNames">The validation folder's class names (<see cref="ReadClassNames"/>), or null.</param>
    public static ExpectedOutput? Read(string sampleSource, string output, IReadOnlyList<long> outputShape, bool firstClassifier = false, IReadOnlyList<string>? classNames = null)
    {
        var file = Find(sampleSource, output);
        if (file is null)
        {
            return FindLabelText(sampleSource, output, firstClassifier) is { } text ? ReadLabelText(text, output, outputShape, classNames) : null;
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

    /// <summary>The class names of a validation folder (<c>classes.txt</c>, one per line), or null when it has none.</summary>
    public static IReadOnlyList<string>? ReadClassNames(string validationFolder)
    {
        var path = Path.Combine(validationFolder, SampleLists.ClassNamesFile);
        if (!File.Exists(path))
        {
            return null;
        }

        var names = File.ReadAllLines(path).Select(l => l.Trim()).ToList();
        while (names.Count > 0 && names[^1].Length == 0)
        {
            names.RemoveAt(names.Count - 1);
        }

        if (names.Count < 2 || names.Any(n => n.Length == 0) || names.Distinct(StringComparer.Ordinal).Count() != names.Count)
        {
            throw new QuantizeException(ErrorCodes.ExpectedShapeMismatch, path,
                $"Class names file '{path}' must list at least two distinct, non-empty class names, one per line, in the order of the model's class axis.");
        }

        return names;
    }

    /// <summary>True when the sample folder has an <c>expected</c> file for <paramref name="output"/>.</summary>
    public static string? Find(string sampleSource, string output)
    {
        var folder = Path.Combine(sampleSource, "expected");
        if (!Directory.Exists(folder))
        {
            return null;
        }

        foreach (var stem in new[] { output, SampleSet.SafeFileName(output) }.Distinct(StringComparer.Ordinal))
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

    private static string? FindLabelText(string sampleSource, string output, bool firstClassifier)
    {
        foreach (var stem in new[] { output, SampleSet.SafeFileName(output) }.Distinct(StringComparer.Ordinal))
        {
            var path = Path.Combine(sampleSource, "expected", stem + ".txt");
            if (File.Exists(path))
            {
                return path;
            }
        }

        var label = Path.Combine(sampleSource, SampleLabelFile);
        return firstClassifier && File.Exists(label) ? label : null;
    }

    private static ExpectedOutput ReadLabelText(string file, string output, IReadOnlyList<long> outputShape, IReadOnlyList<string>? classNames)
    {
        var classes = outputShape.Count is 0 or > 3 ? 0 : outputShape[^1];
        var count = outputShape.Aggregate(1L, (a, b) => a * b);
        var tokens = File.ReadAllText(file).Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
        if (classes < 2 || tokens.Length != count / classes)
        {
            throw new QuantizeException(ErrorCodes.ExpectedShapeMismatch, file,
                $"Label file '{file}' holds {tokens.Length} label(s), but the model's output '{output}' has shape {Format(outputShape)} on this sample" +
                (classes < 2 ? ", which has no class axis (the last axis of a rank-1 to rank-3 output, with at least 2 classes)." : $": write one label per row ({count / classes})."));
        }

        if (classNames is not null && classNames.Count != classes)
        {
            throw new QuantizeException(ErrorCodes.ExpectedShapeMismatch, file,
                $"The validation folder's {SampleLists.ClassNamesFile} names {classNames.Count} classes, but the model's output '{output}' has {classes} (its last axis). List one name per class, in index order.");
        }

        var values = new float[tokens.Length];
        for (var i = 0; i < tokens.Length; i++)
        {
            var index = classNames is null ? -1 : IndexOf(classNames, tokens[i]);
            if (index < 0 && (!int.TryParse(tokens[i], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out index) || index >= classes))
            {
                var names = classNames is null
                    ? $"there is no {SampleLists.ClassNamesFile} in the validation folder to name the classes"
                    : $"{SampleLists.ClassNamesFile} names {string.Join(", ", classNames.Take(10).Select(n => $"'{n}'"))}{(classNames.Count > 10 ? ", ..." : "")}";
                throw new QuantizeException(ErrorCodes.ExpectedShapeMismatch, file,
                    $"Label '{tokens[i]}' in '{file}' is neither a class name nor a class index below {classes} (the size of the last axis of output '{output}'); {names}. " +
                    $"Write a class index, or list the class names in index order in {SampleLists.ClassNamesFile} in the validation folder.");
            }

            values[i] = index;
        }

        return new ExpectedOutput(file, values, Labels: true);
    }

    private static int IndexOf(IReadOnlyList<string> names, string name)
    {
        for (var i = 0; i < names.Count; i++)
        {
            if (string.Equals(names[i], name, StringComparison.Ordinal))
            {
                return i;
            }
        }

        return -1;
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
