using System.IO.Compression;
using System.Text.Json;
using Quantize.MSBuild.Tests.Infrastructure;

namespace Quantize.MSBuild.Tests;

/// <summary>The worker shipped in the package understands every option the task can pass it.</summary>
[Collection(PackageCollection.Name)]
public sealed class WorkerContractTests(PackageFixture fixture)
{
    [Fact]
    public void Every_setting_with_a_worker_option_is_an_option_of_the_packaged_worker()
    {
        var folder = Directory.CreateTempSubdirectory("quantize-worker-contract-");
        try
        {
            ZipFile.ExtractToDirectory(fixture.PackagePath, folder.FullName);
            var worker = Directory.GetFiles(folder.FullName, "Quantize.Cli.dll", SearchOption.AllDirectories).Single();

            var help = DotNet.Run(folder.FullName, null, worker, "quantize", "--help");

            Assert.Equal(0, help.ExitCode);
            // The settings' options, and those the task derives from folders and the metric/drop pair.
            string[] derived = ["--calibration", "--validation", "--report", "--html-report", "--check"];
            foreach (var option in QuantizeSettings.All.Select(s => s.WorkerOption).OfType<string>().Concat(derived))
            {
                Assert.Contains(option, help.Output);
            }
        }
        finally
        {
            folder.Delete(recursive: true);
        }
    }

    [Fact]
    public void Packaged_worker_quantizes_with_a_histogram_calibration_method_and_reduce_range()
    {
        var folder = Directory.CreateTempSubdirectory("quantize-worker-methods-");
        try
        {
            ZipFile.ExtractToDirectory(fixture.PackagePath, Path.Combine(folder.FullName, "package"));
            var worker = Directory.GetFiles(folder.FullName, "Quantize.Cli.dll", SearchOption.AllDirectories).Single();
            var output = Path.Combine(folder.FullName, "out", "waifu2x.int8.onnx");
            var report = Path.Combine(folder.FullName, "out", "report.json");

            var run = DotNet.Run(folder.FullName, null, worker, "quantize", Repo.SampleModel, "--calibration", Repo.SampleCalibration, "--output", output,
                "--report", report, "--calibration-method", "percentile", "--calibration-percentile", "99.99", "--reduce-range", "true",
                "--max-calibration-samples", "4", "--latency-runs", "3");

            Assert.True(run.ExitCode == 0, run.Output);
            Assert.Contains("Quantize summary: waifu2x.onnx", run.Output);
            Assert.True(File.Exists(output));
            using var json = JsonDocument.Parse(File.ReadAllText(report));
            var settings = json.RootElement.GetProperty("settings");
            Assert.Equal("percentile", settings.GetProperty("calibration-method").GetString());
            Assert.Equal("99.99", settings.GetProperty("calibration-percentile").GetString());
            Assert.Equal("true", settings.GetProperty("reduce-range").GetString());
            Assert.Equal("quantized", json.RootElement.GetProperty("output").GetString());
            Assert.True(json.RootElement.GetProperty("fusion").GetProperty("integerKernels").GetProperty("QLinearConv").GetInt32() == 7, run.Output);
        }
        finally
        {
            folder.Delete(recursive: true);
        }
    }
}
