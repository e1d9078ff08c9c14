using System.Security.Cryptography;

namespace Quantize.MSBuild.Tests.Infrastructure;

/// <summary>
/// A throw-away SDK project in a temp folder that references the packed Quantize.MSBuild exactly as a
/// user would (its own nuget.config: the test feed is its only source; the fixture's NuGet cache).
/// Every build writes a numbered binlog next to it; the folder is kept when a test fails.
/// </summary>
internal sealed class TestProject
{
    private readonly PackageFixture _fixture;
    private int _logCount;

    private TestProject(PackageFixture fixture, string directory, string name)
    {
        _fixture = fixture;
        Directory = directory;
        Name = name;
    }

    public string Directory { get; }
    public string Name { get; }
    public string ProjectFile => Path.Combine(Directory, Name + ".csproj");
    public string BinDir => Path.Combine(Directory, "bin", "Debug", "net10.0");
    public string PublishDir => Path.Combine(BinDir, "publish");
    public string QuantizeDir => Path.Combine(Directory, "obj", "Debug", "net10.0", "quantize");

    /// <summary>A folder for one test's projects, under the fixture's temp root.</summary>
    public static string NewScenarioFolder(PackageFixture fixture, string scenario)
    {
        string dir = Path.Combine(fixture.Root, scenario);
        System.IO.Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "nuget.config"), $"""
            <?xml version="1.0" encoding="utf-8"?>
            <configuration>
              <config><add key="globalPackagesFolder" value="{fixture.NuGetCache}" /></config>
              <packageSources>
                <clear />
                <add key="test-feed" value="{fixture.Feed}" />
              </packageSources>
            </configuration>
            """);
        return dir;
    }

    /// <summary>Runs one test's scenario in its own folder; the folder is deleted when it passes and kept (and named) when it fails.</summary>
    public static void RunScenario(PackageFixture fixture, string name, Action<string> body)
    {
        string folder = NewScenarioFolder(fixture, name);
        try
        {
            body(folder);
        }
        catch (Exception e)
        {
            throw new Xunit.Sdk.XunitException($"Scenario '{name}' failed; projects and binlogs kept in {folder}\n{e}");
        }

        System.IO.Directory.Delete(folder, recursive: true);
    }

    /// <summary>Creates <c>folder/name/name.csproj</c>; <paramref name="body"/> is inserted into the Project element.</summary>
    public static TestProject Create(PackageFixture fixture, string folder, string name, string body)
    {
        var project = new TestProject(fixture, Path.Combine(folder, name), name);
        System.IO.Directory.CreateDirectory(project.Directory);
        project.WriteProject(body);
        File.WriteAllText(Path.Combine(project.Directory, "Class1.cs"), "namespace " + name + "; public static class Class1 { }\n");
        return project;
    }

    /// <summary>A project already in <paramref name="directory"/> as <c>name.csproj</c> (a copied sample), built like the others.</summary>
    public static TestProject Existing(PackageFixture fixture, string directory, string name) => new(fixture, directory, name);

    public void WriteProject(string body) => File.WriteAllText(ProjectFile, $"""
        <Project Sdk="Microsoft.NET.Sdk">
          <PropertyGroup>
            <TargetFramework>net10.0</TargetFramework>
            <ImplicitUsings>disable</ImplicitUsings>
            <GenerateDocumentationFile>false</GenerateDocumentationFile>
          </PropertyGroup>
          <ItemGroup>
            <PackageReference Include="Quantize.MSBuild" Version="{_fixture.Version}" PrivateAssets="all" />
          </ItemGroup>
        {body}
        </Project>
        """);

    /// <summary>Copies the sample's real model (and its first <paramref name="samples"/> calibration samples, by convention) into the project.</summary>
    public static void CopySampleModel(string modelPath, int samples)
    {
        System.IO.Directory.CreateDirectory(Path.GetDirectoryName(modelPath)!);
        File.Copy(Repo.SampleModel, modelPath, overwrite: true);
        string calibration = Path.ChangeExtension(modelPath, ".calibration");
        foreach (string sample in System.IO.Directory.GetDirectories(Repo.SampleCalibration).Order(StringComparer.Ordinal).Take(samples))
        {
            string target = Path.Combine(calibration, Path.GetFileName(sample));
            System.IO.Directory.CreateDirectory(target);
            foreach (string file in System.IO.Directory.GetFiles(sample))
            {
                File.Copy(file, Path.Combine(target, Path.GetFileName(file)), overwrite: true);
            }
        }
    }

    public BuildResult Build(params string[] args) => Run(ProjectFile, "build", args);
    // `dotnet publish` defaults to Release since .NET 8: stay on the configuration the builds used.
    public BuildResult Publish(params string[] args) => Run(ProjectFile, "publish", ["-c", "Debug", .. args]);
    public BuildResult Clean(params string[] args) => Run(ProjectFile, "clean", args);

    /// <summary>Runs `dotnet verb target -bl` (target: this project, or a solution beside it).</summary>
    public BuildResult Run(string target, string verb, params string[] args)
    {
        string binlog = Path.Combine(Directory, "logs", $"{++_logCount:00}-{verb}.binlog");
        DotNet.Result result = DotNet.Run(Directory, null, [verb, target, "-bl:" + binlog, "-nodeReuse:false", .. args]);
        return new BuildResult(binlog, result);
    }

    /// <summary>Starts `dotnet build -bl` of this project without waiting (the caller may kill it); a build that ran to its end has a binlog.</summary>
    public (DotNet.Running Build, string Binlog) StartBuild(params string[] args)
    {
        string binlog = Path.Combine(Directory, "logs", $"{++_logCount:00}-build.binlog");
        return (DotNet.Start(Directory, null, ["build", ProjectFile, "-bl:" + binlog, "-nodeReuse:false", .. args]), binlog);
    }

    public static string Sha256(string path) => Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(path)));

    /// <summary>Makes a file newer than anything built so far (file systems with coarse timestamps included).</summary>
    public static void Touch(string path) => File.SetLastWriteTimeUtc(path, DateTime.UtcNow.AddSeconds(2));
}
