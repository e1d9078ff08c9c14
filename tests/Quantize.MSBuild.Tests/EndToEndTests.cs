using Microsoft.Build.Logging.StructuredLogger;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Quantize.MSBuild.Tests.Infrastructure;

namespace Quantize.MSBuild.Tests;

/// <summary>
/// Builds real projects that reference the packed Quantize.MSBuild, with the real worker and the sample's
/// real model (waifu2x) and calibration data, and reads what happened from the binary logs. Few builds
/// per test, each asserting several things: every `dotnet build` costs seconds.
/// </summary>
[Collection(PackageCollection.Name)]
public sealed class EndToEndTests(PackageFixture fixture)
{
    private static readonly long Fp32Size = new FileInfo(Repo.SampleModel).Length;

    /// <summary>A generated transformer block (see TestData/README.md).</summary>
    private static string TransformerModel => Path.Combine(Repo.Root, "tests", "Quantize.MSBuild.Tests", "TestData", "transformer-block.onnx");

    [Fact]
    public void Build_ships_the_int8_model_incrementally_and_publish_and_clean_follow()
    {
        Scenario("lifecycle", folder =>
        {
            var app = TestProject.Create(fixture, folder, "App", Body(perChannel: ""));
            string model = Path.Combine(app.Directory, "Models", "waifu2x.onnx");
            TestProject.CopySampleModel(model, samples: 2);
            string sourceHash = TestProject.Sha256(model);

            // 1. First build: quantized, summary logged, INT8 in bin/ under the same relative path, FP32 beside it on request.
            var first = app.Build();
            Assert.True(first.Succeeded, first.ToString());
            string summary = Assert.Single(first.Summaries);
            Assert.Contains("waifu2x.onnx:", summary);
            Assert.Contains("smaller", summary);
            string shipped = Path.Combine(app.BinDir, "Models", "waifu2x.onnx");
            string quantized = Path.Combine(app.QuantizeDir, "Models", "waifu2x.onnx");
            Assert.True(new FileInfo(shipped).Length < Fp32Size / 2, $"{shipped} is {new FileInfo(shipped).Length} bytes");
            Assert.Equal(TestProject.Sha256(quantized), TestProject.Sha256(shipped));
            Assert.Equal(sourceHash, TestProject.Sha256(Path.Combine(app.BinDir, "Models", "waifu2x.fp32.onnx")));
            Assert.True(File.Exists(quantized + ".report.json"));
            Assert.EndsWith($" (report: {quantized}.report.html)", summary, StringComparison.Ordinal);
            Assert.StartsWith("<!DOCTYPE html>", File.ReadAllText(quantized + ".report.html"), StringComparison.Ordinal);
            AssertRunsLikeFp32(shipped);

            // 2. Nothing changed: the quantize target is skipped as up to date.
            var noop = app.Build();
            Assert.True(noop.Succeeded, noop.ToString());
            Assert.Empty(noop.CoreTargetsRun);
            Assert.Equal(1, noop.CoreTargetsUpToDate);
            Assert.Empty(noop.Summaries);
            Assert.Contains(noop.Messages, m => m.StartsWith("Quantize summary: waifu2x.onnx", StringComparison.Ordinal) && m.EndsWith("(up to date)", StringComparison.Ordinal));

            // 3. A touched calibration file re-runs it.
            TestProject.Touch(Path.Combine(app.Directory, "Models", "waifu2x.calibration", "001", "input.npy"));
            var touched = app.Build();
            Assert.True(touched.Succeeded, touched.ToString());
            Assert.Single(touched.CoreTargetsRun);
            Assert.Single(touched.Summaries);

            // 4. So does a changed setting (and it reaches the worker's response file).
            app.WriteProject(Body(perChannel: "false"));
            var changed = app.Build();
            Assert.True(changed.Succeeded, changed.ToString());
            Assert.Single(changed.Summaries);
            Assert.Contains("--per-channel\nfalse\n", File.ReadAllText(quantized + ".rsp"));

            // 5. Publish ships the same INT8 file, without quantizing again.
            var publish = app.Publish();
            Assert.True(publish.Succeeded, publish.ToString());
            Assert.Empty(publish.CoreTargetsRun);
            Assert.Equal(TestProject.Sha256(quantized), TestProject.Sha256(Path.Combine(app.PublishDir, "Models", "waifu2x.onnx")));

            // 6. Clean removes what the build wrote; the source model was never touched.
            var clean = app.Clean();
            Assert.True(clean.Succeeded, clean.ToString());
            Assert.False(File.Exists(quantized), quantized);
            Assert.False(File.Exists(quantized + ".report.json"));
            Assert.False(File.Exists(quantized + ".report.html"));
            Assert.False(File.Exists(shipped), shipped);
            Assert.Equal(sourceHash, TestProject.Sha256(model));
        });

        static string Body(string perChannel) => $"""
              <PropertyGroup>
                <QuantizeMaxCalibrationSamples>2</QuantizeMaxCalibrationSamples>
                <QuantizePerChannel>{perChannel}</QuantizePerChannel>
                <QuantizeShipFloatModel>true</QuantizeShipFloatModel>
                <!-- INT8 is ~3x faster here, but a loaded CI machine must not turn the size assertions into noise. -->
                <QuantizeKeepFloatIfSlower>false</QuantizeKeepFloatIfSlower>
              </PropertyGroup>
              <ItemGroup>
                <None Update="Models/waifu2x.onnx" CopyToOutputDirectory="PreserveNewest" />
              </ItemGroup>
            """;
    }

