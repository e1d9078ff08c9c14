namespace Quantize.Onnx;

/// <summary>
/// A failure the user can act on: a stable code (see <see cref="ErrorCodes"/>), the file at fault
/// and a message that says what to do. Anything else escaping the engine is a bug.
/// </summary>
public sealed class QuantizeException : Exception
{
    public QuantizeException(string code, string? file, string message, Exception? inner = null)
        : base(message, inner)
    {
        Code = code;
        File = file;
    }

    public string Code { get; }

    /// <summary>The file the problem is about (model, sample, ...), or null when none applies.</summary>
    public string? File { get; }

    /// <summary>What was measured, when the failure is a verdict on the quantized model (QNT1401, QNT1402): the reports are still written.</summary>
    public QuantizeResult? Result { get; init; }
}
