using System.Diagnostics;
using Microsoft.ML.OnnxRuntime;
using Quantize.MSBuild.Tests.Infrastructure;

namespace Quantize.MSBuild.Tests;

/// <summary>
/// Killed builds, killed workers and two builds of one project at once, with the real package, worker
/// and model. After any of them obj/ and bin/ hold the previous complete model or none, never a
/// half-written one, and the next build recovers by itself.
/// </summary>
[Collection(PackageCollection.Name)]
public sealed class FaultTests(PackageFixture fixture)
{
    private const string Body = """
          <PropertyGroup>
            <QuantizeMaxCalibrationSamples>8</QuantizeMaxCalibrationSamples>
            <!-- Deterministic outputs: the keep-FP32 decision depends on timing. -->
            <QuantizeKeepFloatIfSlower>false</QuantizeKeepFloatIfSlower>
          </PropertyGroup>
          <ItemGroup>
            <None Update="Models/waifu2x.onnx" CopyToOutputDirectory="PreserveNewest" />
          </ItemGroup>
        """;

    [LinuxFact]
    public void Killed_build_or_worker_leaves_the_previous_model_or_none_and_the_next_build_recovers()
    {
        Scenario("killed", folder =>
        {
            var app = TestProject.Create(fixture, folder, "App", Body);
            TestProject.CopySampleModel(Path.Combine(app.Directory, "Models", "waifu2x.onnx"), samples: 8);
            string quantized = Path.Combine(app.QuantizeDir, "Models", "waifu2x.onnx");
            string shipped = Path.Combine(app.BinDir, "Models", "waifu2x.onnx");
            string calibrationFile = Path.Combine(app.Directory, "Models", "waifu2x.calibration", "003", "input.npy");
            var first = app.Build();
            Assert.True(first.Succeeded, first.ToString());
            string complete = TestProject.Sha256(quantized);

            // 1. The whole build (every process it started) is killed while the worker quantizes.
            TestProject.Touch(calibrationFile);
            var (build, _) = app.StartBuild();
            using (build)
            {
                WaitForWorker(app.Directory, build);
                Thread.Sleep(300);
                build.Process.Kill(entireProcessTree: true);
                build.Process.WaitForExit();
            }

            WaitUntilNoWorker(app.Directory);
            Assert.Equal(complete, TestProject.Sha256(quantized));
            Assert.Equal(complete, TestProject.Sha256(shipped));
            AssertNoPartialModels(app);

            // The changed input is newer than the kept output: the next build quantizes again.
            var recovered = app.Build();
            Assert.True(recovered.Succeeded, recovered.ToString());
            Assert.Single(recovered.CoreTargetsRun);
            AssertLoads(shipped);
            Assert.Equal(TestProject.Sha256(quantized), TestProject.Sha256(shipped));

            // 2. Only the worker is killed: the build fails with QNT3204 and leaves no model in obj/.
            TestProject.Touch(calibrationFile);
            var (second, binlog) = app.StartBuild();
            DotNet.Result process;
            using (second)
            {
                var watch = Stopwatch.StartNew();
                int worker = WaitForWorker(app.Directory, second);
                Thread.Sleep(300);
                using (var victim = Process.GetProcessById(worker))
                {
                    victim.Kill();
                }

                Assert.True(second.Process.WaitForExit(TimeSpan.FromMinutes(3)), second.Output);
                process = new DotNet.Result(second.Process.ExitCode, second.Output, watch.Elapsed);
            }

            var killed = new BuildResult(binlog, process);
            Assert.False(killed.Succeeded, killed.ToString());
            Assert.Contains(killed.Errors, e => e.Code == "QNT3204" && e.File.EndsWith("waifu2x.onnx", StringComparison.Ordinal));
            Assert.False(File.Exists(quantized), quantized);
            AssertNoPartialModels(app);

            var again = app.Build();
            Assert.True(again.Succeeded, again.ToString());
            Assert.Single(again.CoreTargetsRun);
            AssertLoads(shipped);
        });
    }

