namespace Quantize.Onnx.Samples;

/// <summary>
/// Which file of a sample folder holds each model input: <c>&lt;inputName&gt;.npy</c>, <c>.pb</c> or an image named after
/// the input (characters that cannot appear in file names written as '_'; a case-insensitive match when it is unique),
/// else the ONNX test-data layout (<c>input_0.pb</c>, <c>input_1.pb</c>, ... in model input order).
/// </summary>
internal static class SampleInputFiles
{
    private static readonly char[] IllegalFileNameChars =
        ['/', '\\', ':', '*', '?', '"', '<', '>', '|', '\0'];

    /// <summary>The file of every model input in a sample folder, in model input order.</summary>
    public static string[] Resolve(string sampleFolder, IReadOnlyList<InputSpec> inputs)
    {
        string[] names = FileNames(sampleFolder);
        var exact = new HashSet<string>(names, StringComparer.Ordinal);
        var files = new string[inputs.Count];
        int firstMissing = -1;
        for (int i = 0; i < inputs.Count; i++)
        {
            string? found = FindByName(inputs[i].Name, exact, names);
            if (found is null && firstMissing < 0)
            {
                firstMissing = i;
            }

            files[i] = found is null ? string.Empty : Path.Combine(sampleFolder, found);
        }

        if (firstMissing < 0)
        {
            return files;
        }

        // ONNX test-data layout: input_0.pb, input_1.pb, ... in model input order.
        if (Enumerable.Range(0, inputs.Count).All(i => exact.Contains($"input_{i}.pb")))
        {
            return Enumerable.Range(0, inputs.Count).Select(i => Path.Combine(sampleFolder, $"input_{i}.pb")).ToArray();
        }

        var spec = inputs[firstMissing];
        var expected = Candidates(spec.Name).Where(TensorFileReader.IsTensorFile).Distinct(StringComparer.Ordinal).Select(n => $"'{n}'");
        string present = names.Length == 0 ? "the folder is empty" : "it holds " + Preview(names);
        throw new QuantizeException(ErrorCodes.CalibrationInputMissing, sampleFolder,
            $"Sample folder '{sampleFolder}' has no file for model input '{spec.Name}': expected {string.Join(" or ", expected)} " +
            $"(or {(inputs.Count == 1 ? "input_0.pb" : $"input_0.pb ... input_{inputs.Count - 1}.pb")} in the ONNX test-data layout); {present}.");
    }

    /// <summary>Whether a folder holding the files <paramref name="names"/> holds a file named after an input (or the ONNX test-data layout).</summary>
    public static bool HoldsAnInput(string[] names, IReadOnlyList<InputSpec> inputs)
    {
        var exact = new HashSet<string>(names, StringComparer.Ordinal);
        return inputs.Any(i => FindByName(i.Name, exact, names) is not null) || exact.Contains("input_0.pb");
    }

    /// <summary>The names of the files in a sample folder.</summary>
    public static string[] FileNames(string sampleFolder)
    {
        try
        {
            return Directory.GetFiles(sampleFolder).Select(Path.GetFileName).OfType<string>().ToArray();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new QuantizeException(ErrorCodes.CalibrationFileUnreadable, sampleFolder,
                $"Sample folder '{sampleFolder}' cannot be listed ({e.Message}). Check that it is readable.", e);
        }
    }

    /// <summary>The input name with characters that cannot appear in a file name replaced by '_'.</summary>
    public static string SafeFileName(string inputName)
    {
        ArgumentNullException.ThrowIfNull(inputName);
        var chars = inputName.ToCharArray();
        for (int i = 0; i < chars.Length; i++)
        {
            if (char.IsControl(chars[i]) || Array.IndexOf(IllegalFileNameChars, chars[i]) >= 0)
            {
                chars[i] = '_';
            }
        }

        return new string(chars);
    }

    /// <summary>The first eight of <paramref name="names"/> in ordinal order, for error messages.</summary>
    public static string Preview(IReadOnlyCollection<string> names)
    {
        var sorted = names.OrderBy(n => n, StringComparer.Ordinal).ToList();
        string shown = string.Join(", ", sorted.Take(8));
        return sorted.Count > 8 ? $"{shown}, ... ({sorted.Count} files)" : shown;
    }

    private static string? FindByName(string inputName, HashSet<string> exact, string[] names)
    {
        var candidates = Candidates(inputName).ToArray();
        foreach (string candidate in candidates)
        {
            if (exact.Contains(candidate))
            {
                return candidate;
            }
        }

        foreach (string candidate in candidates)
        {
            var matches = names.Where(n => string.Equals(n, candidate, StringComparison.OrdinalIgnoreCase)).ToArray();
            if (matches.Length == 1)
            {
                return matches[0];
            }
        }

        return null;
    }

    /// <summary>File names that may hold an input: the exact name, then with illegal characters mapped to '_'; tensors before images.</summary>
    private static IEnumerable<string> Candidates(string inputName)
    {
        string safe = SafeFileName(inputName);
        string[] stems = safe == inputName ? [inputName] : [inputName, safe];
        string[] extensions = [".npy", ".pb", .. Images.ImageDecoder.Extensions];
        return extensions.SelectMany(ext => stems.Select(stem => stem + ext));
    }
}
