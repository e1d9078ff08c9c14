namespace Quantize.Onnx.Calibration;

/// <summary>
/// A folder of calibration samples for a model with the given inputs. Samples are listed when the
/// set is opened (cheap: directory listing only) and read one at a time while enumerating, so memory
/// does not grow with the number of samples.
/// </summary>
/// <remarks>
/// Layouts, in the folder's ordinal name order:
/// <list type="bullet">
/// <item>each sub-folder is a sample holding one file per model input, <c>&lt;inputName&gt;.npy</c> or
/// <c>&lt;inputName&gt;.pb</c> (characters that cannot appear in file names, such as '/' or ':', may be
/// written as '_'; a case-insensitive match is used when it is unique);</item>
/// <item>the ONNX test-data layout: a sub-folder with <c>input_0.pb</c>, <c>input_1.pb</c>, ... matched by
/// model input order (used when the files are not named after the inputs);</item>
/// <item>single-input models only: <c>.npy</c>/<c>.pb</c> files directly in the folder, one per sample.</item>
/// </list>
/// Sub-folders named <c>expected</c> or starting with '.' are not samples; other files in a sample
/// folder (images, labels, json) are ignored. Every tensor is checked against its
/// <see cref="InputSpec"/> (type, shape with dynamic dimensions allowed, finite values).
/// </remarks>
public sealed class CalibrationDataSet
{
    private static readonly char[] IllegalFileNameChars =
        ['/', '\\', ':', '*', '?', '"', '<', '>', '|', '\0'];

    private readonly Entry[] _entries;

    private CalibrationDataSet(string folder, IReadOnlyList<InputSpec> inputs, Entry[] entries)
    {
        Folder = folder;
        Inputs = inputs;
        _entries = entries;
    }

    /// <summary>The calibration folder (as given).</summary>
    public string Folder { get; }

    /// <summary>The model inputs every sample provides, in model order.</summary>
    public IReadOnlyList<InputSpec> Inputs { get; }

    /// <summary>Number of samples that <see cref="Enumerate"/> yields (after <see cref="CalibrationDataSetOptions.MaxSamples"/>).</summary>
    public int Count => _entries.Length;

    /// <summary>The sample folders or files, in the order they are enumerated.</summary>
    public IReadOnlyList<string> Sources => Array.ConvertAll(_entries, e => e.Path);

