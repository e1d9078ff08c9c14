using Quantize.Common;

namespace Quantize.Onnx.Samples;

/// <summary>
/// Finds the samples of a set and what each one is (the layouts are described on <see cref="SampleSet"/>): lists the
/// folder, or reads the sample list file, and loads the class names when images in class folders are samples.
/// Directory listings only: no sample is read.
/// </summary>
internal static class SampleLayout
{
    /// <summary>
    /// The samples of <paramref name="folder"/> (or of the list file it names), the class names of labelled ones, and
    /// whether they come from a list (which keeps its own order). Throws as <see cref="SampleSet.Open"/> documents.
    /// </summary>
    public static (List<SampleEntry> Entries, ClassLabels? Labels, bool Listed) Find(string folder, IReadOnlyList<InputSpec> inputs)
    {
        if (File.Exists(folder) && SampleLists.IsList(folder))
        {
            var listed = SampleListFile.Read(folder).Select(path => EntryFor(path, folder)).ToList();
            if (listed.Count == 0)
            {
                throw new QuantizeException(ErrorCodes.CalibrationFolderEmpty, folder, $"Sample list '{folder}' names no samples. List one sample path per line, relative to the list.");
            }

            var listFolder = Path.GetDirectoryName(Path.GetFullPath(folder))!;
            return (listed, listed.Any(e => e.Label is not null) ? ClassLabels.Load(listFolder) : null, true);
        }

        var entries = FolderEntries(folder, inputs);
        return (entries, entries.Any(e => e.Label is not null) ? ClassLabels.Load(folder) : null, false);
    }

    /// <summary>A folder's samples, after checking it holds some in a layout the model's inputs allow.</summary>
    private static List<SampleEntry> FolderEntries(string folder, IReadOnlyList<InputSpec> inputs)
    {
        if (!Directory.Exists(folder))
        {
            string problem = File.Exists(folder) ? "is a file, not a folder (a sample list is a .txt file)" : "does not exist";
            throw new QuantizeException(ErrorCodes.CalibrationFolderMissing, folder,
                $"Calibration folder '{folder}' {problem}. Point it at a folder holding one sub-folder per sample.");
        }

        var entries = new List<SampleEntry>();
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
                    entries.Add(new SampleEntry(info.Name, Path.Combine(folder, info.Name), SampleEntryKind.Archive));
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
                    $"Calibration folder '{folder}' holds data files directly ({SampleInputFiles.Preview(flatFiles)}), but the model has {inputs.Count} inputs " +
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

        return entries;
    }

    /// <summary>
    /// A sub-folder is one sample when it holds a file named after an input (or the ONNX test-data
    /// layout), else, when it holds images, a class folder whose images are samples labelled with its name.
    /// </summary>
    private static IEnumerable<SampleEntry> SubFolderEntries(string name, string path, IReadOnlyList<InputSpec> inputs)
    {
        string[] names = SampleInputFiles.FileNames(path);
        bool namedAfterInput = SampleInputFiles.HoldsAnInput(names, inputs);
        var images = names.Where(Images.ImageDecoder.IsImageFile).ToList();
        if (namedAfterInput || images.Count == 0)
        {
            return [new SampleEntry(name, path, SampleEntryKind.SampleFolder)];
        }

        return images.Select(image => new SampleEntry($"{name}/{image}", Path.Combine(path, image), SampleEntryKind.Image, Label: name));
    }

    /// <summary>The entry of a listed path or a file directly in the set's folder.</summary>
    private static SampleEntry EntryFor(string path, string root)
    {
        string name = path;
        if (Directory.Exists(path))
        {
            return new SampleEntry(name, path, SampleEntryKind.SampleFolder);
        }

        if (IsNpz(path))
        {
            return new SampleEntry(name, path, SampleEntryKind.Archive);
        }

        if (Images.ImageDecoder.IsImageFile(path))
        {
            string? parent = Path.GetDirectoryName(Path.GetFullPath(path));
            string rootFolder = File.Exists(root) ? Path.GetDirectoryName(Path.GetFullPath(root))! : Path.GetFullPath(root);
            bool inClassFolder = parent is not null && !string.Equals(Path.TrimEndingDirectorySeparator(parent), Path.TrimEndingDirectorySeparator(rootFolder), StringComparison.Ordinal);
            return new SampleEntry(name, path, SampleEntryKind.Image, inClassFolder ? Path.GetFileName(parent) : null);
        }

        return new SampleEntry(name, path, SampleEntryKind.TensorFile);
    }

    /// <summary>Whether <paramref name="path"/> names a <c>.npz</c> archive (one sample, an array per input).</summary>
    public static bool IsNpz(string path) => path.EndsWith(".npz", StringComparison.OrdinalIgnoreCase);

    private static string ExpectedNpy(InputSpec input) => SampleInputFiles.SafeFileName(input.Name) + ".npy";
}