    [Fact]
    public void Parallel_builds_share_a_model_and_only_the_touched_model_is_requantized()
    {
        Scenario("shared", folder =>
        {
            // Shared/shared.onnx (+ calibration by convention, beside it) is linked into two projects.
            TestProject.CopySampleModel(Path.Combine(folder, "Shared", "shared.onnx"), samples: 2);
            var a = TestProject.Create(fixture, folder, "A", """
                  <PropertyGroup><QuantizeKeepFloatIfSlower>false</QuantizeKeepFloatIfSlower></PropertyGroup>
                  <ItemGroup>
                    <None Include="../Shared/shared.onnx" Link="Models/shared.onnx" CopyToOutputDirectory="PreserveNewest" />
                    <None Update="Models/plain.onnx" CopyToOutputDirectory="PreserveNewest" />
                    <None Update="Models/optout.onnx" CopyToOutputDirectory="PreserveNewest" Quantize="false" />
                  </ItemGroup>
                """);
            Directory.CreateDirectory(Path.Combine(a.Directory, "Models"));
            File.Copy(Repo.SampleModel, Path.Combine(a.Directory, "Models", "plain.onnx"));
            TestProject.CopySampleModel(Path.Combine(a.Directory, "Models", "optout.onnx"), samples: 1);
            var b = TestProject.Create(fixture, folder, "B", """
                  <ItemGroup>
                    <Content Include="../Shared/shared.onnx" Link="Assets/sr.onnx" CopyToOutputDirectory="PreserveNewest" QuantizeKeepFloatIfSlower="false" />
                  </ItemGroup>
                """);
            // C has no model of its own but references A: A's INT8 models reach C's output too.
            var c = TestProject.Create(fixture, folder, "C", """
                  <ItemGroup><ProjectReference Include="../A/A.csproj" /></ItemGroup>
                """);
            string solution = Path.Combine(folder, "all.slnx");
            File.WriteAllText(solution, """<Solution><Project Path="A/A.csproj" /><Project Path="B/B.csproj" /><Project Path="C/C.csproj" /></Solution>""");

            // 1. A and B in parallel: the shared model quantized for each; plain.onnx has no
            //    calibration data, so auto mode tries dynamic quantization, which has nothing to do in a
            //    conv net: it ships unchanged (apart from provenance) with a warning that says what to do.
            var first = a.Run(solution, "build", "-m:2");
            Assert.True(first.Succeeded, first.ToString());
            Assert.Equal(3, first.Summaries.Count);
            Warning noCalibration = Assert.Single(first.Warnings, w => w.Code == "QNT2502");
            Assert.EndsWith("plain.onnx", noCalibration.File);
            Assert.Contains("plain.calibration", noCalibration.Text);
            Assert.True(new FileInfo(Path.Combine(a.BinDir, "Models", "shared.onnx")).Length < Fp32Size / 2);
            Assert.True(new FileInfo(Path.Combine(b.BinDir, "Assets", "sr.onnx")).Length < Fp32Size / 2);
            // Same model, data and settings, quantized at the same time by two processes: the same bytes.
            Assert.Equal(TestProject.Sha256(Path.Combine(a.BinDir, "Models", "shared.onnx")), TestProject.Sha256(Path.Combine(b.BinDir, "Assets", "sr.onnx")));
            AssertSameOutputs(Repo.SampleModel, Path.Combine(a.BinDir, "Models", "plain.onnx"));
            Assert.Equal(TestProject.Sha256(Path.Combine(a.BinDir, "Models", "shared.onnx")), TestProject.Sha256(Path.Combine(c.BinDir, "Models", "shared.onnx")));
            // Quantize="false": shipped as it is, silently.
            Assert.Equal(TestProject.Sha256(Repo.SampleModel), TestProject.Sha256(Path.Combine(a.BinDir, "Models", "optout.onnx")));
            Assert.DoesNotContain(first.Warnings, w => w.File?.EndsWith("optout.onnx", StringComparison.Ordinal) == true);

            // 2. No-op: nothing runs, and the warning of the last real run is still reported.
            var noop = a.Run(solution, "build", "-m:2");
            Assert.True(noop.Succeeded, noop.ToString());
            Assert.Empty(noop.CoreTargetsRun);
            Assert.Equal(3, noop.CoreTargetsUpToDate);
            Assert.Single(noop.Warnings, w => w.Code == "QNT2502" && w.File.EndsWith("plain.onnx", StringComparison.Ordinal));

            // 3. Touch one model's calibration data: only that model re-runs in A.
            TestProject.Touch(Path.Combine(folder, "Shared", "shared.calibration", "000", "input.npy"));
            var touched = a.Build();
            Assert.True(touched.Succeeded, touched.ToString());
            Assert.Single(touched.CoreTargetsRun);
            Assert.Equal(1, touched.CoreTargetsUpToDate);
            Assert.StartsWith("Quantize summary: shared.onnx", Assert.Single(touched.Summaries));
        });
    }

