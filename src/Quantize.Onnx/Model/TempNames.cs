using System.Security.Cryptography;
using System.Text;

namespace Quantize.Onnx.Model;

/// <summary>
/// Names of the hidden temporary files written beside an output before the rename that publishes it:
/// <c>.&lt;name&gt;.&lt;12 hex digits&gt;&lt;suffix&gt;</c>. The name part is shortened when needed, so that an output whose own
/// name is legal (up to 255 bytes) never fails because its temporary name would not be. Writers hold their temporary
/// file open exclusively while they write it; one left by a killed writer is removed by the next write of that output.
/// </summary>
internal static class TempNames
{
    /// <summary>The longest file name Linux, macOS and Windows file systems take, in bytes (UTF-8) or UTF-16 units.</summary>
    public const int MaxNameBytes = 255;

    private const int RandomDigits = 12;

    /// <param name="suffix">e.g. ".tmp" or ".old".</param>
    public static string Beside(string target, string suffix)
    {
        var (folder, prefix) = Prefix(target, suffix);
        if (suffix == ".tmp")
        {
            SweepAbandoned(folder, prefix, suffix);
        }

        return Path.Combine(folder, prefix + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(RandomDigits / 2)) + suffix);
    }

    /// <summary>The folder and the fixed start of every temporary name of <paramref name="target"/>: ".&lt;name, shortened&gt;.".</summary>
    private static (string Folder, string Prefix) Prefix(string target, string suffix)
    {
        string folder = Path.GetDirectoryName(Path.GetFullPath(target))!;
        string name = Path.GetFileName(target);
        int budget = MaxNameBytes - 2 - RandomDigits - suffix.Length;
        while (name.Length > 0 && Encoding.UTF8.GetByteCount(name) > budget)
        {
            // Never leave half a surrogate pair behind.
            name = name[..^(char.IsLowSurrogate(name[^1]) && name.Length > 1 ? 2 : 1)];
        }

        return (folder, $".{name}.");
    }

    /// <summary>
    /// Deletes this output's temporary files that a killed writer left: unchanged for <see cref="ExternalDataScope.AbandonedAfter"/>
    /// and not held open by a live writer (which keeps it locked). Best effort: a file that cannot be inspected stays.
    /// </summary>
    private static void SweepAbandoned(string folder, string prefix, string suffix)
    {
        try
        {
            if (!Directory.Exists(folder))
            {
                return;
            }

            foreach (var path in Directory.EnumerateFiles(folder, prefix + "*" + suffix))
            {
                var name = Path.GetFileName(path);
                var random = name.Length == prefix.Length + RandomDigits + suffix.Length ? name.AsSpan(prefix.Length, RandomDigits) : default;
                if (random.Length != RandomDigits || !random.ToString().All(Uri.IsHexDigit)
                    || DateTime.UtcNow - File.GetLastWriteTimeUtc(path) < ExternalDataScope.AbandonedAfter)
                {
                    continue;
                }

                try
                {
                    using (new FileStream(path, FileMode.Open, FileAccess.ReadWrite, FileShare.None))
                    {
                    }

                    File.Delete(path);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    // Held by a live writer, or not ours to delete.
                }
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
    }
}
