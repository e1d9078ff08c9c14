namespace Quantize.Onnx.Model;

/// <summary>
/// The canonical path of a file or folder with every symbolic link resolved, in every component
/// (like POSIX <c>realpath</c>), so that a check "is this inside folder X" cannot be fooled by a link.
/// </summary>
internal static class RealPath
{
    private const int MaxLinkDepth = 40;

    private static readonly char[] Separators = [Path.DirectorySeparatorChar, Path.AltDirectorySeparatorChar];

    /// <summary>String comparison for paths on this platform (case-insensitive on Windows and macOS).</summary>
    public static StringComparison Comparison { get; } =
        OperatingSystem.IsWindows() || OperatingSystem.IsMacOS() ? StringComparison.OrdinalIgnoreCase : StringComparison.Ordinal;

    /// <exception cref="IOException">A link loop or a component that cannot be inspected.</exception>
    public static string Resolve(string path) => Resolve(path, 0);

    /// <summary>True when <paramref name="path"/> is strictly inside <paramref name="folder"/> (both already resolved).</summary>
    public static bool IsInside(string path, string folder)
    {
        string prefix = Path.EndsInDirectorySeparator(folder) ? folder : folder + Path.DirectorySeparatorChar;
        return path.Length > prefix.Length && path.StartsWith(prefix, Comparison);
    }

    private static string Resolve(string path, int depth)
    {
        if (depth > MaxLinkDepth)
        {
            throw new IOException($"More than {MaxLinkDepth} levels of symbolic links under '{path}'.");
        }

        string full = Path.GetFullPath(path);
        string root = Path.GetPathRoot(full) ?? string.Empty;
        string current = root;
        foreach (string part in full[root.Length..].Split(Separators, StringSplitOptions.RemoveEmptyEntries))
        {
            string next = Path.Combine(current, part);
            FileSystemInfo info = Directory.Exists(next) ? new DirectoryInfo(next) : new FileInfo(next);
            string? target = info.LinkTarget;
            if (target is not null)
            {
                // A relative link target is relative to the folder that holds the link.
                next = Resolve(Path.IsPathRooted(target) ? target : Path.Combine(current, target), depth + 1);
            }

            current = next;
        }

        return current;
    }
}
