using System.IO.Compression;
using System.Security.Cryptography;
using Quantize.MSBuild.Tests.Infrastructure;

namespace Quantize.MSBuild.Tests;

/// <summary>
/// The packaged worker refuses, before calibrating, every path it would write that is an input, another output, a folder,
/// or in a folder it cannot create or write — and takes every legal file name (issue 15, items 1, 3, 4, 5 and 7).
/// </summary>
[Collection(PackageCollection.Name)]
public sealed class WorkerOutputPathTests(PackageFixture fixture) : IDisposable
{
    private readonly DirectoryInfo _folder = Directory.CreateTempSubdirectory("quantize-worker-paths-");

    public void Dispose() => _folder.Delete(recursive: true);

    public static TheoryData<string, string[], string> Refused => new()
    {
        // Item 1: a report over the source model replaced it with JSON; over the output, it replaced the model.
        { "report over the source model", ["--output", "out/m.onnx", "--report", "model/waifu2x.onnx"], "is an input of this run" },
        { "JSON report over the output", ["--output", "out/m.onnx", "--report", "out/m.onnx"], "would both be written to" },
        { "HTML report over the output", ["--output", "out/m.onnx", "--html-report", "out/m.onnx"], "would both be written to" },
        { "report inside the calibration folder", ["--output", "out/m.onnx", "--report", "cal/report.json"], "inside the sample folder" },
        // Items 3 and 7: an output folder that cannot be created was an internal error after calibration; a trailing '/' left a folder.
        { "parent is a file", ["--output", "model/waifu2x.onnx/m.onnx"], "is a file" },
        { "output is a folder", ["--output", "out/"], "is a folder" },
        { "folder cannot be created", ["--output", "/proc/quantize-test/m.onnx"], "Cannot write the output model" },
        { "report folder cannot be created", ["--output", "out/m.onnx", "--report", "/proc/quantize-test/r.json"], "Cannot write the JSON report" },
    };

    [Theory]
    [MemberData(nameof(Refused))]
    public void A_path_it_must_not_write_is_QNT1006_before_calibration_and_the_inputs_are_untouched(string why, string[] paths, string message)
    {
        var (worker, modelHash) = Prepare();

        var run = Worker(worker, paths);

        Assert.True(run.ExitCode == 1, $"{why}: {run.Output}");
        Assert.Contains("error QNT1006", run.Output);
        Assert.Contains(message, run.Output);
        Assert.DoesNotContain("Calibrating", run.Output); // refused up front, not after the long part
        Assert.Equal(modelHash, Sha256(Path.Combine(_folder.FullName, "model", "waifu2x.onnx")));
        Assert.False(File.Exists(Path.Combine(_folder.FullName, "out", "m.onnx")));
        Assert.False(Directory.Exists(Path.Combine(_folder.FullName, "out", "m.onnx")));
        Assert.False(File.Exists(Path.Combine(_folder.FullName, "cal", "report.json")));
    }

    [Fact]
    public void Latency_runs_below_one_are_refused()
    {
        var (worker, _) = Prepare();

        var run = Worker(worker, ["--output", "out/m.onnx"], latencyRuns: "0");

        Assert.Equal(1, run.ExitCode);
        Assert.Contains("error QNT1201", run.Output);
        Assert.Contains("--latency-runs", run.Output);
    }

    [Fact]
    public void A_legal_file_name_of_250_characters_is_written()
    {
        var (worker, _) = Prepare();
        var name = new string('m', 245) + ".onnx"; // its temporary name used to pass 255 bytes (QNT1006)

        var run = Worker(worker, ["--output", Path.Combine("out", name), "--report", Path.Combine("out", new string('r', 250) + ".json")]);

        Assert.True(run.ExitCode == 0, run.Output);
        Assert.True(File.Exists(Path.Combine(_folder.FullName, "out", name)));
        Assert.Empty(Directory.GetFiles(Path.Combine(_folder.FullName, "out"), ".*")); // no temporary file left
    }

    private (string Worker, string ModelHash) Prepare()
    {
        var package = Path.Combine(_folder.FullName, "package");
        if (!Directory.Exists(package))
        {
            ZipFile.ExtractToDirectory(fixture.PackagePath, package);
            Directory.CreateDirectory(Path.Combine(_folder.FullName, "model"));
            File.Copy(Repo.SampleModel, Path.Combine(_folder.FullName, "model", "waifu2x.onnx"));
            foreach (var sample in Directory.GetDirectories(Repo.SampleCalibration).Order(StringComparer.Ordinal).Take(2))
            {
                var target = Path.Combine(_folder.FullName, "cal", Path.GetFileName(sample));
                Directory.CreateDirectory(target);
                foreach (var file in Directory.GetFiles(sample))
                {
                    File.Copy(file, Path.Combine(target, Path.GetFileName(file)));
                }
            }
        }

        var worker = Directory.GetFiles(package, "Quantize.Cli.dll", SearchOption.AllDirectories).Single();
        return (worker, Sha256(Path.Combine(_folder.FullName, "model", "waifu2x.onnx")));
    }

    private DotNet.Result Worker(string worker, string[] paths, string latencyRuns = "1") =>
        DotNet.Run(_folder.FullName, null, [worker, "quantize", Path.Combine("model", "waifu2x.onnx"), "--calibration", "cal", "--latency-runs", latencyRuns, .. paths]);

    private static string Sha256(string path) => Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(path)));
}
