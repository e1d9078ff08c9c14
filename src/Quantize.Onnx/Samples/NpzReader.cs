using System.IO.Compression;

namespace Quantize.Onnx.Samples;

/// <summary>
/// Reads NumPy <c>.npz</c> archives (numpy.savez / savez_compressed: a zip of <c>&lt;name&gt;.npy</c>
/// members, stored or deflated). One archive is one sample; its arrays are named after the model inputs.
/// </summary>
public static class NpzReader
{
    /// <summary>
    /// The array named <paramref name="inputName"/> (or, if absent, its file-safe form or a unique
    /// case-insensitive match); error QNT1103 naming the archive and its arrays when there is none.
    /// </summary>
    public static TensorData Read(string path, string inputName)
    {
        using var zip = Open(path);
        var entry = Find(zip, inputName) ?? throw new QuantizeException(ErrorCodes.CalibrationInputMissing, path,
            $"Archive '{path}' has no array for model input '{inputName}'; it holds {Describe(zip)}. " +
            $"Save it with numpy.savez(path, **{{'{inputName}': array, ...}}), one array per model input.");
        string display = $"{path}:{entry.FullName}";
        var buffer = new MemoryStream();
        try
        {
            using var stream = entry.Open();
            stream.CopyTo(buffer);
        }
        catch (InvalidDataException e)
        {
            throw new QuantizeException(ErrorCodes.CalibrationFileUnreadable, path, $"Archive '{path}' cannot be read: member '{entry.FullName}' is damaged ({e.Message}). Re-save it with numpy.savez.", e);
        }

        buffer.Position = 0;
        var header = NpyReader.ReadHeader(buffer, display);
        var data = new byte[NpyReader.DataLength(header, display)];
        NpyReader.ReadData(buffer, header, data, display);
        return new TensorData(inputName, header.ElementType, header.Shape, data);
    }

    private static ZipArchiveEntry? Find(ZipArchive zip, string inputName)
    {
        foreach (var stem in new[] { inputName, SampleSet.SafeFileName(inputName) })
        {
            if (zip.GetEntry(stem + ".npy") is { } exact)
            {
                return exact;
            }
        }

        var matches = zip.Entries.Where(e => string.Equals(e.FullName, inputName + ".npy", StringComparison.OrdinalIgnoreCase)).ToList();
        return matches.Count == 1 ? matches[0] : null;
    }

    private static string Describe(ZipArchive zip)
    {
        var names = zip.Entries.Select(e => e.FullName).ToList();
        return names.Count == 0 ? "no arrays" : string.Join(", ", names.Take(8)) + (names.Count > 8 ? ", ..." : "");
    }

    private static ZipArchive Open(string path)
    {
        Common.RegularFile.Require(path, why => new QuantizeException(ErrorCodes.CalibrationFileUnreadable, path, $"Archive '{path}' cannot be read: {why}"));
        try
        {
            return ZipFile.OpenRead(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidDataException)
        {
            throw new QuantizeException(ErrorCodes.CalibrationFileUnreadable, path,
                $"Archive '{path}' cannot be read ({e.Message}): it is not a NumPy .npz (zip) file. Save samples with numpy.savez.", e);
        }
    }
}
