using System.IO.Compression;
using System.Text.Json;
using Quantize.MSBuild.Tests.Infrastructure;

namespace Quantize.MSBuild.Tests;

/// <summary>
/// The command line picks the mode as a build does when none is named (issue 17, item 3): static with calibration
/// data, else dynamic; a model dynamic mode cannot help is written unchanged with QNT2502, not refused.
/// </summary>
[Collection(PackageCollection.Name)]
public sealed class CliDefaultModeTests(PackageFixture fixture) : IDisposable
{
    private static readonly string TextDirectionModel = Path.Combine(Repo.Root, "samples", "TextDirection", "Models", "ppocr_cls.onnx");

    private readonly DirectoryInfo _folder = Directory.CreateTempSubdirectory("quantize-cli-mode-");

    public void Dispose() => _folder.Delete(recursive: true);

    [Fact]
    public void Without_calibration_data_a_model_with_a_MatMul_is_quantized_dynamically()
    {
        var run = Worker(TextDirectionModel);

        Assert.True(run.ExitCode == 0, run.Output);
        Assert.Equal("dynamic", ReportedMode());
        Assert.DoesNotContain("QNT1502", run.Output);
    }

    [Fact]
    public void With_calibration_data_the_default_is_static()
    {
        var run = Worker(Repo.SampleModel, "--calibration", Repo.SampleCalibration, "--max-calibration-samples", "2");

        Assert.True(run.ExitCode == 0, run.Output);
        Assert.Equal("static", ReportedMode());
    }

    [Fact]
    public void Without_calibration_data_a_conv_net_is_written_unchanged_with_QNT2502_saying_to_give_samples()
    {
        var run = Worker(Repo.SampleModel);

        Assert.True(run.ExitCode == 0, run.Output);
        Assert.Contains("warning QNT2502", run.Output);
        Assert.Contains("give calibration samples", run.Output);
        Assert.True(File.Exists(Path.Combine(_folder.FullName, "out.onnx")));
    }

    [Fact]
    public void Naming_static_without_calibration_data_is_still_QNT1502()
    {
        var run = Worker(Repo.SampleModel, "--mode", "Static");

        Assert.Equal(1, run.ExitCode);
        Assert.Contains("error QNT1502", run.Output);
    }

    private DotNet.Result Worker(string model, params string[] options)
    {
        var package = Path.Combine(_folder.FullName, "package");
        ZipFile.ExtractToDirectory(fixture.PackagePath, package);
        var worker = Directory.GetFiles(package, "Quantize.Cli.dll", SearchOption.AllDirectories).Single();
        return DotNet.Run(_folder.FullName, null, [worker, "quantize", model, "--output", "out.onnx", "--report", "report.json", "--latency-runs", "1", .. options]);
    }

    private string? ReportedMode()
    {
        using var report = JsonDocument.Parse(File.ReadAllText(Path.Combine(_folder.FullName, "report.json")));
        return report.RootElement.GetProperty("settings").GetProperty("mode").GetString();
    }
}
