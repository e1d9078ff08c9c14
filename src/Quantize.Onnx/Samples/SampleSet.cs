using Quantize.Onnx.Calibration;
namespace Quantize.Onnx.Samples;

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
/// <item><c>.npz</c> archives directly in the folder, one per sample, arrays named after the inputs;</item>
/// <item>single-input models only: image files (PNG, JPEG, BMP, WebP) directly in the folder, one per
/// sample, and class folders: a sub-folder holding images but no file named after an input is a class,
/// each image a sample labelled with the folder's name (<see cref="ClassLabels"/>). In a sample folder an
/// input may also be an image named after it (<c>&lt;inputName&gt;.png</c>). Images become tensors by
/// <see cref="SampleSetOptions.Images"/> (<see cref="Images.ImageSampleReader"/>).</item>
/// </list>
/// Instead of a folder, a text file (<c>.txt</c>) may list the samples, one path per line relative
/// to the file (sample folders, tensor files, archives, images; blank lines and '#' comments skipped),
/// so a calibration set can be a subset of a larger folder; a listed image's label is the name of its
/// folder when that is not the list's folder.
/// Sub-folders named <c>expected</c> or starting with '.' are not samples; other files in a sample
/// folder (labels, json) are ignored. Every tensor is checked against its
/// <see cref="InputSpec"/> (type, shape with dynamic dimensions allowed, finite values).
/// </remarks>
public sealed class SampleSet
{
    private static readonly char[] IllegalFileNameChars =
        ['/', '\\', ':', '*', '?', '"', '<', '>', '|', '\0'];

    private readonly Entry[] _entries;
    private readonly Images.ImageSampleReader _images;
    private readonly ClassLabels? _labels;

    private SampleSet(string folder, IReadOnlyList<InputSpec> inputs, Entry[] entries, Images.ImageSampleReader images, ClassLabels? labels)
    {
        Folder = folder;
        Inputs = inputs;
        _entries = entries;
        _images = images;
        _labels = labels;
    }

    /// <summary>The calibration folder or sample list file (as given).</summary>
    public string Folder { get; }

    /// <summary>The model inputs every sample provides, in model order.</summary>
    public IReadOnlyList<InputSpec> Inputs { get; }

    /// <summary>Number of samples that <see cref="Enumerate"/> yields (after <see cref="SampleSetOptions.MaxSamples"/>).</summary>
    public int Count => _entries.Length;

    /// <summary>The sample folders or files, in the order they are enumerated.</summary>
    public IReadOnlyList<string> Sources => Array.ConvertAll(_entries, e => e.Path);

    /// <summary>
    /// Lists the samples in <paramref name="folder"/> (or the list file it names). Throws <see cref="ErrorCodes.CalibrationFolderMissing"/>
    /// when the folder does not exist and <see cref="ErrorCodes.CalibrationFolderEmpty"/> when it holds no sample.
    /// </summary>
    public static SampleSet Open(string folder, IReadOnlyList<InputSpec> inputs, SampleSetOptions? options = null)
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

        var images = new Images.ImageSampleReader(options?.Images ?? new Images.ImageOptions());
        if (File.Exists(folder) && SampleListFile.IsListFile(folder))
        {
            var listed = SampleListFile.Read(folder).Select(path => EntryFor(path, folder)).ToList();
            if (listed.Count == 0)
            {
                throw new QuantizeException(ErrorCodes.CalibrationFolderEmpty, folder, $"Sample list '{folder}' names no samples. List one sample path per line, relative to the list.");
            }

            var listFolder = Path.GetDirectoryName(Path.GetFullPath(folder))!;
            return Finish(folder, inputs, options, images, listed, listed.Any(e => e.Label is not null) ? ClassLabels.Load(listFolder) : null, sort: false);
        }