    [Fact]
    public void Accuracy_gate_fails_the_build_ships_fp32_on_request_and_passes_with_the_default_checks()
    {
        Scenario("accuracy-gate", folder =>
        {
            var app = TestProject.Create(fixture, folder, "App", Body(checks: "sqnr>=80", onFailure: ""));
            string model = Path.Combine(app.Directory, "Models", "waifu2x.onnx");
            TestProject.CopySampleModel(model, samples: 2);
            // Validation by convention: two samples the model is not calibrated on, with the FP32 model's outputs as ground truth.
            string validation = Path.Combine(app.Directory, "Models", "waifu2x.validation");
            foreach (string sample in new[] { "006", "007" })
            {
                string dir = Path.Combine(validation, sample);
                Directory.CreateDirectory(Path.Combine(dir, "expected"));
                File.Copy(Path.Combine(Repo.SampleCalibration, sample, "input.npy"), Path.Combine(dir, "input.npy"));
                var (name, dims, values) = RunFp32(Path.Combine(dir, "input.npy"));
                WriteNpy(Path.Combine(dir, "expected", name + ".npy"), dims, values);
            }

            string shipped = Path.Combine(app.BinDir, "Models", "waifu2x.onnx");
            string quantized = Path.Combine(app.QuantizeDir, "Models", "waifu2x.onnx");

            // 1. An impossible check fails the build with the engine's code, naming the model; nothing ships.
            var strict = app.Build();
            Assert.False(strict.Succeeded, strict.ToString());
            Error failed = Assert.Single(strict.Errors, e => e.Code == "QNT1401");
            Assert.EndsWith("waifu2x.onnx", failed.File);
            Assert.Contains("sqnr", failed.Text, StringComparison.OrdinalIgnoreCase);
            Assert.False(File.Exists(quantized), quantized);
            Assert.False(File.Exists(shipped), shipped);
            Assert.Contains("--validation\n" + validation + "/\n", File.ReadAllText(quantized + ".rsp"));
            // The reports of the failed run stay to show what got worse; the error links the HTML one.
            Assert.EndsWith($" (report: {quantized}.report.html)", failed.Text, StringComparison.Ordinal);
            Assert.Contains("\"output\": \"notWritten\"", File.ReadAllText(quantized + ".report.json"), StringComparison.Ordinal);
            Assert.Contains("<span class=\"badge fail\">FAIL</span>", File.ReadAllText(quantized + ".report.html"), StringComparison.Ordinal);

            // 2. ship-fp32 (metadata): a warning, and bin/ gets the FP32 model. The metric/drop pair adds a ground-truth check.
            app.WriteProject(Body(checks: "sqnr>=80", onFailure: """QuantizeOnAccuracyFailure="ship-fp32" QuantizeAccuracyMetric="psnr" QuantizeMaxAccuracyDrop="50" """));
            var lenient = app.Build();
            Assert.True(lenient.Succeeded, lenient.ToString());
            Warning shippedFp32 = Assert.Single(lenient.Warnings, w => w.Code == "QNT2401");
            Assert.EndsWith("waifu2x.onnx", shippedFp32.File);
            Assert.Contains("kept FP32", Assert.Single(lenient.Summaries));
            Assert.Contains("--check\nsqnr>=80\n", File.ReadAllText(quantized + ".rsp"));
            Assert.Contains("--check\ndrop:psnr<=50\n", File.ReadAllText(quantized + ".rsp"));
            AssertSameOutputs(Repo.SampleModel, shipped);
            var noop = app.Build(); // cheap: nothing re-runs, and the warning is still reported
            Assert.Empty(noop.CoreTargetsRun);
            Assert.Single(noop.Warnings, w => w.Code == "QNT2401" && w.File.EndsWith("waifu2x.onnx", StringComparison.Ordinal));

            // 3. The worker's default checks (no QuantizeAccuracyChecks): they pass, the INT8 model ships, the summary shows the metric.
            app.WriteProject(Body(checks: "", onFailure: ""));
            var passing = app.Build();
            Assert.True(passing.Succeeded, passing.ToString());
            Assert.DoesNotContain(passing.Warnings, w => w.Code is "QNT2401" or "QNT2402" or "QNT2403");
            // Two calibration samples do not cover the two validation samples (sample 006 clips 1.5 % of its activations).
            Assert.Single(passing.Warnings, w => w.Code == "QNT2404" && w.Text.Contains("'006'", StringComparison.Ordinal));
            string summary = Assert.Single(passing.Summaries);
            Assert.Contains("2 validation sample(s): sqnr ", summary);
            Assert.Contains("(>= 10: ok)", summary);
            Assert.DoesNotContain("--check", File.ReadAllText(quantized + ".rsp"));
            Assert.True(new FileInfo(shipped).Length < Fp32Size / 2, $"{shipped} is {new FileInfo(shipped).Length} bytes");
        });

        static string Body(string checks, string onFailure) => $"""
              <PropertyGroup>
                <QuantizeMaxCalibrationSamples>2</QuantizeMaxCalibrationSamples>
                <QuantizeKeepFloatIfSlower>false</QuantizeKeepFloatIfSlower>
                <QuantizeAccuracyChecks>{checks}</QuantizeAccuracyChecks>
              </PropertyGroup>
              <ItemGroup>
                <None Update="Models/waifu2x.onnx" CopyToOutputDirectory="PreserveNewest" {onFailure}/>
              </ItemGroup>
            """;
    }

