using System.Text;

namespace Quantize.Onnx.Model;

/// <summary>Writes a text file atomically: a hidden temporary file beside it, then a rename, so readers see the old file or the new one.</summary>
internal static class AtomicText
{
    /// <param name="what">What the file is, for the QNT1006 message (e.g. "the HTML report").</param>
    public static void Write(string path, string text, string what)
    {
        var folder = Path.GetDirectoryName(Path.GetFullPath(path))!;
        Directory.CreateDirectory(folder);
        var temp = TempNames.Beside(path, ".tmp");
        try
        {
            File.WriteAllText(temp, text, new UTF8Encoding(false));
            File.Move(temp, path, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            File.Delete(temp);
            throw new QuantizeException(ErrorCodes.OutputNotWritable, path, $"Cannot write {what}: {e.Message}", e);
        }
    }
}
