namespace Quantize.MSBuild.Tests.Infrastructure;

/// <summary>Tests whose fake worker is a /bin/sh script.</summary>
public sealed class UnixFactAttribute : FactAttribute
{
    public UnixFactAttribute()
    {
        if (OperatingSystem.IsWindows())
        {
            Skip = "The fake workers are /bin/sh scripts.";
        }
    }
}

/// <inheritdoc cref="UnixFactAttribute"/>
public sealed class UnixTheoryAttribute : TheoryAttribute
{
    public UnixTheoryAttribute()
    {
        if (OperatingSystem.IsWindows())
        {
            Skip = "The fake workers are /bin/sh scripts.";
        }
    }
}

/// <summary>Tests that make named pipes (FIFOs), which the special-file check knows on Linux only.</summary>
public sealed class FifoFactAttribute : FactAttribute
{
    public FifoFactAttribute()
    {
        if (!OperatingSystem.IsLinux() || !File.Exists("/usr/bin/mkfifo"))
        {
            Skip = "needs Linux and /usr/bin/mkfifo";
        }
    }
}

/// <summary>Tests that find processes through /proc.</summary>
public sealed class LinuxFactAttribute : FactAttribute
{
    public LinuxFactAttribute()
    {
        if (!OperatingSystem.IsLinux())
        {
            Skip = "finds processes through /proc (Linux only)";
        }
    }
}
