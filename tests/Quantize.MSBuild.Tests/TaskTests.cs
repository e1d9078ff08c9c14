using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;
using Quantize.Common;
using Quantize.MSBuild.Tests.Infrastructure;

namespace Quantize.MSBuild.Tests;

/// <summary>
/// The tasks on their own, with a mock build engine. The worker is replaced by small shell scripts run by
/// /bin/sh (the task runs "host worker quantize @rsp", so host=/bin/sh, worker=script), which makes
/// crashes, hangs and odd output cheap to produce. The real worker runs in <see cref="EndToEndTests"/>.
/// </summary>
public sealed class TaskTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "quantize-task-tests", Guid.NewGuid().ToString("N"));
    private readonly MockBuildEngine _engine = new();

    public TaskTests() => Directory.CreateDirectory(_dir);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void Metadata_overrides_property_and_values_are_normalised()
    {
        var model = new TaskItem("Models/m.onnx", new Dictionary<string, string> { ["QuantizePerChannel"] = "False" });
        var defaults = new Dictionary<string, string> { ["QuantizePerChannel"] = "true", ["QuantizeActivationType"] = "INT8", ["QuantizeExcludeOpTypes"] = " Add ; Concat;" };
        var problems = new List<QuantizeSettings.Problem>();

        var values = QuantizeSettings.Resolve(model, defaults, problems);

        Assert.Empty(problems);
        Assert.Equal("false", values["QuantizePerChannel"]);
        Assert.Equal("int8", values["QuantizeActivationType"]);
        Assert.Equal("Add;Concat", values["QuantizeExcludeOpTypes"]);
        Assert.Equal("auto", values["QuantizeMode"]);
        Assert.Equal("", values["QuantizeWeightType"]);
    }

    [Theory]
    [InlineData("QuantizeMode", "fast", "auto, static, dynamic, fp16, weight4")]
    [InlineData("QuantizeBlockSize", "48", "16, 32, 64, 128, 256")]
    [InlineData("QuantizeAccuracyLevel", "int8", "0, 1, 2, 3, 4")]
    [InlineData("QuantizeWeightType", "int4", "int8, uint8")]
    [InlineData("QuantizePerChannel", "yes", "true, false")]
    [InlineData("QuantizeMaxCalibrationSamples", "0", "a whole number greater than 0")]
    [InlineData("QuantizeCalibrationMethod", "kl", "minmax, percentile, entropy, mse")]
    [InlineData("QuantizeCalibrationPercentile", "-5", "a number greater than 0 (e.g. 1.5)")]
    [InlineData("QuantizeReduceRange", "7", "true, false")]
    public void Invalid_values_name_the_setting_its_source_and_the_allowed_values(string setting, string value, string allowed)
    {
        var problems = new List<QuantizeSettings.Problem>();
        QuantizeSettings.Resolve(new TaskItem("Models/m.onnx", new Dictionary<string, string> { [setting] = value }), new Dictionary<string, string>(), problems);

        var problem = Assert.Single(problems);
        Assert.Equal(setting, problem.Setting);
        Assert.Contains($"'{value}'", problem.Message);
        Assert.Contains("metadata on 'Models/m.onnx'", problem.Message);
        Assert.EndsWith($"Allowed values: {allowed}.", problem.Message);
    }

    [Fact]
    public void Worker_arguments_follow_the_contract_and_the_response_file_quotes_spaces()
    {
        var values = new Dictionary<string, string>
        {
            ["QuantizePerChannel"] = "false",
            ["QuantizeExcludeNodes"] = "conv 1;conv2",
            ["QuantizeMaxCalibrationSamples"] = "8",
            ["QuantizeMode"] = "auto",
        };
        var args = QuantizeSettings.WorkerArguments("/m/a b.onnx", "/o/a.onnx", "/m/a.calibration/", "/o/r.json", values);

        Assert.Equal(
            ["/m/a b.onnx", "--output", "/o/a.onnx", "--calibration", "/m/a.calibration/", "--report", "/o/r.json",
             "--per-channel", "false", "--exclude-nodes", "conv 1", "--exclude-nodes", "conv2", "--max-calibration-samples", "8"],
            args);
        Assert.StartsWith("\"/m/a b.onnx\"\n--output\n", QuantizeSettings.ResponseFile(args));
    }

    [Fact]
    public void Every_setting_is_declared_in_the_props_and_passed_as_a_project_default_by_the_targets()
    {
        var props = System.Xml.Linq.XDocument.Load(Path.Combine(Repo.Root, "build", "Quantize.MSBuild.props"));
        var targets = System.Xml.Linq.XDocument.Load(Path.Combine(Repo.Root, "build", "Quantize.MSBuild.targets"));
        var declared = props.Descendants().Where(e => e.Parent?.Name.LocalName == "PropertyGroup").Select(e => e.Name.LocalName).ToHashSet();
        var passed = targets.Descendants().Where(e => e.Name.LocalName == "_QuantizeDefault").Select(e => (string?)e.Attribute("Include")).ToList();

        foreach (var setting in SettingSpecs.All)
        {
            Assert.True(declared.Contains(setting.Name), $"{setting.Name} is not declared in Quantize.MSBuild.props");
            Assert.True(passed.Contains(setting.Name), $"{setting.Name} is not passed as a _QuantizeDefault in Quantize.MSBuild.targets");
        }

        // And nothing else: a project default without a row would be dropped without a word.
        Assert.Equal(SettingSpecs.All.Select(s => s.Name).Order(), passed.Order());
    }

    [Fact]
    public void The_targets_set_the_per_model_metadata_the_tasks_read_and_tell_sample_lists_by_the_shared_extension()
    {
        string text = File.ReadAllText(Path.Combine(Repo.Root, "build", "Quantize.MSBuild.targets"));
        var targets = System.Xml.Linq.XDocument.Parse(text);
        var set = targets.Descendants().Where(e => e.Parent?.Name.LocalName == "_QuantizeModel").Select(e => e.Name.LocalName).ToHashSet();

        string[] read = [MetadataNames.QuantizedPath, MetadataNames.ReportPath, MetadataNames.HtmlReportPath, MetadataNames.LogPath,
            MetadataNames.SettingsPath, MetadataNames.ResponseFilePath, MetadataNames.CalibrationDir, MetadataNames.ValidationDir];
        Assert.All(read, name => Assert.Contains(name, set));
        // MSBuild cannot call SampleLists.IsList, so the targets spell its extension (a list is resolved as a file, a folder as a directory).
        var compared = System.Text.RegularExpressions.Regex.Matches(text, @"GetExtension\([^)]*\)\)\.ToLowerInvariant\(\)\)' [!=]= '(?<extension>[^']*)'");
        Assert.NotEmpty(compared);
        Assert.All(compared, m => Assert.Equal(SampleLists.Extension, m.Groups["extension"].Value));
    }

    [Fact]
    public void Calibration_settings_are_normalised_and_become_worker_options()
    {
        var model = new TaskItem("Models/m.onnx", new Dictionary<string, string> { ["QuantizeCalibrationMethod"] = "Percentile", ["QuantizeReduceRange"] = "TRUE" });
        var defaults = new Dictionary<string, string> { ["QuantizeCalibrationPercentile"] = "99.99", ["QuantizeSymmetricActivations"] = "false", ["QuantizeSaturationAwareRanges"] = "false" };
        var problems = new List<QuantizeSettings.Problem>();

        var values = QuantizeSettings.Resolve(model, defaults, problems);
        var args = QuantizeSettings.WorkerArguments("/m/m.onnx", "/o/m.onnx", "/m/m.calibration/", null, values);

        Assert.Empty(problems);
        Assert.Equal(
            ["/m/m.onnx", "--output", "/o/m.onnx", "--calibration", "/m/m.calibration/", "--calibration-method", "percentile", "--calibration-percentile", "99.99",
             "--symmetric-activations", "false", "--saturation-aware-ranges", "false", "--reduce-range", "true"],
            args);
    }

    [Fact]
    public void Accuracy_gate_settings_are_normalised_and_become_worker_options()
    {
        var model = new TaskItem("Models/m.onnx", new Dictionary<string, string>
        {
            ["QuantizeAccuracyChecks"] = " SQNR>=20 ; drop:PSNR@Output_1 <= 0.5;; top1-agreement>=95;Top5>=90 ",
            ["QuantizeOnAccuracyFailure"] = "Ship-FP32",
            ["QuantizeBinaryThreshold"] = "-0.25",
        });
        var defaults = new Dictionary<string, string>
        {
            ["QuantizeAccuracyChecks"] = "sqnr>=99", // overridden by the metadata
            ["QuantizeMinSpeedup"] = "1.5",
            ["QuantizeAccuracyMetric"] = "Top1",
            ["QuantizeMaxAccuracyDrop"] = "0.5",
        };
        var problems = new List<QuantizeSettings.Problem>();

        var values = QuantizeSettings.Resolve(model, defaults, problems);

        Assert.Empty(problems);
        Assert.Equal("sqnr>=20;drop:psnr@Output_1<=0.5;top1-agreement>=95;top5>=90", values["QuantizeAccuracyChecks"]);
        Assert.Equal("ship-fp32", values["QuantizeOnAccuracyFailure"]);
        var args = QuantizeSettings.WorkerArguments("/m/m.onnx", "/o/m.onnx", "/m/m.calibration/", null, values, "/m/m.validation/");
        Assert.Equal(
            ["/m/m.onnx", "--output", "/o/m.onnx", "--calibration", "/m/m.calibration/", "--validation", "/m/m.validation/",
             "--check", "sqnr>=20", "--check", "drop:psnr@Output_1<=0.5", "--check", "top1-agreement>=95", "--check", "top5>=90",
             "--on-accuracy-failure", "ship-fp32", "--min-speedup", "1.5", "--binary-threshold", "-0.25", "--check", "drop:top1<=0.5"],
            args);
    }

    [Theory]
    [InlineData("sqnr=>10", "sqnr=>10")]
    [InlineData("sqnr>=10;accuracy>=0.9", "accuracy>=0.9")]
    [InlineData("sqnr>10", "sqnr>10")]
    [InlineData("sqnr>=ten", "sqnr>=ten")]
    [InlineData("drop:psnr>=0.5", "drop:psnr>=0.5")]
    [InlineData("drop:sqnr<=1", "drop:sqnr<=1")]
    [InlineData("psnr@>=30", "psnr@>=30")]
    [InlineData("cosine>=NaN", "cosine>=NaN")]
    [InlineData("top0>=1", "top0>=1")]
    [InlineData("drop:top5-agreement<=1", "drop:top5-agreement<=1")]
    public void Malformed_accuracy_checks_name_the_entry_and_the_grammar(string value, string wrongEntry)
    {
        var problems = new List<QuantizeSettings.Problem>();
        QuantizeSettings.Resolve(new TaskItem("Models/m.onnx"), new Dictionary<string, string> { ["QuantizeAccuracyChecks"] = value }, problems);

        var problem = Assert.Single(problems);
        Assert.Equal("QuantizeAccuracyChecks", problem.Setting);
        Assert.Contains($"'{wrongEntry}' for QuantizeAccuracyChecks (project property", problem.Message);
        Assert.Contains("<metric>[@<output>]>=<value>, <metric>[@<output>]<=<value> or drop:<metric>[@<output>]<=<value>", problem.Message);
        Assert.Contains("vs FP32: sqnr, cosine, psnr, max-abs-error, top<k>-agreement (e.g. top1-agreement); vs ground truth (expected/<output>.npy or label.txt, also for drop:): psnr, top<k> (e.g. top1, top5), mse, mae, f1, precision, recall", problem.Message);
    }

    [Theory]
    [InlineData("QuantizeOnAccuracyFailure", "warn", "error, ship-fp32")]
    [InlineData("QuantizeMinSpeedup", "0", "a number greater than 0")]
    [InlineData("QuantizeMinSpeedup", "fast", "a number greater than 0")]
    [InlineData("QuantizeAccuracyMetric", "sqnr", "psnr, top1, top5, mse, mae, f1, precision, recall")]
    [InlineData("QuantizeBinaryThreshold", "half", "a number (e.g. 0.3)")]
    [InlineData("QuantizeMaxAccuracyDrop", "-1", "a number, 0 or more")]
    public void Invalid_accuracy_gate_values_are_rejected(string setting, string value, string allowed)
    {
        var problems = new List<QuantizeSettings.Problem>();
        var metadata = new Dictionary<string, string> { [setting] = value };
        // The pair is complete, so only the value itself can be wrong.
        metadata.TryAdd("QuantizeAccuracyMetric", "psnr");
        metadata.TryAdd("QuantizeMaxAccuracyDrop", "0.5");
        QuantizeSettings.Resolve(new TaskItem("Models/m.onnx", metadata), new Dictionary<string, string>(), problems);

        var problem = Assert.Single(problems);
        Assert.Equal(setting, problem.Setting);
        Assert.Contains($"'{value}' for {setting} (metadata on 'Models/m.onnx')", problem.Message);
        Assert.Contains(allowed, problem.Message);
    }

    [Theory]
    [InlineData("QuantizeAccuracyMetric", "psnr", "QuantizeMaxAccuracyDrop")]
    [InlineData("QuantizeMaxAccuracyDrop", "0.3", "QuantizeAccuracyMetric")]
    public void Half_of_the_metric_and_drop_pair_is_an_error_naming_the_missing_half(string setting, string value, string missing)
    {
        var problems = new List<QuantizeSettings.Problem>();
        QuantizeSettings.Resolve(new TaskItem("Models/m.onnx", new Dictionary<string, string> { [setting] = value }), new Dictionary<string, string>(), problems);

        var problem = Assert.Single(problems);
        Assert.Equal(missing, problem.Setting);
        Assert.StartsWith($"{setting} '{value}' is set for 'Models/m.onnx' but {missing} is not", problem.Message);
    }

    [Fact]
    public void Declared_targets_are_normalised_and_passed_to_the_worker_as_target_options()
    {
        var problems = new List<QuantizeSettings.Problem>();
        var values = QuantizeSettings.Resolve(
            new TaskItem("Models/m.onnx"), new Dictionary<string, string> { ["QuantizeTargets"] = " X64 ;arm64;; ARM64;x64-VNNI " }, problems);

        Assert.Empty(problems);
        // Lower case, sorted, de-duplicated: the same set always writes the same settings file.
        Assert.Equal("arm64;x64;x64-vnni", values["QuantizeTargets"]);
        var args = QuantizeSettings.WorkerArguments("/m/m.onnx", "/o/m.onnx", null, null, values);
        Assert.Equal(["/m/m.onnx", "--output", "/o/m.onnx", "--target", "arm64", "--target", "x64", "--target", "x64-vnni"], args);

        // Unset: no --target, the engine's portable default.
        var portable = QuantizeSettings.Resolve(new TaskItem("Models/m.onnx"), new Dictionary<string, string>(), problems);
        Assert.Equal("", portable["QuantizeTargets"]);
        Assert.DoesNotContain("--target", QuantizeSettings.WorkerArguments("/m/m.onnx", "/o/m.onnx", null, null, portable));
    }

    [Theory]
    [InlineData("x64;x86", "metadata", "'x86' for QuantizeTargets (metadata on '{0}')")]
    [InlineData("arm64; ARMv7 ", "property", "'ARMv7' for QuantizeTargets (project property, used for '{0}')")]
    public void Unknown_target_is_a_coded_error_naming_the_model_the_entry_and_the_allowed_targets(string value, string where, string expected)
    {
        var prepare = Prepare(perChannel: "");
        if (where == "metadata")
        {
            prepare.Models[0].SetMetadata("QuantizeTargets", value);
        }
        else
        {
            prepare.Defaults = [new TaskItem("QuantizeTargets", new Dictionary<string, string> { ["Value"] = value })];
        }

        Assert.False(prepare.Execute());

        var error = Assert.Single(_engine.Errors);
        Assert.Equal("QNT3001", error.Code);
        Assert.Contains(string.Format(expected, ModelPath), error.Message);
        Assert.EndsWith("Allowed values: a ';'-separated list of x64, x64-vnni, arm64.", error.Message);
        Assert.Empty(prepare.ResolvedModels);
        Assert.False(File.Exists(Output + ".settings"));
    }

    [Fact]
    public void Target_metadata_overrides_the_project_property_in_the_settings_file_and_the_worker_arguments()
    {
        var prepare = Prepare(perChannel: "");
        prepare.Defaults = [new TaskItem("QuantizeTargets", new Dictionary<string, string> { ["Value"] = "x64;arm64" })];
        Assert.True(prepare.Execute(), Describe());
        Assert.Contains("\nQuantizeTargets=arm64;x64\n", File.ReadAllText(Output + ".settings"));

        var overridden = Prepare(perChannel: "");
        overridden.Defaults = prepare.Defaults;
        overridden.Models[0].SetMetadata("QuantizeTargets", "X64-Vnni");
        Assert.True(overridden.Execute(), Describe());

        var model = Assert.Single(overridden.ResolvedModels);
        Assert.Equal("x64-vnni", model.GetMetadata("QuantizeTargets"));
        Assert.Contains("\nQuantizeTargets=x64-vnni\n", File.ReadAllText(Output + ".settings"));
        var args = QuantizeSettings.WorkerArguments(ModelPath, Output, null, null, SettingSpecs.All.ToDictionary(s => s.Name, s => model.GetMetadata(s.Name)));
        Assert.Equal([ModelPath, "--output", Output, "--mode", "dynamic", "--target", "x64-vnni"], args);
    }

    /// <summary>
    /// The targets' RID default, evaluated and run by MSBuild itself (about a second: only discovery and the
    /// prepare step run, with the task assembly this test was built with; no package, no restore, no worker).
    /// </summary>
    [Theory]
    [InlineData("<RuntimeIdentifiers>linux-x64;linux-arm64</RuntimeIdentifiers>", "arm64;x64")]
    [InlineData("<RuntimeIdentifiers>\n  win-x86;\n  linux-musl-x64 ;\n  linux-arm\n</RuntimeIdentifiers>", "x64")]
    [InlineData("<RuntimeIdentifier>osx-arm64</RuntimeIdentifier><RuntimeIdentifiers>osx-arm64;osx-x64</RuntimeIdentifiers>", "arm64")]
    [InlineData("", "")]
    [InlineData("<RuntimeIdentifiers>linux-x64</RuntimeIdentifiers><QuantizeTargets>ARM64</QuantizeTargets>", "arm64")]
    public void Targets_default_from_the_runtime_identifiers_and_metadata_still_wins(string properties, string expected)
    {
        File.WriteAllText(Path.Combine(_dir, "Directory.Build.props"), "<Project />");
        File.WriteAllText(Path.Combine(_dir, "Directory.Build.targets"), "<Project />");
        string project = Path.Combine(_dir, "App.csproj");
        // The package's import order: its props before the project body, its targets after the SDK's.
        File.WriteAllText(project, $"""
            <Project>
              <Import Project="Sdk.props" Sdk="Microsoft.NET.Sdk" />
              <Import Project="{Path.Combine(Repo.Root, "build", "Quantize.MSBuild.props")}" />
              <PropertyGroup>
                <TargetFramework>net10.0</TargetFramework>
                {properties}
              </PropertyGroup>
              <ItemGroup>
                <None Update="Models/a.onnx" CopyToOutputDirectory="PreserveNewest" />
                <None Update="Models/b.onnx" CopyToOutputDirectory="PreserveNewest" QuantizeTargets="x64-vnni" />
              </ItemGroup>
              <Import Project="Sdk.targets" Sdk="Microsoft.NET.Sdk" />
              <Import Project="{Path.Combine(Repo.Root, "build", "Quantize.MSBuild.targets")}" />
            </Project>
            """);
        Directory.CreateDirectory(Path.Combine(_dir, "Models"));
        File.WriteAllText(Path.Combine(_dir, "Models", "a.onnx"), "fp32");
        File.WriteAllText(Path.Combine(_dir, "Models", "b.onnx"), "fp32");

        var run = DotNet.Run(_dir, null, "msbuild", project, "-t:_QuantizeCollectModels;_QuantizePrepare", "-nodeReuse:false",
            "-p:_QuantizeTaskAssembly=" + typeof(PrepareQuantizeModels).Assembly.Location);

        Assert.True(run.ExitCode == 0, run.Output);
        string Settings(string model) => File.ReadAllText(Directory.GetFiles(Path.Combine(_dir, "obj"), model + ".settings", SearchOption.AllDirectories).Single());
        Assert.Contains($"\nQuantizeTargets={expected}\n", Settings("a.onnx"));
        Assert.Contains("\nQuantizeTargets=x64-vnni\n", Settings("b.onnx"));
    }

    [Theory]
    [InlineData("/x/m.onnx: warning QNT2002: kept FP32", "/x/m.onnx", false, "QNT2002", "kept FP32")]
    [InlineData(@"C:\x\m.onnx: error QNT1002: not an ONNX model: bad", @"C:\x\m.onnx", true, "QNT1002", "not an ONNX model: bad")]
    [InlineData("error QNT1201: bad option", null, true, "QNT1201", "bad option")]
    public void Canonical_worker_lines_are_parsed(string line, string? file, bool isError, string code, string text)
    {
        var parsed = WorkerLine.TryParseDiagnostic(line);

        Assert.NotNull(parsed);
        Assert.Equal(file, parsed.File);
        Assert.Equal(isError, parsed.IsError);
        Assert.Equal(code, parsed.Code);
        Assert.Equal(text, parsed.Text);
        Assert.Null(WorkerLine.TryParseDiagnostic("Calibrating: 3/64 samples"));
    }

    [UnixFact]
    public void Successful_run_logs_the_summary_high_and_persists_warnings_that_replay_on_noop_builds()
    {
        var task = Quantize(Worker("""
            echo "Calibrating: 1/2 samples"
            echo "$model: warning QNT2004: 2 groups left unfused" >&2
            printf 'int8' > "$out"
            echo "Quantize summary: m.onnx: 1.00 MB -> 0.25 MB"
            """));

        Assert.True(task.Execute(), Describe());
        Assert.Equal("int8", File.ReadAllText(Output));
        Assert.Contains(_engine.Messages, m => m.Importance == MessageImportance.High && m.Message == "Quantize summary: m.onnx: 1.00 MB -> 0.25 MB");
        Assert.Contains(_engine.Messages, m => m.Importance == MessageImportance.Normal && m.Message == "Calibrating: 1/2 samples");
        var warning = Assert.Single(_engine.Warnings);
        Assert.Equal(("QNT2004", ModelPath), (warning.Code, warning.File));
        Assert.Equal(Output, task.QuantizedModel!.ItemSpec);
        Assert.Contains("ORT_DISABLE_TELEMETRY=1", task.EnvironmentVariables);
        Assert.Contains($"--report\n{Output}.report.json\n--html-report\n{Output}.report.html\n", File.ReadAllText(Output + ".rsp"));

        var replayEngine = new MockBuildEngine();
        Assert.True(new ReplayQuantizeWarnings { BuildEngine = replayEngine, LogFiles = [new TaskItem(Output + ".log")] }.Execute());
        var replayed = Assert.Single(replayEngine.Warnings);
        Assert.Equal(("QNT2004", ModelPath, "2 groups left unfused"), (replayed.Code, replayed.File, replayed.Message));
        Assert.Contains(replayEngine.Messages, m => m.Message!.EndsWith("(up to date)", StringComparison.Ordinal));
    }

    [UnixFact]
    public void User_error_is_reported_once_with_its_code_and_no_output_is_left()
    {
        var task = Quantize(Worker("""
            printf 'partial' > "$out"
            echo "$model: error QNT1002: The file is not an ONNX model." >&2
            exit 1
            """));
        File.WriteAllText(Output, "stale");

        Assert.False(task.Execute());
        var error = Assert.Single(_engine.Errors);
        Assert.Equal(("QNT1002", ModelPath), (error.Code, error.File));
        Assert.False(File.Exists(Output));
        Assert.False(File.Exists(Output + ".log"));
    }

    [UnixTheory]
    [InlineData("exit 2", "2")]
    [InlineData("kill -SEGV $$", "139")]
    public void Crash_is_a_coded_error_with_a_repro_command(string script, string exitCode)
    {
        var task = Quantize(Worker(script));

        Assert.False(task.Execute());
        var error = Assert.Single(_engine.Errors);
        Assert.Equal("QNT3204", error.Code);
        Assert.Contains($"exit code {exitCode}", error.Message);
        Assert.Contains("quantize @", error.Message);
        Assert.False(File.Exists(Output));
    }

    [UnixFact]
    public void Hung_worker_is_stopped_at_the_timeout_with_a_coded_error()
    {
        var task = Quantize(Worker("sleep 30"));
        task.TimeoutSeconds = "1";

        var watch = System.Diagnostics.Stopwatch.StartNew();
        Assert.False(task.Execute());

        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(20), watch.Elapsed.ToString());
        Assert.True(_engine.Errors.Any(e => e.Code == "QNT3203" && e.Message!.Contains("QuantizeTimeoutSeconds")),
            string.Join("\n", _engine.Errors.Select(e => e.Code + " " + e.Message).Concat(_engine.Warnings.Select(w => w.Code + " " + w.Message))));
        Assert.False(File.Exists(Output));
    }

    [UnixFact]
    public void Success_without_output_file_is_an_error()
    {
        Assert.False(Quantize(Worker("echo 'Quantize summary: nothing'")).Execute());
        Assert.Equal("QNT3205", Assert.Single(_engine.Errors).Code);
    }

    [UnixFact]
    public void Missing_worker_and_invalid_timeout_are_coded_errors()
    {
        var task = Quantize(Path.Combine(_dir, "nope.dll"));
        Assert.False(task.Execute());
        Assert.Equal("QNT3201", Assert.Single(_engine.Errors).Code);

        var engine = new MockBuildEngine();
        var badTimeout = Quantize(Worker("exit 0"));
        badTimeout.BuildEngine = engine;
        badTimeout.TimeoutSeconds = "soon";
        Assert.False(badTimeout.Execute());
        Assert.Contains("QuantizeTimeoutSeconds", Assert.Single(engine.Errors).Message);
    }

    [UnixFact]
    public void Failed_accuracy_check_fails_with_the_model_named_and_leaves_no_output_but_the_report()
    {
        // The worker's error line may name no file: the task names the model.
        var task = Quantize(Worker("""
            printf 'int8' > "$out"
            printf '{}' > "$out.report.json"
            printf '<html>' > "$out.report.html"
            echo "error QNT1401: sqnr 21.3 dB < 80 (check sqnr>=80)" >&2
            exit 1
            """));

        Assert.False(task.Execute());
        var error = Assert.Single(_engine.Errors);
        Assert.Equal(("QNT1401", ModelPath), (error.Code, error.File));
        Assert.False(File.Exists(Output));
        Assert.False(File.Exists(Output + ".log"));
        Assert.True(File.Exists(Output + ".report.json"));
        Assert.True(File.Exists(Output + ".report.html"));
    }

    [UnixFact]
    public void Ship_fp32_accuracy_warning_is_persisted_and_replayed_and_validation_reaches_the_worker()
    {
        string validation = Path.Combine(_dir, "m.validation") + "/";
        var task = Quantize(Worker("""
            grep -qx -- '--validation' "$rsp" || exit 7
            cp "$model" "$out"
            echo "$model: warning QNT2401: sqnr 21.3 dB < 80 (check sqnr>=80): shipped the FP32 model" >&2
            echo "Quantize summary: m.onnx: kept FP32 (accuracy check failed), SQNR 21.3 dB"
            """));
        task.Model.SetMetadata("QuantizeValidationDir", validation);

        Assert.True(task.Execute(), Describe());
        Assert.Contains("--validation\n" + validation + "\n", File.ReadAllText(Output + ".rsp"));
        Assert.Equal(File.ReadAllBytes(ModelPath), File.ReadAllBytes(Output));
        Assert.Equal("QNT2401", Assert.Single(_engine.Warnings).Code);

        var replayEngine = new MockBuildEngine();
        Assert.True(new ReplayQuantizeWarnings { BuildEngine = replayEngine, LogFiles = [new TaskItem(Output + ".log")] }.Execute());
        Assert.Equal(("QNT2401", ModelPath), (Assert.Single(replayEngine.Warnings).Code, replayEngine.Warnings[0].File));
    }

    [Fact]
    public void Prepare_passes_an_existing_validation_folder_and_makes_its_files_inputs()
    {
        string calibration = Path.Combine(_dir, "m.calibration");
        Directory.CreateDirectory(Path.Combine(calibration, "000"));
        File.WriteAllText(Path.Combine(calibration, "000", "input.npy"), "x");
        string validation = Path.Combine(_dir, "m.validation") + "/";

        // No folder: no validation folder for the worker, and checks that cannot run are a warning, not a silent pass.
        var without = Prepare(perChannel: "");
        without.Models[0].SetMetadata("QuantizeValidationDir", validation);
        without.Models[0].SetMetadata("QuantizeAccuracyChecks", "sqnr>=20");
        Assert.True(without.Execute(), Describe());
        Assert.Equal("", Assert.Single(without.ResolvedModels).GetMetadata("QuantizeValidationDir"));
        var warning = Assert.Single(_engine.Warnings);
        Assert.Equal(("QNT3103", ModelPath), (warning.Code, warning.File));
        Assert.Contains("QuantizeAccuracyChecks", warning.Message);
        Assert.Contains(validation, warning.Message);

        Directory.CreateDirectory(Path.Combine(validation, "000", "expected"));
        File.WriteAllText(Path.Combine(validation, "000", "input.npy"), "x");
        File.WriteAllText(Path.Combine(validation, "000", "expected", "output.npy"), "yy");
        var with = Prepare(perChannel: "");
        with.BuildEngine = new MockBuildEngine();
        with.Models[0].SetMetadata("QuantizeValidationDir", validation);
        with.Models[0].SetMetadata("QuantizeAccuracyChecks", "sqnr>=20");
        Assert.True(with.Execute(), Describe());
        Assert.Empty(((MockBuildEngine)with.BuildEngine).Warnings);
        Assert.Equal(validation, Assert.Single(with.ResolvedModels).GetMetadata("QuantizeValidationDir"));
        Assert.Contains(with.Inputs, i => i.ItemSpec.EndsWith(Path.Combine("expected", "output.npy"), StringComparison.Ordinal) && i.GetMetadata("QuantizedPath") == Output);
        Assert.Contains("000/expected/output.npy 2", File.ReadAllText(Output + ".settings"));
    }

    [Fact]
    public void Image_and_sampling_settings_are_normalised_and_become_worker_options()
    {
        var model = new TaskItem("Models/m.onnx", new Dictionary<string, string>
        {
            ["QuantizeImageSize"] = "192X48",
            ["QuantizeImageResize"] = "Fit-Height",
            ["QuantizeImageChannels"] = "BGR",
            ["QuantizeImageMean"] = "0.5",
            ["QuantizeImageStd"] = " 0.229 ; 0.224 ; 0.225 ",
        });
        var defaults = new Dictionary<string, string>
        {
            ["QuantizeCalibrationShuffleSeed"] = "42",
            ["QuantizeImageInterpolation"] = "nearest",
            ["QuantizeImageLayout"] = "NHWC",
            ["QuantizeImageScale"] = "0.00392156862745098",
            ["QuantizeImagePadValue"] = "-1",
            ["QuantizeImageOrientation"] = "Ignore",
        };
        var problems = new List<QuantizeSettings.Problem>();

        var values = QuantizeSettings.Resolve(model, defaults, problems);

        Assert.Empty(problems);
        var args = QuantizeSettings.WorkerArguments("/m/m.onnx", "/o/m.onnx", "/m/subset.txt", null, values);
        Assert.Equal(
            ["/m/m.onnx", "--output", "/o/m.onnx", "--calibration", "/m/subset.txt",
             "--calibration-shuffle-seed", "42", "--image-size", "192x48", "--image-resize", "fit-height", "--image-interpolation", "nearest",
             "--image-layout", "nhwc", "--image-channels", "bgr", "--image-scale", "0.00392156862745098", "--image-mean", "0.5",
             "--image-std", "0.229;0.224;0.225", "--image-pad-value", "-1", "--image-orientation", "ignore"],
            args);
    }

    [Theory]
    [InlineData("QuantizeImageSize", "192x", "<width>x<height> in pixels")]
    [InlineData("QuantizeImageSize", "0x48", "<width>x<height> in pixels")]
    [InlineData("QuantizeImageResize", "zoom", "stretch, letterbox, fit, crop, fit-height")]
    [InlineData("QuantizeImageChannels", "rgba", "rgb, bgr, gray")]
    [InlineData("QuantizeImageLayout", "chw", "nchw, nhwc")]
    [InlineData("QuantizeImageMean", "0.5;0.5", "one number, or one per channel")]
    [InlineData("QuantizeImageStd", "0", "one number greater than 0")]
    [InlineData("QuantizeImageScale", "-1", "a number greater than 0")]
    [InlineData("QuantizeImagePadValue", "gray", "a number")]
    [InlineData("QuantizeImageOrientation", "rotate", "exif, ignore")]
    [InlineData("QuantizeCalibrationShuffleSeed", "1.5", "a whole number")]
    public void Invalid_image_and_sampling_values_are_rejected(string setting, string value, string allowed)
    {
        var problems = new List<QuantizeSettings.Problem>();
        QuantizeSettings.Resolve(new TaskItem("Models/m.onnx", new Dictionary<string, string> { [setting] = value }), new Dictionary<string, string>(), problems);

        var problem = Assert.Single(problems);
        Assert.Equal(setting, problem.Setting);
        Assert.Contains($"Allowed values: {allowed}", problem.Message);
    }

    [Fact]
    public void Prepare_makes_a_sample_list_and_the_files_it_names_inputs()
    {
        string data = Path.Combine(_dir, "photos");
        Directory.CreateDirectory(Path.Combine(data, "cats"));
        File.WriteAllText(Path.Combine(data, "a.png"), "a");
        File.WriteAllText(Path.Combine(data, "b.png"), "bb");
        File.WriteAllText(Path.Combine(data, "cats", "c.png"), "ccc");
        string list = Path.Combine(_dir, "subset.txt");
        // A line no path can hold is the worker's coded error, not a crash of the task.
        File.WriteAllLines(list, ["# two of three photos, and a folder", "photos/a.png", "", "photos/cats", "photos/\0.png"]);
        var prepare = Prepare(perChannel: "");
        prepare.Models[0].SetMetadata("QuantizeCalibrationDir", list);
        prepare.Models[0].SetMetadata("QuantizeCalibrationData", "subset.txt");

        Assert.True(prepare.Execute(), Describe());

        string[] inputs = prepare.Inputs.Select(i => i.ItemSpec).ToArray();
        Assert.Contains(list, inputs);
        Assert.Contains(Path.Combine(data, "a.png"), inputs);
        Assert.Contains(Path.Combine(data, "cats", "c.png"), inputs);
        Assert.DoesNotContain(Path.Combine(data, "b.png"), inputs);
        Assert.Equal(list, Assert.Single(prepare.ResolvedModels).GetMetadata("QuantizeCalibrationDir"));
        // Listed files outside the list's folder keep their full path in the settings file (a new or removed sample re-runs the model).
        string settings = File.ReadAllText(Output + ".settings");
        Assert.Contains("calibration=" + list + "\n", settings, StringComparison.Ordinal);
        Assert.Contains("photos/cats/c.png 3", settings.Replace('\\', '/'), StringComparison.Ordinal);
    }

    [Fact]
    public void Two_models_with_the_same_output_path_are_an_error()
    {
        var prepare = Prepare(perChannel: "");
        prepare.Models = [ModelItem(), ModelItem()];

        Assert.False(prepare.Execute());
        Assert.Equal("QNT3002", Assert.Single(_engine.Errors).Code);
    }

    [Fact]
    public void Prepare_writes_settings_only_when_they_change_and_lists_every_calibration_file()
    {
        string calibration = Path.Combine(_dir, "m.calibration");
        Directory.CreateDirectory(Path.Combine(calibration, "000"));
        File.WriteAllText(Path.Combine(calibration, "000", "input.npy"), "x");
        var prepare = Prepare(perChannel: "true");
        Assert.True(prepare.Execute(), Describe());

        string settings = Output + ".settings";
        Assert.Contains("package=9.9.9", File.ReadAllText(settings));
        Assert.Contains("000/input.npy 1", File.ReadAllText(settings));
        Assert.Contains(prepare.Inputs, i => i.ItemSpec.EndsWith("input.npy", StringComparison.Ordinal) && i.GetMetadata("QuantizedPath") == Output);
        Assert.Equal("static", Assert.Single(prepare.ResolvedModels).GetMetadata("QuantizeMode"));

        File.SetLastWriteTimeUtc(settings, new DateTime(2020, 1, 1, 0, 0, 0, DateTimeKind.Utc));
        Assert.True(Prepare(perChannel: "true").Execute());
        Assert.Equal(2020, File.GetLastWriteTimeUtc(settings).Year);

        Assert.True(Prepare(perChannel: "false").Execute());
        Assert.NotEqual(2020, File.GetLastWriteTimeUtc(settings).Year);
    }

    [Fact]
    public void Prepare_rejects_invalid_values_and_static_mode_without_calibration_and_resolves_auto_to_dynamic_without_it()
    {
        var invalid = Prepare(perChannel: "maybe");
        Assert.False(invalid.Execute());
        var error = Assert.Single(_engine.Errors);
        Assert.Equal("QNT3001", error.Code);
        Assert.Contains("QuantizePerChannel", error.Message);

        var engine = new MockBuildEngine();
        var staticMode = Prepare(perChannel: "");
        staticMode.BuildEngine = engine;
        staticMode.Defaults = [new TaskItem("QuantizeMode", new Dictionary<string, string> { ["Value"] = "static" })];
        Assert.False(staticMode.Execute());
        Assert.Equal("QNT3003", Assert.Single(engine.Errors).Code);

        var autoMode = Prepare(perChannel: "");
        autoMode.BuildEngine = new MockBuildEngine();
        Assert.True(autoMode.Execute());
        var model = Assert.Single(autoMode.ResolvedModels);
        Assert.Equal(("dynamic", ""), (model.GetMetadata("QuantizeMode"), model.GetMetadata("QuantizeCalibrationDir")));
        var args = QuantizeSettings.WorkerArguments(ModelPath, Output, model.GetMetadata("QuantizeCalibrationDir"), null,
            SettingSpecs.All.ToDictionary(s => s.Name, s => model.GetMetadata(s.Name)));
        Assert.Equal([ModelPath, "--output", Output, "--mode", "dynamic"], args);
    }

    private string ModelPath => Path.Combine(_dir, "m.onnx");
    private string Output => Path.Combine(_dir, "obj", "m.onnx");

    private TaskItem ModelItem()
    {
        File.WriteAllText(ModelPath, "fp32 model bytes");
        return new TaskItem(ModelPath, new Dictionary<string, string>
        {
            ["TargetPath"] = "m.onnx",
            ["QuantizedPath"] = Output,
            ["QuantizeReportPath"] = Output + ".report.json",
            ["QuantizeHtmlReportPath"] = Output + ".report.html",
            ["QuantizeLogPath"] = Output + ".log",
            ["QuantizeSettingsPath"] = Output + ".settings",
            ["QuantizeResponseFilePath"] = Output + ".rsp",
            ["QuantizeCalibrationDir"] = Path.Combine(_dir, "m.calibration") + "/",
        });
    }

    private QuantizeModel Quantize(string worker)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Output)!);
        return new QuantizeModel { BuildEngine = _engine, Model = ModelItem(), DotNetHostPath = "/bin/sh", WorkerPath = worker, TimeoutSeconds = "60" };
    }

    private PrepareQuantizeModels Prepare(string perChannel) => new()
    {
        BuildEngine = _engine,
        Models = [ModelItem()],
        Defaults = [new TaskItem("QuantizePerChannel", new Dictionary<string, string> { ["Value"] = perChannel })],
        PackageVersion = "9.9.9",
    };

    /// <summary>A fake worker: $model and $out are read from the response file like the real one would.</summary>
    private string Worker(string body)
    {
        string path = Path.Combine(_dir, "worker-" + Guid.NewGuid().ToString("N")[..6] + ".sh");
        File.WriteAllText(path, "rsp=\"${2#@}\"\nmodel=$(head -n 1 \"$rsp\")\nout=$(sed -n '/^--output$/{n;p;}' \"$rsp\")\n" + body + "\n");
        return path;
    }

    private string Describe() => string.Join("\n", _engine.Errors.Select(e => $"error {e.Code}: {e.Message}"));
}
