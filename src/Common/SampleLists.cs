using System;
using System.Collections.Generic;
using System.IO;

namespace Quantize.Common;

/// <summary>
/// A sample list: a .txt file given instead of a calibration or validation folder, naming samples one per line,
/// relative to the list's folder (or absolute, with '/' or '\'); blank lines and lines starting with '#' are skipped.
/// The engine reads it for the samples, the task for the build's inputs (the list and everything it names).
/// </summary>
internal static class SampleLists
{
    public const string Extension = ".txt";

    /// <summary>Class names in output order, beside class folders (and so beside a list naming them).</summary>
    public const string ClassNamesFile = "classes.txt";

    public static bool IsList(string path) => path.EndsWith(Extension, StringComparison.OrdinalIgnoreCase);

    /// <summary>The entries of <paramref name="lines"/>, the text of the list at <paramref name="listPath"/>, in file order.</summary>
    public static IEnumerable<Entry> Entries(string listPath, IEnumerable<string> lines)
    {
        string folder = Path.GetDirectoryName(Path.GetFullPath(listPath))!;
        int number = 0;
        foreach (string raw in lines)
        {
            number++;
            string line = raw.Trim();
            if (line.Length == 0 || line[0] == '#')
            {
                continue;
            }

            // No path can hold a NUL (Path.GetFullPath throws on it): each side reports it its own way.
            string? path = line.IndexOf('\0') >= 0 ? null : Path.GetFullPath(Path.Combine(folder, line.Replace('\\', Path.DirectorySeparatorChar)));
            yield return new Entry(number, line, path);
        }
    }

    /// <summary>One line naming a sample.</summary>
    internal sealed class Entry
    {
        public Entry(int line, string text, string? path)
        {
            Line = line;
            Text = text;
            Path = path;
        }

        /// <summary>1-based.</summary>
        public int Line { get; }

        /// <summary>The line as written, trimmed.</summary>
        public string Text { get; }

        /// <summary>The full path it names; null when the line holds a NUL character.</summary>
        public string? Path { get; }
    }
}