    [Fact]
    public void Tuning_writes_a_lock_file_that_later_builds_reuse_and_locked_mode_requires()
    {
        Scenario("tuning", folder =>
        {
            var app = TestProject.Create(fixture, folder, "App", Body("sqnr>=0", ""));
            string model = Path.Combine(app.Directory, "Models", "waifu2x.onnx");
            TestProject.CopySampleModel(model, samples: 2);
            string validation = Path.Combine(app.Directory, "Models", "waifu2x.validation");
            foreach (string sample in new[] { "006", "007" })
            {
                Directory.CreateDirectory(Path.Combine(validation, sample));
                File.Copy(Path.Combine(Repo.SampleCalibration, sample, "input.npy"), Path.Combine(validation, sample, "input.npy"));
            }

            string quantized = Path.Combine(app.QuantizeDir, "Models", "waifu2x.onnx");
            string lockFile = Path.Combine(app.Directory, "Models", "waifu2x.quantization.json");

            // What plain quantization reaches; the check then asks for 3 dB more, which only float nodes can give.
            var plain = app.Build();
            Assert.True(plain.Succeeded, plain.ToString());
            using (var report = System.Text.Json.JsonDocument.Parse(File.ReadAllText(quantized + ".report.json")))
            {
                double sqnr = report.RootElement.GetProperty("validation").GetProperty("checks")[0].GetProperty("value").GetDouble();
                app.WriteProject(Body(FormattableString.Invariant($"sqnr>={sqnr + 3:F1}"), "<QuantizeTune>true</QuantizeTune>"));
            }

            // 1. Tuning finds float nodes that pass and writes the lock file beside the model; INT8 still ships.
            var tuned = app.Build();
            Assert.True(tuned.Succeeded, tuned.ToString());
            string summary = Assert.Single(tuned.Summaries);
            Assert.Contains("tuned in ", summary);
            Assert.Contains("lock file written: " + lockFile, summary);
            Assert.True(File.Exists(lockFile));
            Assert.Contains("\"floatNodes\"", File.ReadAllText(lockFile));
            // Each attempt shows in the build log as it ends (a search on a large model takes minutes).
            Assert.Contains(tuned.Messages, m => m.StartsWith("Tuning: attempt 1, plain configuration: fails (sqnr>=", StringComparison.Ordinal));
            Assert.Contains(tuned.Messages, m => m.StartsWith("Tuning: attempt ", StringComparison.Ordinal) && m.Contains(": passes (", StringComparison.Ordinal));
            Assert.True(new FileInfo(Path.Combine(app.BinDir, "Models", "waifu2x.onnx")).Length < Fp32Size);

            // 2. The lock file written during the build does not make the next build re-run.
            var noop = app.Build();
            Assert.Empty(noop.CoreTargetsRun);

            // 3. Locked mode (CI) reuses it without searching.
            app.WriteProject(Body(File.ReadAllText(quantized + ".rsp").Split('\n').SkipWhile(l => l != "--check").Skip(1).First(), "<QuantizeTuneLocked>true</QuantizeTuneLocked>"));
            var locked = app.Build();
            Assert.True(locked.Succeeded, locked.ToString());
            // The lock replays its recorded ranges and ship decision: nothing is calibrated or timed into the bytes.
            Assert.Contains("configuration, ranges and decisions from waifu2x.quantization.json", Assert.Single(locked.Summaries));

            // 4. Without it, locked mode is a coded error naming the lock file.
            File.Delete(lockFile);
            var missing = app.Build();
            Assert.False(missing.Succeeded);
            Error error = Assert.Single(missing.Errors, e => e.Code == "QNT1403");
            Assert.Equal(lockFile, error.File);
        });

        static string Body(string checks, string tuning) => $"""
              <PropertyGroup>
                <QuantizeMaxCalibrationSamples>2</QuantizeMaxCalibrationSamples>
                <QuantizeKeepFloatIfSlower>false</QuantizeKeepFloatIfSlower>
                <QuantizeAccuracyChecks>{checks}</QuantizeAccuracyChecks>
                {tuning}
              </PropertyGroup>
              <ItemGroup>
                <None Update="Models/waifu2x.onnx" CopyToOutputDirectory="PreserveNewest" />
              </ItemGroup>
            """;
    }

    [Fact]
    public void Image_samples_from_a_list_calibrate_and_labelled_class_folders_drive_the_accuracy_gate()
    {
        Scenario("images", folder =>
        {
            // samples/TextDirection's model and PNG text lines: the worker decodes them (SkiaSharp natives from the package).
            string source = Path.Combine(Repo.Root, "samples", "TextDirection", "Models");
            var app = TestProject.Create(fixture, folder, "App", """
                  <PropertyGroup>
                    <QuantizeKeepFloatIfSlower>false</QuantizeKeepFloatIfSlower>
                    <QuantizeImageSize>192x48</QuantizeImageSize>
                    <QuantizeImageResize>fit-height</QuantizeImageResize>
                    <QuantizeImageChannels>bgr</QuantizeImageChannels>
                    <QuantizeImageMean>0.5</QuantizeImageMean>
                    <QuantizeImageStd>0.5</QuantizeImageStd>
                    <QuantizeAccuracyMetric>top1</QuantizeAccuracyMetric>
                    <QuantizeMaxAccuracyDrop>10</QuantizeMaxAccuracyDrop>
                  </PropertyGroup>
                  <ItemGroup>
                    <None Update="Models/cls.onnx" CopyToOutputDirectory="PreserveNewest" QuantizeCalibrationData="Lines/subset.txt" />
                  </ItemGroup>
                """);
            string models = Path.Combine(app.Directory, "Models");
            Directory.CreateDirectory(models);
            File.Copy(Path.Combine(source, "ppocr_cls.onnx"), Path.Combine(models, "cls.onnx"));
            CopyFolder(Path.Combine(source, "ppocr_cls.validation"), Path.Combine(models, "cls.validation"));
            // A list picks 6 of the 20 calibration lines.
            string lines = Path.Combine(app.Directory, "Lines");
            CopyFolder(Path.Combine(source, "ppocr_cls.calibration"), lines);
            File.WriteAllLines(Path.Combine(lines, "subset.txt"), ["# six lines", "000.png", "001.png", "004.png", "009.png", "013.png", "019.png"]);

            var build = app.Build();

            Assert.True(build.Succeeded, build.ToString());
            string summary = Assert.Single(build.Summaries);
            Assert.Contains("6 calibration samples", summary);
            Assert.Contains("16 validation sample(s): top1 100 -> ", summary);
            string quantized = Path.Combine(app.QuantizeDir, "Models", "cls.onnx");
            string rsp = File.ReadAllText(quantized + ".rsp");
            Assert.Contains("--calibration\n" + Path.Combine(lines, "subset.txt") + "\n", rsp);
            Assert.Contains("--image-resize\nfit-height\n", rsp);
            Assert.Contains("--check\ndrop:top1<=10\n", rsp);
            Assert.True(new FileInfo(Path.Combine(app.BinDir, "Models", "cls.onnx")).Length < new FileInfo(Path.Combine(source, "ppocr_cls.onnx")).Length * 3 / 4);

            // The listed images are inputs of the incremental build: touching a listed one re-runs the model, an unlisted one does not.
            File.SetLastWriteTimeUtc(Path.Combine(lines, "002.png"), DateTime.UtcNow.AddMinutes(1));
            Assert.Empty(app.Build().CoreTargetsRun);
            File.SetLastWriteTimeUtc(Path.Combine(lines, "004.png"), DateTime.UtcNow.AddMinutes(1));
            Assert.NotEmpty(app.Build().CoreTargetsRun);
        });

        static void CopyFolder(string from, string to)
        {
            foreach (string file in Directory.GetFiles(from, "*", SearchOption.AllDirectories))
            {
                string target = Path.Combine(to, Path.GetRelativePath(from, file));
                Directory.CreateDirectory(Path.GetDirectoryName(target)!);
                File.Copy(file, target);
            }
        }
    }

