using Quantize.Common;

namespace Quantize.Onnx.Samples;

/// <summary>
/// A text file naming samples (<see cref="SampleLists"/>: one path per line, relative to the file's folder, or absolute;
/// blank lines and '#' comments skipped). A path that does not exist is error <see cref="ErrorCodes.SampleListEntryMissing"/>
/// naming the list and the line.
/// </summary>
public static class SampleListFile
{
    /// <summary>The listed paths, resolved, in file order.</summary>
    public static IReadOnlyList<string> Read(string listPath)
    {
        ArgumentNullException.ThrowIfNull(listPath);
        string[] lines;
        RegularFile.Require(listPath, why => new QuantizeException(ErrorCodes.CalibrationFolderMissing, listPath, $"Sample list '{listPath}' cannot be read: {why}"));
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
        foreach (var entry in SampleLists.Entries(listPath, lines))
        {
            if (entry.Path is not { } path)
            {
                throw new QuantizeException(ErrorCodes.SampleListEntryMissing, listPath,
                    $"Sample list '{listPath}' line {entry.Line} contains a NUL character, which no path can hold; fix or remove the line.");
            }

            if (!File.Exists(path) && !Directory.Exists(path))
            {
                throw new QuantizeException(ErrorCodes.SampleListEntryMissing, listPath,
                    $"Sample list '{listPath}' line {entry.Line} names '{entry.Text}', which does not exist ({path}). Paths are relative to the list's folder; fix or remove the line.");
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