    [LinuxFact]
    public void Killing_only_the_build_process_ends_its_worker_at_once_and_the_next_build_recovers()
    {
        Scenario("orphan", folder =>
        {
            // Entropy calibration keeps the worker busy for several seconds, well past the bound below.
            var app = TestProject.Create(fixture, folder, "App", Body.Replace(
                "<QuantizeMaxCalibrationSamples>", "<QuantizeCalibrationMethod>entropy</QuantizeCalibrationMethod><QuantizeMaxCalibrationSamples>", StringComparison.Ordinal));
            TestProject.CopySampleModel(Path.Combine(app.Directory, "Models", "waifu2x.onnx"), samples: 8);
            string shipped = Path.Combine(app.BinDir, "Models", "waifu2x.onnx");

            // The build process alone is killed (SIGKILL: no chance to stop its tool) while the worker quantizes. The
            // worker used to calibrate on, orphaned, to the end; it now sees its parent gone and ends within a second.
            var (build, _) = app.StartBuild();
            using (build)
            {
                WaitForWorker(app.Directory, build);
                build.Process.Kill(entireProcessTree: false);
                build.Process.WaitForExit();
            }

            var watch = Stopwatch.StartNew();
            WaitUntilNoWorker(app.Directory);
            Assert.True(watch.Elapsed < TimeSpan.FromSeconds(2), $"the orphaned worker ran {watch.Elapsed.TotalSeconds:F1} s after its build was killed");
            AssertNoPartialModels(app);

            var next = app.Build();
            Assert.True(next.Succeeded, next.ToString());
            AssertLoads(shipped);
        });
    }

    /// <summary>
    /// Fault injection across the whole worker run: kills spread evenly from the worker's start to its end (calibration,
    /// validation, the write), alternately the whole build tree and the build process alone. After each, every model in
    /// obj/ and bin/ is complete with the reference bytes (the output is deterministic), no worker runs, and the next build
    /// writes the reference bytes. QUANTIZE_FAULT_POINTS sets the number of kill points (CI: 4; a campaign: 20).
    /// </summary>
    [LinuxFact]
    public void Builds_killed_at_points_across_the_worker_run_leave_complete_models_no_worker_and_recover()
    {
        int points = int.TryParse(Environment.GetEnvironmentVariable("QUANTIZE_FAULT_POINTS"), out int n) && n > 0 ? n : 4;
        Scenario("kill-points", folder =>
        {
            var app = TestProject.Create(fixture, folder, "App", Body);
            TestProject.CopySampleModel(Path.Combine(app.Directory, "Models", "waifu2x.onnx"), samples: 8);
            string quantized = Path.Combine(app.QuantizeDir, "Models", "waifu2x.onnx");
            string shipped = Path.Combine(app.BinDir, "Models", "waifu2x.onnx");
            string calibrationFile = Path.Combine(app.Directory, "Models", "waifu2x.calibration", "001", "input.npy");
            var first = app.Build();
            Assert.True(first.Succeeded, first.ToString());
            string reference = TestProject.Sha256(quantized);

            // How long the worker runs here, to spread the kill points over it.
            TestProject.Touch(calibrationFile);
            TimeSpan workerRun;
            var (timed, _) = app.StartBuild();
            using (timed)
            {
                WaitForWorker(app.Directory, timed);
                var watch = Stopwatch.StartNew();
                WaitUntilNoWorker(app.Directory);
                workerRun = watch.Elapsed;
                timed.Process.WaitForExit();
            }

            for (int point = 1; point <= points; point++)
            {
                bool wholeTree = point % 2 == 1;
                var delay = workerRun * point / (points + 1);
                TestProject.Touch(calibrationFile);
                var (build, _) = app.StartBuild();
                using (build)
                {
                    WaitForWorker(app.Directory, build);
                    Thread.Sleep(delay);
                    build.Process.Kill(entireProcessTree: wholeTree);
                    build.Process.WaitForExit();
                }

                string at = $"kill point {point}/{points} ({delay.TotalSeconds:F1} s of {workerRun.TotalSeconds:F1} s, {(wholeTree ? "whole tree" : "build process only")})";
                var gone = Stopwatch.StartNew();
                WaitUntilNoWorker(app.Directory);
                Assert.True(gone.Elapsed < TimeSpan.FromSeconds(3), $"{at}: a worker ran on {gone.Elapsed.TotalSeconds:F1} s");
                AssertNoPartialModels(app);
                foreach (string model in new[] { quantized, shipped }.Where(File.Exists))
                {
                    Assert.True(TestProject.Sha256(model) == reference, $"{at}: {model} is not the reference model");
                }

                var next = app.Build();
                Assert.True(next.Succeeded, $"{at}: {next}");
                Assert.True(TestProject.Sha256(shipped) == reference, $"{at}: the next build shipped other bytes");
            }
        });
    }

