namespace Quantize.Onnx.Tests.Infrastructure;

/// <summary>The repository these tests were built in, found by walking up from the test binaries to Quantize.MSBuild.sln.</summary>
internal static class Repository
{
    private static readonly Lazy<string?> FoundRoot = new(FindRoot);

    /// <summary>The folder holding Quantize.MSBuild.sln, or null when the test binaries run outside the repository.</summary>
    public static string? RootOrNull => FoundRoot.Value;

    /// <summary>The folder holding Quantize.MSBuild.sln.</summary>
    public static string Root => FoundRoot.Value
        ?? throw new InvalidOperationException("The repository root (Quantize.MSBuild.sln) is not above " + AppContext.BaseDirectory);

    /// <summary>The SuperResolution sample's real model (waifu2x), its calibration photos and validation pairs.</summary>
    public static string SampleModels => Path.Combine(Root, "samples", "SuperResolution", "Models");

    private static string? FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Quantize.MSBuild.sln")))
            {
                return dir.FullName;
            }
        }

        return null;
    }
}
