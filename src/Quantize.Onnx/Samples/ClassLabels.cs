using System.Globalization;
using Quantize.Common;
using Quantize.Onnx.Validation;

namespace Quantize.Onnx.Samples;

/// <summary>
/// Maps a class label (the name of the sub-folder holding an image) to the class index a classifier
/// outputs. With a <c>classes.txt</c> in the sample set's folder (<see cref="ExpectedOutputs.ReadClassNames"/>:
/// one class name per line, in the order of the model's classes; the file <c>label.txt</c> ground truth uses too)
/// the label is looked up there; without one, the label must be the class index itself (<c>0</c>, <c>1</c>, ...).
/// </summary>
public sealed class ClassLabels
{
    public const string FileName = SampleLists.ClassNamesFile;

    private readonly IReadOnlyList<string>? _names;
    private readonly string? _file;

    private ClassLabels(IReadOnlyList<string>? names, string? file)
    {
        _names = names;
        _file = file;
    }

    /// <summary>Reads <c>classes.txt</c> from <paramref name="folder"/> when it exists (QNT1108 when it is malformed).</summary>
    public static ClassLabels Load(string folder) =>
        new(ExpectedOutputs.ReadClassNames(folder), Path.Combine(folder, FileName));

    /// <summary>The class index of <paramref name="label"/>; error QNT1112 naming <paramref name="sample"/> when it is unknown.</summary>
    public int IndexOf(string label, string sample)
    {
        if (_names is not null)
        {
            for (int i = 0; i < _names.Count; i++)
            {
                if (string.Equals(_names[i], label, StringComparison.Ordinal))
                {
                    return i;
                }
            }

            throw new QuantizeException(ErrorCodes.ClassLabelUnknown, sample,
                $"Sample '{sample}' is labelled '{label}' (its folder name), which class list '{_file}' does not name " +
                $"(it lists {string.Join(", ", _names.Take(10))}{(_names.Count > 10 ? ", ..." : "")}). Add the class to the list or rename the folder.");
        }

        return int.TryParse(label, NumberStyles.None, CultureInfo.InvariantCulture, out int number) ? number : throw new QuantizeException(ErrorCodes.ClassLabelUnknown, sample,
            $"Sample '{sample}' is labelled '{label}' (its folder name), which is not a class index. Name class folders 0, 1, 2, ... or add a {FileName} " +
            "beside them listing the class names in the order of the model's outputs, one per line.");
    }
}