    [Fact]
    public void Two_builds_of_one_project_at_once_both_succeed_with_the_same_bytes_as_one_build()
    {
        Scenario("twice", folder =>
        {
            var app = TestProject.Create(fixture, folder, "App", Body);
            TestProject.CopySampleModel(Path.Combine(app.Directory, "Models", "waifu2x.onnx"), samples: 4);
            string quantized = Path.Combine(app.QuantizeDir, "Models", "waifu2x.onnx");
            var first = app.Build();
            Assert.True(first.Succeeded, first.ToString());
            string expected = TestProject.Sha256(quantized);

            // Both builds find the model out of date and run the worker on the same output at the same time.
            TestProject.Touch(Path.Combine(app.Directory, "Models", "waifu2x.calibration", "000", "input.npy"));
            var (a, logA) = app.StartBuild("--no-restore");
            var (b, logB) = app.StartBuild("--no-restore");
            var results = new List<BuildResult>();
            foreach (var (build, binlog) in new[] { (a, logA), (b, logB) })
            {
                using (build)
                {
                    var watch = Stopwatch.StartNew();
                    Assert.True(build.Process.WaitForExit(TimeSpan.FromMinutes(5)), build.Output);
                    results.Add(new BuildResult(binlog, new DotNet.Result(build.Process.ExitCode, build.Output, watch.Elapsed)));
                }
            }

            Assert.All(results, r => Assert.True(r.Succeeded, r.ToString()));
            Assert.Equal(2, results.Sum(r => r.WorkerRuns));
            Assert.Equal(expected, TestProject.Sha256(quantized));
            Assert.Equal(expected, TestProject.Sha256(Path.Combine(app.BinDir, "Models", "waifu2x.onnx")));
            AssertNoPartialModels(app);
        });
    }

    /// <summary>The pid of this project's worker (dotnet Quantize.Cli.dll quantize @obj/.../waifu2x.onnx.rsp), once it runs.</summary>
    private static int WaitForWorker(string projectDirectory, DotNet.Running build)
    {
        var watch = Stopwatch.StartNew();
        while (watch.Elapsed < TimeSpan.FromMinutes(3))
        {
            if (Workers(projectDirectory).FirstOrDefault() is int pid and > 0)
            {
                return pid;
            }

            Assert.False(build.Process.HasExited, "the build ended before its worker started:\n" + build.Output);
            Thread.Sleep(50);
        }

        throw new TimeoutException("no worker started:\n" + build.Output);
    }

    private static void WaitUntilNoWorker(string projectDirectory)
    {
        var watch = Stopwatch.StartNew();
        while (Workers(projectDirectory).Any())
        {
            Assert.True(watch.Elapsed < TimeSpan.FromSeconds(30), "the worker outlived its killed build");
            Thread.Sleep(50);
        }
    }

    private static IEnumerable<int> Workers(string projectDirectory)
    {
        foreach (string dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out int pid))
            {
                continue;
            }

            string commandLine;
            try
            {
                commandLine = File.ReadAllText(Path.Combine(dir, "cmdline")).Replace('\0', ' ');
            }
            catch (IOException)
            {
                continue; // the process ended meanwhile
            }

            if (commandLine.Contains("Quantize.Cli.dll", StringComparison.Ordinal) && commandLine.Contains(projectDirectory, StringComparison.Ordinal))
            {
                yield return pid;
            }
        }
    }

    /// <summary>Every .onnx file in obj/ and bin/ is a complete model ONNX Runtime loads (hidden temp files of a killed writer aside).</summary>
    private static void AssertNoPartialModels(TestProject app)
    {
        foreach (string root in new[] { Path.Combine(app.Directory, "obj"), Path.Combine(app.Directory, "bin") })
        {
            if (!Directory.Exists(root))
            {
                continue;
            }

            foreach (string model in Directory.EnumerateFiles(root, "*.onnx", SearchOption.AllDirectories))
            {
                AssertLoads(model);
            }
        }
    }

    private static void AssertLoads(string model)
    {
        using var session = new InferenceSession(model);
        Assert.NotEmpty(session.OutputMetadata);
    }

    private void Scenario(string name, Action<string> body) => TestProject.RunScenario(fixture, name, body);
}
