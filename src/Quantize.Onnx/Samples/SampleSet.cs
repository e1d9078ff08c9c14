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
    private readonly SampleEntry[] _entries;
    private readonly Images.ImageSampleReader _images;
    private readonly ClassLabels? _labels;

    private SampleSet(string folder, IReadOnlyList<InputSpec> inputs, SampleEntry[] entries, Images.ImageSampleReader images, ClassLabels? labels)
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
        var (entries, labels, listed) = SampleLayout.Find(folder, inputs);
        return Finish(folder, inputs, options, images, entries, labels, sort: !listed);
    }

    /// <summary>Name order (a list keeps its own), then the seeded shuffle and the sample limit.</summary>
    private static SampleSet Finish(
        string folder, IReadOnlyList<InputSpec> inputs, SampleSetOptions? options, Images.ImageSampleReader images, List<SampleEntry> entries, ClassLabels? labels,
        bool sort)
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
        if (SampleLayout.IsNpz(file))
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
    /// <paramref name="count"/> samples spread evenly over the set (all when it has no more), for the passes that read a
    /// few: a folder sorted by condition (a speech model's 16 kHz frames before its 8 kHz ones) would otherwise show them
    /// one condition only, and the control-flow branch it takes.
    /// </summary>
    public List<InputSample> ReadSpread(int count) =>
        [.. Enumerable.Range(0, Math.Min(Math.Max(0, count), Count)).Select(i => ReadSample((int)((long)i * Count / Math.Min(count, Count))))];

    /// <summary>
    /// Sample <paramref name="index"/>'s source (folder or file) and the file of every model input,
    /// in model input order; throws <see cref="ErrorCodes.CalibrationInputMissing"/> like <see cref="ReadSample"/>.
    /// </summary>
    internal (string Source, string[] Files) SampleFiles(int index)
    {
        var entry = _entries[index];
        return (entry.Path, FilesOf(entry));
    }

    private InputSample Read(SampleEntry entry)
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
        var truth = classIndex is not null || entry.Kind == SampleEntryKind.SampleFolder ? new SampleGroundTruth(entry.Path, classIndex, _images) : null;
        return new InputSample(entry.Path, tensors) { GroundTruth = truth };
    }

    /// <summary>The file of every model input, in model input order (an archive or a single-input file serves all).</summary>
    private string[] FilesOf(SampleEntry entry) =>
        entry.Kind == SampleEntryKind.SampleFolder ? SampleInputFiles.Resolve(entry.Path, Inputs) : Enumerable.Repeat(entry.Path, Inputs.Count).ToArray();

    /// <summary>The input name with characters that cannot appear in a file name replaced by '_'.</summary>
    public static string SafeFileName(string inputName) => SampleInputFiles.SafeFileName(inputName);
}
