using System.Globalization;
using Google.Protobuf;
using Microsoft.Win32.SafeHandles;
using Quantize.Onnx.Model.Proto;
using DataLocation = Quantize.Onnx.Model.Proto.TensorProto.Types.DataLocation;
using DataType = Quantize.Onnx.Model.Proto.TensorProto.Types.DataType;

namespace Quantize.Onnx.Model;

/// <summary>
/// Inlines the external data of every tensor of a model into <c>raw_data</c>, so the rest of the
/// engine sees a self-contained model. Locations must be relative and stay inside the model's folder
/// after resolving <c>..</c> and symbolic links. Inside an <see cref="ExternalDataScope"/>, tensors of
/// the scope's deferral size stay on disk after the same checks (see the scope).
/// </summary>
internal static class ExternalDataResolver
{
    private static readonly char[] LocationSeparators = ['/', '\\'];

    /// <summary>Resolves every EXTERNAL tensor of <paramref name="model"/>, loaded from <paramref name="modelPath"/>.</summary>
    public static void Resolve(ModelProto model, string modelPath)
    {
        string modelFull = Path.GetFullPath(modelPath);
        string folder = Path.GetDirectoryName(modelFull) ?? throw new ArgumentException("The model path has no folder.", nameof(modelPath));
        string? realFolder = null;
        var handles = new Dictionary<string, SafeFileHandle>(StringComparer.FromComparison(RealPath.Comparison));
        var scope = ExternalDataScope.Current;
        try
        {
            foreach (var (tensor, _) in ModelTensors.All(model))
            {
                if (!tensor.HasDataLocation || tensor.DataLocation != DataLocation.External)
                {
                    continue;
                }

                realFolder ??= RealPath.Resolve(folder);
                Inline(tensor, modelFull, folder, realFolder, handles, scope);
            }
        }
        finally
        {
            foreach (var handle in handles.Values)
            {
                handle.Dispose();
            }
        }
    }

    private static void Inline(TensorProto tensor, string modelPath, string folder, string realFolder, Dictionary<string, SafeFileHandle> handles, ExternalDataScope? scope)
    {
        string tensorName = string.IsNullOrEmpty(tensor.Name) ? "(unnamed)" : tensor.Name;
        var (location, offset, length) = Entries(tensor, (key, value) => ParseNumber(value, key, tensorName, modelPath));

        if (string.IsNullOrEmpty(location))
        {
            throw new QuantizeException(ErrorCodes.ModelCorrupt, modelPath,
                $"'{modelPath}' is not a valid ONNX model (tensor '{tensorName}' is marked as external data but has no 'location'); re-export it.");
        }

        if ((DataType)tensor.DataType == DataType.String)
        {
            throw new QuantizeException(ErrorCodes.ModelCorrupt, modelPath,
                $"'{modelPath}' is not a valid ONNX model (STRING tensor '{tensorName}' is stored as external data, which ONNX does not allow); re-export it.");
        }

        string dataPath = CheckLocation(location, tensorName, modelPath, folder, realFolder);

        if (!handles.TryGetValue(dataPath, out var handle))
        {
            Common.RegularFile.Require(dataPath, why => new QuantizeException(ErrorCodes.ExternalDataUnreadable, dataPath,
                $"The external data file '{location}' of tensor '{tensorName}' in '{modelPath}' cannot be read: {why}"));
            try
            {
                handle = File.OpenHandle(dataPath, FileMode.Open, FileAccess.Read, FileShare.Read);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new QuantizeException(ErrorCodes.ExternalDataUnreadable, dataPath,
                    $"The external data file '{location}' of tensor '{tensorName}' in '{modelPath}' cannot be read ({e.Message}); " +
                    "keep the data file beside the model and make it readable.", e);
            }

            handles.Add(dataPath, handle);
        }

        long fileSize = RandomAccess.GetLength(handle);
        bool sizeKnown = TensorElementInfo.TryGetByteSize(tensor, out long expected);
        long count = length ?? (sizeKnown ? expected : fileSize - offset);
        if (offset > fileSize || count < 0 || count > fileSize - offset)
        {
            throw new QuantizeException(ErrorCodes.ExternalDataUnreadable, dataPath,
                $"Tensor '{tensorName}' of '{modelPath}' needs bytes {offset}..{offset + count} of '{location}', but that file has only {fileSize} bytes; " +
                "the data file is truncated or belongs to another model — copy the matching data file beside the model.");
        }

        if (sizeKnown && count != expected)
        {
            throw new QuantizeException(ErrorCodes.ExternalDataUnreadable, dataPath,
                $"Tensor '{tensorName}' of '{modelPath}' has {count} bytes in '{location}', but its shape [{string.Join(", ", tensor.Dims)}] of " +
                $"{TensorElementInfo.Name(tensor.DataType)} needs {expected}; the model and its data file do not match — re-export them together.");
        }

        if (count > Array.MaxLength)
        {
            throw new QuantizeException(ErrorCodes.ExternalDataUnreadable, dataPath,
                $"Tensor '{tensorName}' of '{modelPath}' is {count} bytes, more than one tensor can hold in memory (2 GB); split the tensor.");
        }

        if (scope is not null)
        {
            scope.NoteSourceFile(dataPath);
            if (count >= scope.DeferMinBytes)
            {
                scope.Defer(tensor, dataPath, offset, count);
                return;
            }
        }

        var bytes = new byte[count];
        int read = 0;
        while (read < bytes.Length)
        {
            int n = RandomAccess.Read(handle, bytes.AsSpan(read), offset + read);
            if (n == 0)
            {
                throw new QuantizeException(ErrorCodes.ExternalDataUnreadable, dataPath,
                    $"The external data file '{location}' of '{modelPath}' ended early while reading tensor '{tensorName}'; copy the complete data file beside the model.");
            }

            read += n;
        }

        tensor.RawData = UnsafeByteOperations.UnsafeWrap(bytes);
        tensor.ExternalData.Clear();
        tensor.ClearDataLocation();
    }

