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
