using System.Reflection;

namespace Quantize.MSBuild.Tests.Infrastructure;

/// <summary>Paths in the repository the tests run from (a fresh clone needs nothing else).</summary>
internal static class Repo
{
    public static string Root { get; } = FindRoot();

    /// <summary>The sample's real model (and its PNG calibration photos): tests reuse them instead of keeping copies.</summary>
    public static string SampleModels => Path.Combine(Root, "samples", "SuperResolution", "Models");
    public static string SampleModel => Path.Combine(SampleModels, "waifu2x.onnx");

    /// <summary>The sample's calibration photos as .npy tensors (samples/SuperResolution calibrates from PNGs; these tests from tensors).</summary>
    public static string SampleCalibration => Path.Combine(Root, "tests", "Quantize.MSBuild.Tests", "Data", "waifu2x.calibration");

    /// <summary>Third-party models and samples the tests use (Data/NOTICE.md says where each comes from).</summary>
    public static string Data => Path.Combine(Root, "tests", "Quantize.MSBuild.Tests", "Data");

    /// <summary>The configuration this test assembly was built with; the package is packed from the same build.</summary>
    public static string Configuration { get; } =
        typeof(Repo).Assembly.GetCustomAttribute<AssemblyConfigurationAttribute>()?.Configuration ?? "Debug";

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Quantize.MSBuild.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("Quantize.MSBuild.sln not found above " + AppContext.BaseDirectory);
    }
}