    [Fact]
    public void Invalid_property_value_is_a_coded_error_naming_the_property_and_allowed_values()
    {
        Scenario("invalid-property", folder =>
        {
            var app = TestProject.Create(fixture, folder, "App", """
                  <ItemGroup><None Update="Models/waifu2x.onnx" CopyToOutputDirectory="PreserveNewest" /></ItemGroup>
                """);
            string model = Path.Combine(app.Directory, "Models", "waifu2x.onnx");
            TestProject.CopySampleModel(model, samples: 1);

            var result = app.Build("-p:QuantizeActivationType=int4");
            Assert.False(result.Succeeded, result.ToString());
            Error error = Assert.Single(result.Errors);
            Assert.Equal("QNT3001", error.Code);
            Assert.Contains("'int4'", error.Text);
            Assert.Contains("QuantizeActivationType", error.Text);
            Assert.Contains("uint8, int8", error.Text);
            Assert.Equal(0, result.WorkerRuns);
            Assert.Equal(TestProject.Sha256(Repo.SampleModel), TestProject.Sha256(model));

            // The project switch turns the package off: the FP32 model is copied as it is.
            var off = app.Build("-p:QuantizeActivationType=int4", "-p:QuantizeOnnxModels=false");
            Assert.True(off.Succeeded, off.ToString());
            Assert.Equal(0, off.WorkerRuns);
            Assert.Equal(TestProject.Sha256(Repo.SampleModel), TestProject.Sha256(Path.Combine(app.BinDir, "Models", "waifu2x.onnx")));

            var invalidSwitch = app.Build("-p:QuantizeOnnxModels=maybe");
            Assert.False(invalidSwitch.Succeeded, invalidSwitch.ToString());
            Assert.Equal("QNT3001", Assert.Single(invalidSwitch.Errors).Code);
        });
    }

    [Fact]
    public void Corrupt_model_fails_with_the_engine_code_and_leaves_no_output()
    {
        Scenario("corrupt-model", folder =>
        {
            var app = TestProject.Create(fixture, folder, "App", """
                  <ItemGroup><None Update="Models/broken.onnx" CopyToOutputDirectory="PreserveNewest" /></ItemGroup>
                """);
            string model = Path.Combine(app.Directory, "Models", "broken.onnx");
            TestProject.CopySampleModel(model, samples: 1);
            File.WriteAllBytes(model, File.ReadAllBytes(Repo.SampleModel).AsSpan(0, 5000).ToArray());
            string hash = TestProject.Sha256(model);

            var result = app.Build();
            Assert.False(result.Succeeded, result.ToString());
            Error error = Assert.Single(result.Errors);
            Assert.StartsWith("QNT1", error.Code);
            Assert.EndsWith("broken.onnx", error.File);
            Assert.DoesNotContain("   at ", error.Text); // no stack trace for a user error
            Assert.False(File.Exists(Path.Combine(app.QuantizeDir, "Models", "broken.onnx")));
            Assert.Equal(hash, TestProject.Sha256(model));
        });
    }

    [Fact]
    public void Missing_calibration_folder_is_a_coded_error()
    {
        Scenario("missing-calibration", folder =>
        {
            var app = TestProject.Create(fixture, folder, "App", """
                  <ItemGroup>
                    <None Update="Models/waifu2x.onnx" CopyToOutputDirectory="PreserveNewest" QuantizeCalibrationData="Data/does-not-exist" />
                  </ItemGroup>
                """);
            string model = Path.Combine(app.Directory, "Models", "waifu2x.onnx");
            TestProject.CopySampleModel(model, samples: 0);

            var result = app.Build();
            Assert.False(result.Succeeded, result.ToString());
            Error error = Assert.Single(result.Errors);
            Assert.Equal("QNT1101", error.Code);
            Assert.Contains("does-not-exist", error.File + error.Text);
            Assert.False(File.Exists(Path.Combine(app.QuantizeDir, "Models", "waifu2x.onnx")));
            Assert.Equal(TestProject.Sha256(Repo.SampleModel), TestProject.Sha256(model));
        });
    }

