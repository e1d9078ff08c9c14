using Google.Protobuf;
using Quantize.Onnx.Model.Proto;

namespace Quantize.Onnx.Model;

/// <summary>
/// Reads ONNX models. <see cref="Load"/> returns a self-contained model: tensors stored in external
/// data files are read and inlined into <c>raw_data</c>.
/// </summary>
public static class ModelLoader
{
    /// <summary>
    /// Nesting depth the parser accepts. Google.Protobuf's default (100) is too low for models with
    /// nested If/Loop/Scan subgraphs: every level of subgraph costs about four message levels.
    /// </summary>
    internal const int RecursionLimit = 200;

    /// <summary>Reads the model at <paramref name="path"/> and inlines its external data.</summary>
    /// <exception cref="QuantizeException">
    /// QNT1001 missing or unreadable file, QNT1002 not an ONNX model, QNT1003 external data outside the
    /// model's folder, QNT1004 external data missing, truncated or of the wrong size, QNT1007 a tensor whose
    /// dims and type do not match its data, QNT1008 subgraphs nested too deep, QNT1009 an operator domain
    /// that would need a custom-op library.
    /// </exception>
    public static ModelProto Load(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        string full;
        try
        {
            full = Path.GetFullPath(path);
        }
        catch (Exception e) when (e is ArgumentException or NotSupportedException or PathTooLongException)
        {
            throw new QuantizeException(ErrorCodes.ModelNotFound, path, $"Model path '{path}' is not a valid path ({e.Message}); pass the path of an .onnx file.", e);
        }

        if (!File.Exists(full))
        {
            string why = Directory.Exists(full) ? "is a folder, not a file" : "does not exist";
            throw new QuantizeException(ErrorCodes.ModelNotFound, path,
                $"Model file '{path}' {why} (looked for '{full}'); pass the path of an existing .onnx file.");
        }

        ModelProto model;
        Common.RegularFile.Require(full, why => new QuantizeException(ErrorCodes.ModelNotFound, path, $"Model file '{path}' cannot be read: {why}"));
        try
        {
            using var stream = new FileStream(full, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan);
            if (stream.Length > int.MaxValue)
            {
                throw new QuantizeException(ErrorCodes.ModelCorrupt, path,
                    $"'{path}' is not a valid ONNX model (it is {stream.Length} bytes, over protobuf's 2 GB limit); re-export it with its weights in an external data file.");
            }

            model = ParseCore(stream, path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new QuantizeException(ErrorCodes.ModelNotFound, path, $"Model file '{path}' cannot be read ({e.Message}); check that it exists and is readable.", e);
        }

        var scope = ExternalDataScope.Current;
        // In a quantization run at most the scope's budget of tensor bytes stays in memory: what the graph declares for
        // its external tensors (checked against the files when resolved) and what its initializers hold inline.
        scope?.FitInMemoryBudget(ModelTensors.All(model).Select(t =>
            ExternalDataScope.IsExternal(t.Tensor) ? (TensorElementInfo.TryGetByteSize(t.Tensor, out var bytes) ? bytes : 0)
            : t.Site == TensorSite.Initializer ? t.Tensor.RawData.Length : 0));
        ExternalDataResolver.Resolve(model, full);
        if (scope is not null)
        {
            SpillLargeInitializers(model, scope);
        }

        ModelChecker.Check(model, path);
        return model;
    }

    /// <summary>
    /// Moves the inline initializers of a single-file model that reach the scope's deferral size to its spill file, so a
    /// big model is parsed once and then held on disk like one with external data (a 768 MiB model of 16 MiB weights
    /// peaked at 10 GB of RSS held in memory: every ORT session copies the weights it is given inline).
    /// </summary>
    private static void SpillLargeInitializers(ModelProto model, ExternalDataScope scope)
    {
        foreach (var (tensor, site) in ModelTensors.All(model))
        {
            if (site == TensorSite.Initializer && !ExternalDataScope.IsExternal(tensor) && tensor.RawData.Length >= scope.DeferMinBytes)
            {
                scope.Spill(tensor, tensor.RawData.Span, ofSource: true);
            }
        }
    }

    /// <summary>
    /// Parses a serialized model. External data is left unresolved (there is no folder to resolve it
    /// against); use <see cref="Load"/> for files.
    /// </summary>
    /// <param name="bytes">The serialized ModelProto.</param>
    /// <param name="nameForErrors">What to call the model in error messages (usually its file name).</param>
    /// <exception cref="QuantizeException">QNT1002 when the bytes are not an ONNX model.</exception>
    public static ModelProto Parse(byte[] bytes, string nameForErrors)
    {
        ArgumentNullException.ThrowIfNull(bytes);
        ArgumentNullException.ThrowIfNull(nameForErrors);
        using var stream = new MemoryStream(bytes, writable: false);
        return ParseCore(stream, nameForErrors);
    }

    private static ModelProto ParseCore(Stream stream, string name)
    {
        ModelProto model;
        try
        {
            var input = CodedInputStream.CreateWithLimits(stream, int.MaxValue, RecursionLimit);
            model = ModelProto.Parser.ParseFrom(input);
        }
        catch (InvalidProtocolBufferException e)
        {
            throw new QuantizeException(ErrorCodes.ModelCorrupt, name, $"'{name}' is not a valid ONNX model ({e.Message.TrimEnd('.')}); re-export it.", e);
        }

        if (model.Graph is null)
        {
            throw new QuantizeException(ErrorCodes.ModelCorrupt, name,
                $"'{name}' is not a valid ONNX model (it has no graph; the file may be empty, truncated or of another format); re-export it.");
        }

        return model;
    }
}
