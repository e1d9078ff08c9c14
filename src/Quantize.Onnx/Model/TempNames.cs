using System.Security.Cryptography;
using System.Text;

namespace Quantize.Onnx.Model;

/// <summary>
/// Names of the hidden temporary files written beside an output before the rename that publishes it:
/// <c>.&lt;name&gt;.&lt;random&gt;&lt;suffix&gt;</c>. The name part is shortened when needed, so that an output whose own
/// name is legal (up to 255 bytes) never fails because its temporary name would not be.
/// </summary>
internal static class TempNames
{
    /// <summary>The longest file name Linux, macOS and Windows file systems take, in bytes (UTF-8) or UTF-16 units.</summary>
    public const int MaxNameBytes = 255;

    /// <param name="suffix">e.g. ".tmp" or ".old".</param>
    public static string Beside(string target, string suffix)
    {
        string folder = Path.GetDirectoryName(Path.GetFullPath(target))!;
        string random = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6));
        string name = Path.GetFileName(target);
        int budget = MaxNameBytes - 2 - random.Length - suffix.Length;
        while (name.Length > 0 && Encoding.UTF8.GetByteCount(name) > budget)
        {
            // Never leave half a surrogate pair behind.
            name = name[..^(char.IsLowSurrogate(name[^1]) && name.Length > 1 ? 2 : 1)];
        }

        return Path.Combine(folder, $".{name}.{random}{suffix}");
    }
}