        if (!Directory.Exists(folder))
        {
            string problem = File.Exists(folder) ? "is a file, not a folder (a sample list is a .txt file)" : "does not exist";
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
                        entries.AddRange(SubFolderEntries(info.Name, Path.Combine(folder, info.Name), inputs));
                    }
                }
                else if (IsNpz(info.Name))
                {
                    entries.Add(new Entry(info.Name, Path.Combine(folder, info.Name), EntryKind.Archive));
                }
                else if (TensorFileReader.IsTensorFile(info.Name) || Images.ImageDecoder.IsImageFile(info.Name))
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
                entries.AddRange(flatFiles.Select(name => EntryFor(Path.Combine(folder, name), folder) with { Name = name }));
            }
            else if (entries.Count == 0)
            {
                throw new QuantizeException(ErrorCodes.CalibrationInputMissing, folder,
                    $"Calibration folder '{folder}' holds data files directly ({Preview(flatFiles)}), but the model has {inputs.Count} inputs " +
                    $"({string.Join(", ", inputs.Select(i => i.Name))}). Put each sample in its own sub-folder with one file per input: " +
                    $"{string.Join(", ", inputs.Select(i => ExpectedNpy(i)))}, or one .npz archive per sample.");
            }
        }

        if (entries.Count == 0)
        {
            string single = inputs.Count == 1 ? ", or .npy/.pb/image files directly in the folder (one per sample)" : string.Empty;
            throw new QuantizeException(ErrorCodes.CalibrationFolderEmpty, folder,
                $"Calibration folder '{folder}' holds no samples. Add one sub-folder per sample holding " +
                $"{string.Join(", ", inputs.Select(i => ExpectedNpy(i)))} (.npy or .pb), one .npz archive per sample{single}.");
        }

        return Finish(folder, inputs, options, images, entries, entries.Any(e => e.Label is not null) ? ClassLabels.Load(folder) : null);
    }

    /// <summary>Name order (a list keeps its own), then the seeded shuffle and the sample limit.</summary>
    private static SampleSet Finish(
        string folder, IReadOnlyList<InputSpec> inputs, SampleSetOptions? options, Images.ImageSampleReader images, List<Entry> entries, ClassLabels? labels,
        bool sort = true)
    {
        if (sort)
        {
            entries.Sort((a, b) => string.CompareOrdinal(a.Name, b.Name));
        }

        if (options?.ShuffleSeed is int seed)
        {
            SampleOrder.Shuffle(entries, seed);
        }

        if (options?.MaxSamples is int limit && entries.Count > limit)
        {
            entries.RemoveRange(limit, entries.Count - limit);
        }

        return new SampleSet(folder, inputs, entries.ToArray(), images, labels);
    }

    /// <summary>
    /// A sub-folder is one sample when it holds a file named after an input (or the ONNX test-data
    /// layout), else, when it holds images, a class folder whose images are samples labelled with its name.
    /// </summary>
    private static IEnumerable<Entry> SubFolderEntries(string name, string path, IReadOnlyList<InputSpec> inputs)
    {
        string[] names;
        try
        {
            names = Directory.GetFiles(path).Select(Path.GetFileName).OfType<string>().ToArray();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new QuantizeException(ErrorCodes.CalibrationFileUnreadable, path,
                $"Sample folder '{path}' cannot be listed ({e.Message}). Check that it is readable.", e);
        }

        var exact = new HashSet<string>(names, StringComparer.Ordinal);
        bool namedAfterInput = inputs.Any(i => FindByName(i.Name, exact, names) is not null) || exact.Contains("input_0.pb");
        var images = names.Where(Images.ImageDecoder.IsImageFile).ToList();
        if (namedAfterInput || images.Count == 0)
        {
            return [new Entry(name, path, EntryKind.SampleFolder)];
        }

        return images.Select(image => new Entry($"{name}/{image}", Path.Combine(path, image), EntryKind.Image, Label: name));
    }

    /// <summary>The entry of a listed path or a file directly in the set's folder.</summary>
    private static Entry EntryFor(string path, string root)
    {
        string name = path;
        if (Directory.Exists(path))
        {
            return new Entry(name, path, EntryKind.SampleFolder);
        }

        if (IsNpz(path))
        {
            return new Entry(name, path, EntryKind.Archive);
        }

        if (Images.ImageDecoder.IsImageFile(path))
        {
            string? parent = Path.GetDirectoryName(Path.GetFullPath(path));
            string rootFolder = File.Exists(root) ? Path.GetDirectoryName(Path.GetFullPath(root))! : Path.GetFullPath(root);
            bool inClassFolder = parent is not null && !string.Equals(Path.TrimEndingDirectorySeparator(parent), Path.TrimEndingDirectorySeparator(rootFolder), StringComparison.Ordinal);
            return new Entry(name, path, EntryKind.Image, inClassFolder ? Path.GetFileName(parent) : null);
        }

        return new Entry(name, path, EntryKind.TensorFile);
    }

    private static bool IsNpz(string path) => path.EndsWith(".npz", StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// Reads and checks the samples one by one, in order. Each sample's files are read only when it
    /// is reached; nothing is cached. Throws <see cref="QuantizeException"/> (QNT1103-QNT1107) on
    /// the first bad sample.
    /// </summary>
    public IEnumerable<InputSample> Enumerate()
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
    public void Validate() => Validate(null);

    /// <inheritdoc cref="Validate()"/>
    /// <param name="progress">Called with the number of samples checked so far.</param>
    public void Validate(Action<int>? progress)
    {
        var gen0 = Gen0Bound.Start();
        for (int s = 0; s < _entries.Length; s++)
        {
            gen0.Tick();
            var entry = _entries[s];
            string[] files = FilesOf(entry);
            for (int i = 0; i < files.Length; i++)
            {
                var (type, shape) = ReadHeader(files[i], Inputs[i]);
                SampleValidator.CheckTypeAndShape(type, shape, Inputs[i], files[i]);
            }

            if (entry.Label is { } label)
            {
                _labels!.IndexOf(label, entry.Path);
            }

            progress?.Invoke(s + 1);
        }
    }

    /// <summary>Element type and shape of one input's file: .npy and image headers only; archives and .pb are read.</summary>
    private (Microsoft.ML.OnnxRuntime.Tensors.TensorElementType, long[]) ReadHeader(string file, InputSpec input)
    {
        if (file.EndsWith(".npy", StringComparison.OrdinalIgnoreCase))
        {
            return NpyReader.ReadHeader(file);
        }

        if (Images.ImageDecoder.IsImageFile(file))
        {
            return (input.ElementType, _images.ReadShape(file, input));
        }

        var tensor = ReadInput(file, input);
        return (tensor.ElementType, tensor.Shape);
    }

    /// <summary>Reads one input's tensor from its file: .npy, .pb, an archive's array named after the input, or an image.</summary>
    internal TensorData ReadInput(string file, InputSpec input)
    {
        if (IsNpz(file))
        {
            return NpzReader.Read(file, input.Name);
        }

        return Images.ImageDecoder.IsImageFile(file) ? _images.Read(file, input) : TensorFileReader.Read(file);
    }

    /// <summary>Reads and checks sample <paramref name="index"/> (0-based, in enumeration order).</summary>
    public InputSample ReadSample(int index)
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
        return (entry.Path, FilesOf(entry));
    }

    private InputSample Read(Entry entry)
    {
        string[] files = FilesOf(entry);
        var tensors = new TensorData[Inputs.Count];
        for (int i = 0; i < tensors.Length; i++)
        {
            var tensor = ReadInput(files[i], Inputs[i]);
            SampleValidator.Check(tensor, Inputs[i], files[i]);
            tensors[i] = tensor.WithName(Inputs[i].Name);
        }

        int? classIndex = entry.Label is { } label ? _labels!.IndexOf(label, entry.Path) : null;
        // A sample folder may hold expected images (expected/<output>.png), whatever its inputs are.
        var truth = classIndex is not null || entry.Kind == EntryKind.SampleFolder ? new SampleGroundTruth(entry.Path, classIndex, _images) : null;
        return new InputSample(entry.Path, tensors) { GroundTruth = truth };
    }

    /// <summary>The file of every model input, in model input order (an archive or a single-input file serves all).</summary>
    private string[] FilesOf(Entry entry) =>
        entry.Kind == EntryKind.SampleFolder ? ResolveFiles(entry.Path) : Enumerable.Repeat(entry.Path, Inputs.Count).ToArray();

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
        var expected = Candidates(spec.Name).Where(TensorFileReader.IsTensorFile).Distinct(StringComparer.Ordinal).Select(n => $"'{n}'");
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

    /// <summary>File names that may hold an input: the exact name, then with illegal characters mapped to '_'; tensors before images.</summary>
    private static IEnumerable<string> Candidates(string inputName)
    {
        string safe = SafeFileName(inputName);
        string[] stems = safe == inputName ? [inputName] : [inputName, safe];
        string[] extensions = [".npy", ".pb", .. Images.ImageDecoder.Extensions];
        return extensions.SelectMany(ext => stems.Select(stem => stem + ext));
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

    private enum EntryKind
    {
        SampleFolder,
        TensorFile,
        Archive,
        Image,
    }

    /// <summary>One sample: its sort name, path, what it is, and (images in class folders) its label.</summary>
    private sealed record Entry(string Name, string Path, EntryKind Kind, string? Label = null);
}
