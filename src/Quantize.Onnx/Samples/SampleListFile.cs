namespace Quantize.Onnx.Samples;

/// <summary>
/// A text file naming samples, one path per line (relative to the file's folder, or absolute): blank
/// lines and lines starting with '#' are skipped. A path that does not exist is error
/// <see cref="ErrorCodes.SampleListEntryMissing"/> naming the list and the line.
/// </summary>
public static class SampleListFile
{
    public static bool IsListFile(string path) => path.EndsWith(".txt", StringComparison.OrdinalIgnoreCase);

    /// <summary>The listed paths, resolved, in file order.</summary>
    public static IReadOnlyList<string> Read(string listPath)
    {
        ArgumentNullException.ThrowIfNull(listPath);
        string folder = Path.GetDirectoryName(Path.GetFullPath(listPath))!;
        string[] lines;
        Common.RegularFile.Require(listPath, why => new QuantizeException(ErrorCodes.CalibrationFolderMissing, listPath, $"Sample list '{listPath}' cannot be read: {why}"));
        try
        {
            lines = File.ReadAllLines(listPath);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new QuantizeException(ErrorCodes.CalibrationFolderMissing, listPath, $"Sample list '{listPath}' cannot be read ({e.Message}). Check that it is readable.", e);
        }

        var paths = new List<string>();
        var seen = new HashSet<string>(OperatingSystem.IsWindows() ? StringComparer.OrdinalIgnoreCase : StringComparer.Ordinal);
        for (int n = 0; n < lines.Length; n++)
        {
            string line = lines[n].Trim();
            if (line.Length == 0 || line.StartsWith('#'))
            {
                continue;
            }

            if (line.Contains('\0', StringComparison.Ordinal))
            {
                throw new QuantizeException(ErrorCodes.SampleListEntryMissing, listPath,
                    $"Sample list '{listPath}' line {n + 1} contains a NUL character, which no path can hold; fix or remove the line.");
            }

            string path = Path.GetFullPath(Path.Combine(folder, line.Replace('\\', Path.DirectorySeparatorChar)));
            if (!File.Exists(path) && !Directory.Exists(path))
            {
                throw new QuantizeException(ErrorCodes.SampleListEntryMissing, listPath,
                    $"Sample list '{listPath}' line {n + 1} names '{line}', which does not exist ({path}). Paths are relative to the list's folder; fix or remove the line.");
            }

            // Listed twice would weigh one sample double in the calibrated ranges' statistics and in validation.
            if (seen.Add(path))
            {
                paths.Add(path);
            }
        }

        return paths;
    }
}