    /// <summary>
    /// Lists the samples in <paramref name="folder"/>. Throws <see cref="ErrorCodes.CalibrationFolderMissing"/>
    /// when the folder does not exist and <see cref="ErrorCodes.CalibrationFolderEmpty"/> when it holds no sample.
    /// </summary>
    public static CalibrationDataSet Open(string folder, IReadOnlyList<InputSpec> inputs, CalibrationDataSetOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(folder);
        ArgumentNullException.ThrowIfNull(inputs);
        if (inputs.Count == 0)
        {
            throw new ArgumentException("The model has no inputs to calibrate.", nameof(inputs));
        }

        if (options?.MaxSamples is int max && max <= 0)
        {
            throw new QuantizeException(ErrorCodes.InvalidOption, null, $"The maximum number of calibration samples must be positive, got {max}.");
        }

        if (!Directory.Exists(folder))
        {
            string problem = File.Exists(folder) ? "is a file, not a folder" : "does not exist";
            throw new QuantizeException(ErrorCodes.CalibrationFolderMissing, folder,
                $"Calibration folder '{folder}' {problem}. Point it at a folder holding one sub-folder per sample.");
        }

        var entries = new List<Entry>();
        var flatFiles = new List<string>();
        try
        {
            foreach (var info in new DirectoryInfo(folder).EnumerateFileSystemInfos())
            {
                if (info.Name.StartsWith('.'))
                {
                    continue;
                }

                if (info is DirectoryInfo)
                {
                    if (!string.Equals(info.Name, "expected", StringComparison.OrdinalIgnoreCase))
                    {
                        entries.Add(new Entry(info.Name, Path.Combine(folder, info.Name), IsFolder: true));
                    }
                }
                else if (TensorFileReader.IsTensorFile(info.Name))
                {
                    flatFiles.Add(info.Name);
                }
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new QuantizeException(ErrorCodes.CalibrationFolderMissing, folder,
                $"Calibration folder '{folder}' cannot be listed ({e.Message}). Check that it is readable.", e);
        }

        if (flatFiles.Count > 0)
        {
            if (inputs.Count == 1)
            {
                entries.AddRange(flatFiles.Select(name => new Entry(name, Path.Combine(folder, name), IsFolder: false)));
            }
            else if (entries.Count == 0)
            {
                throw new QuantizeException(ErrorCodes.CalibrationInputMissing, folder,
                    $"Calibration folder '{folder}' holds data files directly ({Preview(flatFiles)}), but the model has {inputs.Count} inputs " +
                    $"({string.Join(", ", inputs.Select(i => i.Name))}). Put each sample in its own sub-folder with one file per input: " +
                    $"{string.Join(", ", inputs.Select(i => ExpectedNpy(i)))}.");
            }
        }

        if (entries.Count == 0)
        {
            string single = inputs.Count == 1 ? " or .npy/.pb files directly in the folder (one per sample)" : string.Empty;
            throw new QuantizeException(ErrorCodes.CalibrationFolderEmpty, folder,
                $"Calibration folder '{folder}' holds no samples. Add one sub-folder per sample holding " +
                $"{string.Join(", ", inputs.Select(i => ExpectedNpy(i)))} (.npy or .pb){single}.");
        }

        entries.Sort((a, b) => string.CompareOrdinal(a.Name, b.Name));
        if (options?.MaxSamples is int limit && entries.Count > limit)
        {
            entries.RemoveRange(limit, entries.Count - limit);
        }

        return new CalibrationDataSet(folder, inputs, entries.ToArray());
    }

    /// <summary>
    /// Reads and checks the samples one by one, in order. Each sample's files are read only when it
    /// is reached; nothing is cached. Throws <see cref="QuantizeException"/> (QNT1103-QNT1107) on
    /// the first bad sample.
    /// </summary>
    public IEnumerable<CalibrationSample> Enumerate()
    {
        foreach (var entry in _entries)
        {
            yield return Read(entry);
        }
    }

    /// <summary>
    /// Checks every sample up front without holding more than one tensor: each model input has a
    /// file, and its element type and shape fit the input. Only headers are read for .npy files
    /// (.pb files are parsed whole, one at a time); values (NaN/infinity) are checked by
    /// <see cref="Enumerate"/>. Use it to fail before a long calibration run, not half-way through.
    /// </summary>
    public void Validate()
    {
        var gen0 = Gen0Bound.Start();
        foreach (var entry in _entries)
        {
            gen0.Tick();
            string[] files = entry.IsFolder ? ResolveFiles(entry.Path) : [entry.Path];
            for (int i = 0; i < files.Length; i++)
            {
                var (type, shape) = files[i].EndsWith(".npy", StringComparison.OrdinalIgnoreCase)
                    ? NpyReader.ReadHeader(files[i])
                    : ReadPbHeader(files[i]);
                SampleValidator.CheckTypeAndShape(type, shape, Inputs[i], files[i]);
            }
        }

        static (Microsoft.ML.OnnxRuntime.Tensors.TensorElementType, long[]) ReadPbHeader(string path)
        {
            var tensor = TensorFileReader.Read(path);
            return (tensor.ElementType, tensor.Shape);
        }
    }

    /// <summary>Reads and checks sample <paramref name="index"/> (0-based, in enumeration order).</summary>
    public CalibrationSample ReadSample(int index)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, _entries.Length);
        return Read(_entries[index]);
    }

    /// <summary>
    /// Sample <paramref name="index"/>'s source (folder or file) and the file of every model input,
    /// in model input order; throws <see cref="ErrorCodes.CalibrationInputMissing"/> like <see cref="ReadSample"/>.
    /// </summary>
    internal (string Source, string[] Files) SampleFiles(int index)
    {
        var entry = _entries[index];
        return (entry.Path, entry.IsFolder ? ResolveFiles(entry.Path) : [entry.Path]);
    }

    private CalibrationSample Read(Entry entry)
    {
        string[] files = entry.IsFolder ? ResolveFiles(entry.Path) : [entry.Path];
        var tensors = new TensorData[Inputs.Count];
        for (int i = 0; i < tensors.Length; i++)
        {
            var tensor = TensorFileReader.Read(files[i]);
            SampleValidator.Check(tensor, Inputs[i], files[i]);
            tensors[i] = tensor.WithName(Inputs[i].Name);
        }

        return new CalibrationSample(entry.Path, tensors);
    }

    /// <summary>The file of every model input in a sample folder, in model input order.</summary>
    private string[] ResolveFiles(string sampleFolder)
    {
        string[] names;
        try
        {
            names = Directory.GetFiles(sampleFolder).Select(Path.GetFileName).OfType<string>().ToArray();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new QuantizeException(ErrorCodes.CalibrationFileUnreadable, sampleFolder,
                $"Sample folder '{sampleFolder}' cannot be listed ({e.Message}). Check that it is readable.", e);
        }

        var exact = new HashSet<string>(names, StringComparer.Ordinal);
        var files = new string[Inputs.Count];
        int firstMissing = -1;
        for (int i = 0; i < Inputs.Count; i++)
        {
            string? found = FindByName(Inputs[i].Name, exact, names);
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
        if (Enumerable.Range(0, Inputs.Count).All(i => exact.Contains($"input_{i}.pb")))
        {
            return Enumerable.Range(0, Inputs.Count).Select(i => Path.Combine(sampleFolder, $"input_{i}.pb")).ToArray();
        }

        var spec = Inputs[firstMissing];
        var expected = Candidates(spec.Name).Distinct(StringComparer.Ordinal).Select(n => $"'{n}'");
        string present = names.Length == 0 ? "the folder is empty" : "it holds " + Preview(names);
        throw new QuantizeException(ErrorCodes.CalibrationInputMissing, sampleFolder,
            $"Sample folder '{sampleFolder}' has no file for model input '{spec.Name}': expected {string.Join(" or ", expected)} " +
            $"(or {(Inputs.Count == 1 ? "input_0.pb" : $"input_0.pb ... input_{Inputs.Count - 1}.pb")} in the ONNX test-data layout); {present}.");
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

    /// <summary>File names that may hold an input: the exact name, then with illegal characters mapped to '_'.</summary>
    private static IEnumerable<string> Candidates(string inputName)
    {
        string safe = SafeFileName(inputName);
        if (safe == inputName)
        {
            return [inputName + ".npy", inputName + ".pb"];
        }

        return [inputName + ".npy", inputName + ".pb", safe + ".npy", safe + ".pb"];
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

    private static string ExpectedNpy(InputSpec input) => SafeFileName(input.Name) + ".npy";

    private static string Preview(IReadOnlyCollection<string> names)
    {
        var sorted = names.OrderBy(n => n, StringComparer.Ordinal).ToList();
        string shown = string.Join(", ", sorted.Take(8));
        return sorted.Count > 8 ? $"{shown}, ... ({sorted.Count} files)" : shown;
    }

    private readonly record struct Entry(string Name, string Path, bool IsFolder);
}
