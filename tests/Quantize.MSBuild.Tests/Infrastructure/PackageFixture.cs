namespace Quantize.MSBuild.Tests.Infrastructure;

/// <summary>
/// Packs the solution (Quantize.MSBuild and the onnx-quantize tool, one `dotnet pack` as in build/build-sample.sh)
/// once per test run into a temporary feed, with a unique pre-release version so
/// no NuGet cache can hand out an older build of the same version; all end-to-end tests share the feed
/// and one NuGet cache (the test projects need nothing else: the feed is their only source).
/// `--no-build`: `dotnet test` has just built the package's projects (the test project references them).
/// </summary>
public sealed class PackageFixture : IDisposable
{
    public PackageFixture()
    {
        Root = Path.Combine(Path.GetTempPath(), "quantize-msbuild-tests", DateTime.UtcNow.ToString("yyyyMMdd-HHmmss") + "-" + Guid.NewGuid().ToString("N")[..6]);
        Feed = Path.Combine(Root, "feed");
        NuGetCache = Path.Combine(Root, "nuget-packages");
        Directory.CreateDirectory(Feed);
        Version = "0.1.0-test." + DateTime.UtcNow.ToString("yyyyMMddHHmmss");

        // Keep test projects from inheriting anything from above the temp folder.
        File.WriteAllText(Path.Combine(Root, "Directory.Build.props"), "<Project />");
        File.WriteAllText(Path.Combine(Root, "Directory.Build.targets"), "<Project />");
        File.WriteAllText(Path.Combine(Root, "Directory.Packages.props"), "<Project />");

        string solution = Path.Combine(Repo.Root, "Quantize.MSBuild.sln");
        DotNet.Result pack = DotNet.Run(Repo.Root, null, "pack", solution, "--no-build", "-c", Repo.Configuration,
            "-o", Feed, "-p:PackageVersion=" + Version, "-nodeReuse:false");
        if (pack.ExitCode != 0)
        {
            throw new InvalidOperationException("dotnet pack failed:\n" + pack.Output);
        }

        PackagePath = Path.Combine(Feed, $"Quantize.MSBuild.{Version}.nupkg");
    }

    public string Root { get; }
    public string Feed { get; }
    public string NuGetCache { get; }
    public string Version { get; }
    public string PackagePath { get; }

    public void Dispose()
    {
        // Test projects of failed tests are kept (with their binlogs); the rest is removed by the tests.
        try
        {
            Directory.Delete(Feed, recursive: true);
            Directory.Delete(NuGetCache, recursive: true);
            if (Directory.GetDirectories(Root).Length == 0)
            {
                Directory.Delete(Root, recursive: true);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
    }
}

[CollectionDefinition(Name)]
public sealed class PackageCollection : ICollectionFixture<PackageFixture>
{
    public const string Name = "Packed Quantize.MSBuild";
}
