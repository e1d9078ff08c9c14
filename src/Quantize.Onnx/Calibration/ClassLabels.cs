using System.Globalization;

namespace Quantize.Onnx.Calibration;

/// <summary>
/// Maps a class label (the name of the sub-folder holding an image) to the class index a classifier
/// outputs. With a <c>labels.txt</c> in the sample set's folder (one class name per line, in the order
/// of the model's classes; blank lines and lines starting with '#' are skipped) the label is looked up
/// there; without one, the label must be the class index itself (a whole number such as <c>0</c>, <c>1</c>).
/// </summary>
public sealed class ClassLabels
{
    public const string FileName = "labels.txt";

    private readonly Dictionary<string, int>? _indices;
    private readonly string? _file;

    private ClassLabels(Dictionary<string, int>? indices, string? file)
    {
        _indices = indices;
        _file = file;
    }

    /// <summary>Reads <c>labels.txt</c> from <paramref name="folder"/> when it exists.</summary>
    public static ClassLabels Load(string folder)
    {
        string file = Path.Combine(folder, FileName);
        if (!File.Exists(file))
        {
            return new ClassLabels(null, null);
        }

        var indices = new Dictionary<string, int>(StringComparer.Ordinal);
        int index = 0;
        foreach (string raw in File.ReadLines(file))
        {
            string line = raw.Trim();
            if (line.Length == 0 || line.StartsWith('#'))
            {
                continue;
            }

            if (!indices.TryAdd(line, index))
            {
                throw new QuantizeException(ErrorCodes.ClassLabelUnknown, file,
                    $"Class list '{file}' names class '{line}' twice (classes {indices[line]} and {index}). List each class once, in the order of the model's outputs.");
            }

            index++;
        }

        return new ClassLabels(indices, file);
    }

    /// <summary>The class index of <paramref name="label"/>; error QNT1112 naming <paramref name="sample"/> when it is unknown.</summary>
    public int IndexOf(string label, string sample)
    {
        if (_indices is not null)
        {
            return _indices.TryGetValue(label, out int index) ? index : throw new QuantizeException(ErrorCodes.ClassLabelUnknown, sample,
                $"Sample '{sample}' is labelled '{label}' (its folder name), which class list '{_file}' does not name " +
                $"(it lists {string.Join(", ", _indices.Keys.Take(10))}{(_indices.Count > 10 ? ", ..." : "")}). Add the class to the list or rename the folder.");
        }

        return int.TryParse(label, NumberStyles.None, CultureInfo.InvariantCulture, out int number) ? number : throw new QuantizeException(ErrorCodes.ClassLabelUnknown, sample,
            $"Sample '{sample}' is labelled '{label}' (its folder name), which is not a class index. Name class folders 0, 1, 2, ... or add a {FileName} " +
            "beside them listing the class names in the order of the model's outputs, one per line.");
    }
}
