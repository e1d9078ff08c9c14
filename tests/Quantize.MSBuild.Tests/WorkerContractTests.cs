using System.IO.Compression;
using System.Text.Json;
using System.Text.RegularExpressions;
using Quantize.Common;
using Quantize.MSBuild.Tests.Infrastructure;

namespace Quantize.MSBuild.Tests;

/// <summary>The worker shipped in the package understands every option and value the task can pass it.</summary>
[Collection(PackageCollection.Name)]
public sealed class WorkerContractTests(PackageFixture fixture)
{
    [Fact]
    public void Every_setting_with_a_worker_switch_is_an_option_of_the_packaged_worker()
    {
        var folder = Directory.CreateTempSubdirectory("quantize-worker-contract-");
        try
        {
            var help = DotNet.Run(folder.FullName, null, ExtractWorker(folder.FullName), WorkerProtocol.Command, "--help");

            Assert.Equal(0, help.ExitCode);
            // Option names as the help lists them ("  -o, --output <output>  ..."): "--tune" must not pass on "--tune-locked".
            var options = Regex.Matches(help.Output, @"^  (?:-\w, )?(?<name>--[\w-]+)", RegexOptions.Multiline).Select(m => m.Groups["name"].Value).ToHashSet();
            string[] derived = [WorkerSwitches.Output, WorkerSwitches.Calibration, WorkerSwitches.Validation, WorkerSwitches.Report, WorkerSwitches.HtmlReport];
            foreach (var option in SettingSpecs.All.Select(s => s.WorkerSwitch).OfType<string>().Concat(derived))
            {
                Assert.True(options.Contains(option), $"{option} is not an option of the packaged worker:\n{help.Output}");
            }
        }
        finally
        {
            folder.Delete(recursive: true);
        }
    }

    [Fact]
    public void Every_allowed_value_of_a_choice_setting_is_accepted_by_the_packaged_worker()
    {
        var folder = Directory.CreateTempSubdirectory("quantize-worker-values-");
        try
        {
            var worker = ExtractWorker(folder.FullName);
            // auto never reaches the worker: the task resolves it to static or dynamic.
            var choices = SettingSpecs.All
                .Where(s => s.WorkerSwitch is not null && s.Kind is SettingKind.Choice or SettingKind.Choices)
                .Select(s => (Switch: s.WorkerSwitch!, Values: s.Allowed.Where(v => !(s.Name == SettingSpecs.Mode && v == "auto")).ToArray()))
                .ToList();

            // Run i passes the i-th value of every choice; the model does not exist, so a run that gets that far read every value.
            for (int i = 0; i < choices.Max(c => c.Values.Length); i++)
            {
                string[] args = [WorkerProtocol.Command, Path.Combine(folder.FullName, "missing.onnx"), WorkerSwitches.Output, Path.Combine(folder.FullName, "out.onnx"),
                    .. choices.Where(c => i < c.Values.Length).SelectMany(c => new[] { c.Switch, c.Values[i] })];
                var run = DotNet.Run(folder.FullName, null, [worker, .. args]);

                Assert.DoesNotContain("QNT1201", run.Output); // the worker's code for an option value it does not know
                // Every value was read: the run ends at the missing model (QNT1001), or earlier at a combination of values the
                // engine refuses before it reads any model (run 1 pairs dynamic mode with int8 activations: QNT1501).
                Assert.Matches("error (QNT1001|QNT1501):", run.Output);
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
            var worker = ExtractWorker(folder.FullName);
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

    /// <summary>Unpacks the package into <paramref name="folder"/>; returns the worker in it.</summary>
    private string ExtractWorker(string folder)
    {
        ZipFile.ExtractToDirectory(fixture.PackagePath, Path.Combine(folder, "package"));
        return Directory.GetFiles(folder, "Quantize.Cli.dll", SearchOption.AllDirectories).Single();
    }
}