    [Fact]
    public void Design_time_build_sees_the_swapped_items_but_never_quantizes()
    {
        Scenario("design-time", folder =>
        {
            var app = TestProject.Create(fixture, folder, "App", """
                  <ItemGroup><None Update="Models/waifu2x.onnx" CopyToOutputDirectory="PreserveNewest" /></ItemGroup>
                """);
            TestProject.CopySampleModel(Path.Combine(app.Directory, "Models", "waifu2x.onnx"), samples: 1);

            var result = app.Run(app.ProjectFile, "msbuild", "-restore", "-t:GetCopyToOutputDirectoryItems", "-p:DesignTimeBuild=true");
            Assert.True(result.Succeeded, result.ToString());
            Assert.Equal(0, result.WorkerRuns);
            Assert.DoesNotContain(result.Log.FindChildrenRecursive<Target>(), t => t.Name == "_QuantizePrepare");
            var swapped = result.Log.FindChildrenRecursive<Item>(
                i => i.Text.EndsWith(Path.Combine("quantize", "Models", "waifu2x.onnx"), StringComparison.Ordinal));
            Assert.NotEmpty(swapped);
            Assert.False(Directory.Exists(app.QuantizeDir));

            // Visual Studio's fast up-to-date check and `dotnet clean` know the inputs and outputs.
            IEnumerable<string> Added(string itemType) => result.Log.FindChildrenRecursive<AddItem>(a => a.Name == itemType)
                .SelectMany(a => a.Children.OfType<Item>()).Select(i => i.Text.Replace('\\', '/'));
            Assert.Contains(Added("UpToDateCheckInput"), i => i.EndsWith("Models/waifu2x.onnx", StringComparison.Ordinal));
            Assert.Contains(Added("UpToDateCheckInput"), i => i.EndsWith("waifu2x.calibration/000/input.npy", StringComparison.Ordinal));
            Assert.Contains(Added("UpToDateCheckBuilt"), i => i.EndsWith("quantize/Models/waifu2x.onnx", StringComparison.Ordinal));
            Assert.Contains(Added("FileWrites"), i => i.EndsWith("quantize/Models/waifu2x.onnx.settings", StringComparison.Ordinal));
        });
    }

    /// <summary>Runs a scenario in its own folder; removes it on success, keeps it (binlogs included) on failure.</summary>
    [Fact]
    public void Dynamic_mode_quantizes_a_transformer_without_calibration_data()
    {
        Scenario("dynamic", folder =>
        {
            // No calibration folder anywhere: QuantizeMode=dynamic needs none.
            var app = EncoderApp(folder, "<QuantizeMode>dynamic</QuantizeMode><QuantizeKeepFloatIfSlower>false</QuantizeKeepFloatIfSlower>");

            var build = app.Build();
            Assert.True(build.Succeeded, build.ToString());
            string summary = Assert.Single(build.Summaries);
            Assert.Contains("encoder.onnx:", summary);
            Assert.Contains("6 integer kernels, dynamic (activations quantized at run time)", summary);
            Assert.Empty(build.Warnings);
            string rsp = File.ReadAllText(Path.Combine(app.QuantizeDir, "Models", "encoder.onnx.rsp"));
            Assert.Contains("--mode\ndynamic\n", rsp);
            Assert.DoesNotContain("--calibration", rsp);

            // The shipped model: smaller, integer MatMuls, and ORT's output stays close to the FP32 model's.
            string shipped = Path.Combine(app.BinDir, "Models", "encoder.onnx");
            Assert.True(new FileInfo(shipped).Length < new FileInfo(TransformerModel).Length * 0.6);
            double sqnr = EncoderSqnr(TransformerModel, shipped);
            Assert.True(sqnr > 25, $"SQNR of INT8 vs FP32 output: {sqnr:F1} dB");

            // No-op build: up to date.
            var noop = app.Build();
            Assert.True(noop.Succeeded, noop.ToString());
            Assert.Empty(noop.CoreTargetsRun);
        });
    }

