using System.Text;

namespace Quantize.Onnx.Model;

/// <summary>One file a run will write, and what it is (for messages): "the output model", "the JSON report", ...</summary>
public sealed record PlannedOutput(string Path, string What);

/// <summary>
/// Checks, before anything long runs, every path a run will write: none may be the source model, a file inside the
/// calibration or validation data, or another output of the same run (compared as real paths, through symbolic links);
/// each must name a file, not a folder; and its folder must exist or be creatable and be writable. A bad location is
/// error QNT1006 naming the path and the fix, instead of a lost source model, an internal error after calibration, or a
/// written model whose report then fails.
/// </summary>
public static class OutputLocations
{
    /// <param name="sampleSources">Calibration and validation folders or sample-list files; null entries are ignored.</param>
    public static void Check(string modelPath, IEnumerable<string?> sampleSources, IReadOnlyList<PlannedOutput> outputs)
    {
        // A sample-list file is an input like the model; its samples may live anywhere, so only folders are fenced off.
        var inputs = sampleSources.OfType<string>().ToList();
        var files = inputs.Where(File.Exists).Append(modelPath).Select(RealPath.Resolve).ToList();
        var folders = inputs.Where(Directory.Exists).Select(RealPath.Resolve).ToList();
        var seen = new Dictionary<string, PlannedOutput>(OperatingSystem.IsLinux() ? StringComparer.Ordinal : StringComparer.OrdinalIgnoreCase);
        foreach (var output in outputs)
        {
            try
            {
                CheckOne(output, files, folders, seen);
            }
            catch (IOException e)
            {
                // A path over the OS limit, a link loop, a component that cannot be inspected.
                throw Error(output, $"Cannot use '{output.Path}' for {output.What}: {e.Message} Choose another path.", e);
            }
        }
    }

    private static void CheckOne(PlannedOutput output, List<string> inputFiles, List<string> folders, Dictionary<string, PlannedOutput> seen)
    {
        if (Path.EndsInDirectorySeparator(output.Path) || Directory.Exists(output.Path))
        {
            throw Error(output, $"'{output.Path}' is a folder; {output.What} needs a file path (e.g. '{Path.Combine(output.Path, "model.int8.onnx")}').");
        }

        var real = RealPath.Resolve(output.Path);
        if (inputFiles.FirstOrDefault(f => string.Equals(real, f, RealPath.Comparison)) is { } input)
        {
            throw Error(output, $"{Capitalized(output.What)} path '{output.Path}' is an input of this run ('{input}'); the tool never overwrites what it reads. Choose another path.");
        }

        if (folders.FirstOrDefault(f => RealPath.IsInside(real, f)) is { } folder)
        {
            throw Error(output, $"{Capitalized(output.What)} path '{output.Path}' is inside the sample folder '{folder}', whose files are read as samples. Write it elsewhere.");
        }

        if (seen.TryGetValue(real, out var other))
        {
            throw Error(output, $"{Capitalized(output.What)} and {other.What} would both be written to '{output.Path}'. Give each its own path.");
        }

        seen[real] = output;
        if (Encoding.UTF8.GetByteCount(Path.GetFileName(real)) > TempNames.MaxNameBytes)
        {
            throw Error(output, $"The file name of {output.What} '{Path.GetFileName(output.Path)}' is longer than {TempNames.MaxNameBytes} bytes, more than file systems take. Choose a shorter name.");
        }

        CheckFolder(output, Path.GetDirectoryName(real)!);
    }

    /// <summary>The folder must be creatable (no file in the way) and writable: tried with a temporary file that deletes itself.</summary>
    private static void CheckFolder(PlannedOutput output, string folder)
    {
        for (var ancestor = folder; ancestor is not null; ancestor = Path.GetDirectoryName(ancestor))
        {
            if (File.Exists(ancestor))
            {
                throw Error(output, $"The folder of {output.What} cannot be created: '{ancestor}' is a file. Choose another path.");
            }

            if (Directory.Exists(ancestor))
            {
                break;
            }
        }

        try
        {
            Directory.CreateDirectory(folder);
            using var probe = new FileStream(TempNames.Beside(Path.Combine(folder, "probe"), ".tmp"), FileMode.CreateNew, FileAccess.Write, FileShare.None, 1, FileOptions.DeleteOnClose);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotSupportedException)
        {
            throw Error(output, $"Cannot write {output.What} to the folder '{folder}': {e.Message} Choose a writable location.", e);
        }
    }

    private static string Capitalized(string what) => what.Length == 0 ? what : char.ToUpperInvariant(what[0]) + what[1..];

    private static QuantizeException Error(PlannedOutput output, string message, Exception? inner = null) =>
        new(ErrorCodes.OutputNotWritable, output.Path, message, inner);
}