    /// <summary>
    /// The <c>location</c>, <c>offset</c> (0 when absent) and <c>length</c> (null when absent) entries of an external
    /// tensor; <paramref name="number"/>(key, value) parses the numbers ("checksum" and unknown keys carry nothing we need).
    /// </summary>
    internal static (string? Location, long Offset, long? Length) Entries(TensorProto tensor, Func<string, string, long> number)
    {
        string? location = null;
        long offset = 0;
        long? length = null;
        foreach (var entry in tensor.ExternalData)
        {
            switch (entry.Key)
            {
                case "location":
                    location = entry.Value;
                    break;
                case "offset":
                    offset = number(entry.Key, entry.Value);
                    break;
                case "length":
                    length = number(entry.Key, entry.Value);
                    break;
                default:
                    break;
            }
        }

        return (location, offset, length);
    }

    /// <summary>The resolved path of the data file, after checking that it stays inside the model's folder.</summary>
    private static string CheckLocation(string location, string tensorName, string modelPath, string folder, string realFolder)
    {
        string Outside(string why) =>
            $"Tensor '{tensorName}' of '{modelPath}' stores its data at '{location}', {why}. External data must be a file inside the model's folder " +
            $"('{folder}'), named by a relative path; move the data file beside the model and re-save the model with that relative location.";

        bool rooted = location[0] is '/' or '\\'
            || (location.Length >= 2 && location[1] == ':' && char.IsAsciiLetter(location[0]))
            || Path.IsPathRooted(location);
        if (rooted)
        {
            throw new QuantizeException(ErrorCodes.ExternalDataOutsideModelFolder, modelPath, Outside("an absolute path"));
        }

        var segments = new List<string>();
        foreach (string segment in location.Split(LocationSeparators, StringSplitOptions.RemoveEmptyEntries))
        {
            if (segment == ".")
            {
                continue;
            }

            if (segment == "..")
            {
                if (segments.Count == 0)
                {
                    throw new QuantizeException(ErrorCodes.ExternalDataOutsideModelFolder, modelPath, Outside("which leads out of the model's folder through '..'"));
                }

                segments.RemoveAt(segments.Count - 1);
                continue;
            }

            segments.Add(segment);
        }

        string candidate;
        try
        {
            candidate = Path.GetFullPath(Path.Combine([folder, .. segments]));
        }
        catch (Exception e) when (e is ArgumentException or NotSupportedException or PathTooLongException)
        {
            throw new QuantizeException(ErrorCodes.ExternalDataUnreadable, modelPath,
                $"Tensor '{tensorName}' of '{modelPath}' names its data file '{location}', which is not a valid path ({e.Message}); re-export the model.", e);
        }

        if (segments.Count == 0 || !RealPath.IsInside(candidate, folder))
        {
            throw new QuantizeException(ErrorCodes.ExternalDataOutsideModelFolder, modelPath, Outside("which is not a file inside the model's folder"));
        }

        if (!File.Exists(candidate))
        {
            throw new QuantizeException(ErrorCodes.ExternalDataUnreadable, candidate,
                $"The external data file '{location}' of tensor '{tensorName}' in '{modelPath}' does not exist (looked for '{candidate}'); " +
                "copy the data file that was exported with the model into the model's folder.");
        }

        string real;
        try
        {
            real = RealPath.Resolve(candidate);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new QuantizeException(ErrorCodes.ExternalDataUnreadable, candidate,
                $"The external data file '{location}' of tensor '{tensorName}' in '{modelPath}' cannot be resolved ({e.Message}); replace links with the real file.", e);
        }

        if (!RealPath.IsInside(real, realFolder))
        {
            throw new QuantizeException(ErrorCodes.ExternalDataOutsideModelFolder, modelPath,
                Outside($"which is a symbolic link to '{real}', outside the model's folder"));
        }

        // Read the resolved file: that is the path that was checked.
        return real;
    }

    private static long ParseNumber(string value, string key, string tensorName, string modelPath)
    {
        if (!long.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out long number))
        {
            throw new QuantizeException(ErrorCodes.ModelCorrupt, modelPath,
                $"'{modelPath}' is not a valid ONNX model (tensor '{tensorName}' has external data {key} '{value}', not a non-negative integer); re-export it.");
        }

        return number;
    }
}