    [Fact]
    public void Weight4_mode_ships_4_bit_block_weights_without_calibration_data()
    {
        Scenario("weight4", folder =>
        {
            // No calibration folder; blocks of 16 so the encoder's 32-wide weights hold two blocks per column.
            var app = EncoderApp(folder, "<QuantizeMode>weight4</QuantizeMode><QuantizeBlockSize>16</QuantizeBlockSize>");

            var build = app.Build();
            Assert.True(build.Succeeded, build.ToString());
            string summary = Assert.Single(build.Summaries);
            Assert.Contains("encoder.onnx:", summary);
            Assert.Contains("6 integer kernels, weight-only 4-bit (block 16, accuracy level 0)", summary);
            Assert.Empty(build.Warnings);
            string rsp = File.ReadAllText(Path.Combine(app.QuantizeDir, "Models", "encoder.onnx.rsp"));
            Assert.Contains("--mode\nweight4\n", rsp);
            Assert.Contains("--block-size\n16\n", rsp);
            Assert.DoesNotContain("--calibration", rsp);

            // The report: six MatMulNBits kernels, the block size recorded. The shipped model is smaller and ORT's output stays close to FP32's.
            using (var report = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(app.QuantizeDir, "Models", "encoder.onnx.report.json"))))
            {
                Assert.Equal(6, report.RootElement.GetProperty("fusion").GetProperty("integerKernels").GetProperty("MatMulNBits").GetInt32());
                Assert.Equal("16", report.RootElement.GetProperty("settings").GetProperty("block-size").GetString());
                Assert.Equal("weight4", report.RootElement.GetProperty("settings").GetProperty("mode").GetString());
            }

            string shipped = Path.Combine(app.BinDir, "Models", "encoder.onnx");
            Assert.True(new FileInfo(shipped).Length < new FileInfo(TransformerModel).Length * 0.5);
            double sqnr = EncoderSqnr(TransformerModel, shipped);
            Assert.True(sqnr > 15, $"SQNR of 4-bit vs FP32 output: {sqnr:F1} dB");
        });
    }

    [Fact]
    public void An_fp32_copy_of_a_model_with_external_data_is_not_shipped_QNT3104()
    {
        Scenario("external-data-fp32-copy", folder =>
        {
            // The FP32 copy would name 'encoder.onnx.data', which in bin/ is the quantized model's data file.
            var (app, model) = ExternalDataApp(folder, "<QuantizeShipFloatModel>true</QuantizeShipFloatModel>");

            var build = app.Build();

            Assert.True(build.Succeeded, build.ToString());
            var warning = Assert.Single(build.Warnings, w => w.Code == "QNT3104");
            Assert.Contains("encoder.onnx.data", warning.Text, StringComparison.Ordinal);
            Assert.False(File.Exists(Path.Combine(app.BinDir, "Models", "encoder.fp32.onnx")));
            Assert.True(EncoderSqnr(model, Path.Combine(app.BinDir, "Models", "encoder.onnx")) > 25); // the shipped INT8 model still loads with its data file
        });
    }

    [Fact]
    public void Model_with_external_data_ships_its_quantized_data_file_beside_it()
    {
        Scenario("external-data", folder =>
        {
            var (app, model) = ExternalDataApp(folder, "");
            var sourceHashes = (TestProject.Sha256(model), TestProject.Sha256(model + ".data"));

            var build = app.Build();
            Assert.True(build.Succeeded, build.ToString());
            Assert.Single(build.Summaries);

            // bin/ gets the quantized model and the quantized data file (not the FP32 one of the same name).
            string shipped = Path.Combine(app.BinDir, "Models", "encoder.onnx");
            string quantized = Path.Combine(app.QuantizeDir, "Models", "encoder.onnx");
            Assert.Equal(TestProject.Sha256(quantized), TestProject.Sha256(shipped));
            Assert.Equal(TestProject.Sha256(quantized + ".data"), TestProject.Sha256(shipped + ".data"));
            Assert.NotEqual(sourceHashes.Item2, TestProject.Sha256(shipped + ".data"));
            Assert.Contains(build.Messages, m => m.StartsWith("Copying file from", StringComparison.Ordinal) && m.Contains(quantized + ".data", StringComparison.Ordinal));
            Assert.DoesNotContain(build.Messages, m => m.StartsWith("Copying file from", StringComparison.Ordinal) && m.Contains(model + ".data", StringComparison.Ordinal));
            Assert.True(new FileInfo(shipped + ".data").Length < new FileInfo(model + ".data").Length); // int8 MatMul weights (page-aligned tensors)
            Assert.Equal(sourceHashes, (TestProject.Sha256(model), TestProject.Sha256(model + ".data")));
            Assert.Empty(Directory.GetDirectories(Path.GetDirectoryName(quantized)!)); // the work folder is gone

            // ORT loads the shipped model from bin/ (its data file beside it) and stays close to FP32.
            double sqnr = EncoderSqnr(model, shipped);
            Assert.True(sqnr > 25, $"SQNR of INT8 vs FP32 output: {sqnr:F1} dB");

            // Up to date when nothing changed; a changed data file re-runs the model.
            var noop = app.Build();
            Assert.True(noop.Succeeded, noop.ToString());
            Assert.Empty(noop.CoreTargetsRun);
            TestProject.Touch(model + ".data");
            var touched = app.Build();
            Assert.True(touched.Succeeded, touched.ToString());
            Assert.Single(touched.CoreTargetsRun);

            // Clean removes the data files the build wrote.
            var clean = app.Clean();
            Assert.True(clean.Succeeded, clean.ToString());
            Assert.False(File.Exists(quantized + ".data"));
            Assert.False(File.Exists(shipped + ".data"));
        });
    }

    private static string ExternalModelFolder => Path.Combine(Repo.Root, "tests", "Quantize.MSBuild.Tests", "TestData", "external");

    private void Scenario(string name, Action<string> body) => TestProject.RunScenario(fixture, name, body);

    /// <summary>The sample's FP32 model on one .npy input (float32 [1,3,96,96]): its output's name, shape and values.</summary>
    private static (string Name, int[] Dims, float[] Values) RunFp32(string inputNpy)
    {
        using var session = new InferenceSession(Repo.SampleModel);
        using var results = session.Run([NamedOnnxValue.CreateFromTensor(session.InputMetadata.Keys.Single(), ReadInput(inputNpy))]);
        var output = results.Single();
        var tensor = output.AsTensor<float>();
        return (output.Name, tensor.Dimensions.ToArray(), tensor.ToArray());
    }

    /// <summary>A little-endian float32 C-order .npy (format 1.0, header padded to 64 bytes).</summary>
    private static void WriteNpy(string path, int[] dims, float[] values)
    {
        string dict = $"{{'descr': '<f4', 'fortran_order': False, 'shape': ({string.Join(", ", dims)}{(dims.Length == 1 ? "," : "")}), }}";
        int unpadded = 10 + dict.Length + 1;
        string header = dict + new string(' ', (unpadded + 63) / 64 * 64 - unpadded) + "\n";
        using var stream = File.Create(path);
        stream.Write([0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', 1, 0]);
        stream.Write(BitConverter.GetBytes((ushort)header.Length));
        stream.Write(System.Text.Encoding.ASCII.GetBytes(header));
        stream.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()));
    }

    private static DenseTensor<float> ReadInput(string npyPath)
    {
        byte[] npy = File.ReadAllBytes(npyPath);
        int headerEnd = 10 + BitConverter.ToUInt16(npy, 8);
        float[] data = new float[3 * 96 * 96];
        Buffer.BlockCopy(npy, headerEnd, data, 0, data.Length * 4);
        return new DenseTensor<float>(data, [1, 3, 96, 96]);
    }

    /// <summary>Two models compute bit-identical outputs (the same FP32 graph and weights; provenance metadata may differ).</summary>
    private static void AssertSameOutputs(string expectedModel, string actualModel)
    {
        var input = ReadInput(Path.Combine(Repo.SampleCalibration, "005", "input.npy"));
        float[] Run(string path)
        {
            using var session = new InferenceSession(path);
            using var results = session.Run([NamedOnnxValue.CreateFromTensor(session.InputMetadata.Keys.Single(), input)]);
            return results.Single().AsTensor<float>().ToArray();
        }

        Assert.Equal(Run(expectedModel), Run(actualModel));
    }

    /// <summary>The INT8 model loads in ONNX Runtime and its output on a real image stays close to the FP32 model's.</summary>
    private static void AssertRunsLikeFp32(string int8Model)
    {
        // A calibration sample the model was not calibrated on (the test used the first two): .npy, float32 [1,3,96,96].
        byte[] npy = File.ReadAllBytes(Path.Combine(Repo.SampleCalibration, "007", "input.npy"));
        int headerEnd = 10 + BitConverter.ToUInt16(npy, 8);
        float[] data = new float[3 * 96 * 96];
        Buffer.BlockCopy(npy, headerEnd, data, 0, data.Length * 4);
        var input = new DenseTensor<float>(data, [1, 3, 96, 96]);
        float[] Run(string path)
        {
            using var session = new InferenceSession(path);
            using var results = session.Run([NamedOnnxValue.CreateFromTensor(session.InputMetadata.Keys.Single(), input)]);
            return results.Single().AsTensor<float>().ToArray();
        }

        float[] fp32 = Run(Repo.SampleModel);
        float[] int8 = Run(int8Model);
        Assert.Equal(fp32.Length, int8.Length);
        double mse = fp32.Zip(int8, (x, y) => (double)(x - y) * (x - y)).Average();
        double psnr = 10 * Math.Log10(1.0 / mse);
        Assert.True(psnr > 25, $"PSNR of INT8 vs FP32 output: {psnr:F1} dB");
    }

    /// <summary>An app whose Models/encoder.onnx is the test transformer block (one file), copied to the output; <paramref name="properties"/> form its property group.</summary>
    private TestProject EncoderApp(string folder, string properties)
    {
        var app = TestProject.Create(fixture, folder, "App", $"""
              <PropertyGroup>
                {properties}
              </PropertyGroup>
              <ItemGroup><None Update="Models/encoder.onnx" CopyToOutputDirectory="PreserveNewest" /></ItemGroup>
            """);
        string model = Path.Combine(app.Directory, "Models", "encoder.onnx");
        Directory.CreateDirectory(Path.GetDirectoryName(model)!);
        File.Copy(TransformerModel, model);
        return app;
    }

    /// <summary>
    /// A dynamic-mode app whose Models/encoder.onnx keeps its weights in encoder.onnx.data (the common layout), both
    /// copied to the output; <paramref name="properties"/> are added to its property group.
    /// </summary>
    private (TestProject App, string Model) ExternalDataApp(string folder, string properties)
    {
        var app = TestProject.Create(fixture, folder, "App", $"""
              <PropertyGroup>
                <QuantizeMode>dynamic</QuantizeMode>
                <QuantizeKeepFloatIfSlower>false</QuantizeKeepFloatIfSlower>
                {properties}
              </PropertyGroup>
              <ItemGroup>
                <None Update="Models/encoder.onnx" CopyToOutputDirectory="PreserveNewest" />
                <None Update="Models/encoder.onnx.data" CopyToOutputDirectory="PreserveNewest" />
              </ItemGroup>
            """);
        string model = Path.Combine(app.Directory, "Models", "encoder.onnx");
        Directory.CreateDirectory(Path.GetDirectoryName(model)!);
        File.Copy(Path.Combine(ExternalModelFolder, "encoder.onnx"), model);
        File.Copy(Path.Combine(ExternalModelFolder, "encoder.onnx.data"), model + ".data");
        return (app, model);
    }

    /// <summary>SQNR (dB) of <paramref name="quantized"/>'s output against <paramref name="fp32"/>'s on one seeded input of the test encoder, run by ORT from the files.</summary>
    private static double EncoderSqnr(string fp32, string quantized)
    {
        var random = new Random(5);
        var input = new DenseTensor<float>(Enumerable.Range(0, 16 * 32).Select(_ => (float)((random.NextDouble() * 4) - 2)).ToArray(), [1, 16, 32]);
        float[] Run(string path)
        {
            using var session = new InferenceSession(path);
            using var results = session.Run([NamedOnnxValue.CreateFromTensor("embeddings", input)]);
            return results.Single().AsTensor<float>().ToArray();
        }

        float[] expected = Run(fp32), actual = Run(quantized);
        return 10 * Math.Log10(expected.Sum(x => (double)x * x) / expected.Zip(actual, (x, y) => (double)(x - y) * (x - y)).Sum());
    }
}
