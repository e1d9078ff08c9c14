namespace Quantize.Onnx.Samples;

/// <summary>Reads a calibration tensor file by its extension: <c>.npy</c> (NumPy) or <c>.pb</c> (ONNX TensorProto).</summary>
public static class TensorFileReader
{
    /// <summary>True when the file name has an extension this reader understands (case-insensitive).</summary>
    public static bool IsTensorFile(string path) =>
        path.EndsWith(".npy", StringComparison.OrdinalIgnoreCase) || path.EndsWith(".pb", StringComparison.OrdinalIgnoreCase);

    public static TensorData Read(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (path.EndsWith(".npy", StringComparison.OrdinalIgnoreCase))
        {
            return NpyReader.Read(path);
        }

        if (path.EndsWith(".pb", StringComparison.OrdinalIgnoreCase))
        {
            return TensorProtoReader.Read(path);
        }

        throw new QuantizeException(ErrorCodes.CalibrationFileUnreadable, path,
            $"Calibration file '{path}' cannot be read: only NumPy .npy and ONNX TensorProto .pb files are supported.");
    }
}
