namespace Quantize.Onnx.Tests.Infrastructure;

/// <summary>A test that needs a Unix file system; skipped on Windows, with the reason given.</summary>
public sealed class UnixFactAttribute : FactAttribute
{
    public UnixFactAttribute(string why)
    {
        if (OperatingSystem.IsWindows())
        {
            Skip = "runs on Unix only: " + why;
        }
    }
}
