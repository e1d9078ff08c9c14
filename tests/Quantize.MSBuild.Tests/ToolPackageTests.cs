using System.Diagnostics;
using System.IO.Compression;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using System.Xml.Linq;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Quantize.MSBuild.Tests.Infrastructure;

namespace Quantize.MSBuild.Tests;

/// <summary>
/// The onnx-quantize .NET tool package, packed by the fixture's one `dotnet pack` beside Quantize.MSBuild: installed
/// from that feed with `dotnet tool install` (nothing else as a source, a fresh tool folder) and run through its command
/// as a user runs it, on samples/TextDirection's real model and PNG text lines (ONNX Runtime and SkiaSharp natives
/// from the tool package).
/// </summary>
[Collection(PackageCollection.Name)]
public sealed class ToolPackageTests(PackageFixture fixture)
{
    private const string PackageId = "onnx-quantize";
    private const string Command = "onnx-quantize";

    /// <summary>The natives the tool needs on each desktop RID it runs on (as the MSBuild package's worker).</summary>
    private static readonly string[] OnnxRuntimeNatives =
    [
        "runtimes/linux-x64/native/libonnxruntime.so",
        "runtimes/linux-arm64/native/libonnxruntime.so",
        "runtimes/osx-arm64/native/libonnxruntime.dylib",
        "runtimes/win-x64/native/onnxruntime.dll",
        "runtimes/win-arm64/native/onnxruntime.dll",
    ];

    private static string TextDirectionModels => Path.Combine(Repo.Root, "samples", "TextDirection", "Models");

    private string ToolPackagePath => Path.Combine(fixture.Feed, $"{PackageId}.{fixture.Version}.nupkg");

    [Fact]
    public void The_pack_writes_a_tool_package_with_the_command_and_the_natives_of_the_desktop_runtimes()
    {
        Assert.True(File.Exists(ToolPackagePath), "not packed beside Quantize.MSBuild: " + string.Join(", ", Directory.GetFiles(fixture.Feed).Select(Path.GetFileName)));
        using var package = ZipFile.OpenRead(ToolPackagePath);
        var entries = package.Entries.Select(e => e.FullName).ToList();

        var nuspec = XDocument.Load(package.GetEntry($"{PackageId}.nuspec")!.Open());
        XNamespace ns = nuspec.Root!.Name.Namespace;
        Assert.Equal(fixture.Version, nuspec.Descendants(ns + "version").Single().Value);
        Assert.Equal("DotnetTool", nuspec.Descendants(ns + "packageType").Single().Attribute("name")?.Value);
        // Everything the tool runs is inside the package: no dependencies to restore.
        Assert.Empty(nuspec.Descendants(ns + "dependency"));

        var settings = XDocument.Load(package.GetEntry("tools/net10.0/any/DotnetToolSettings.xml")!.Open());
        var command = settings.Descendants("Command").Single();
        Assert.Equal(Command, command.Attribute("Name")?.Value);
        Assert.Equal("Quantize.Cli.dll", command.Attribute("EntryPoint")?.Value);
        Assert.Contains("tools/net10.0/any/Quantize.Cli.dll", entries);
        Assert.Contains("tools/net10.0/any/Quantize.Onnx.dll", entries);
        Assert.DoesNotContain(entries, e => e.EndsWith("/Quantize.Onnx.xml", StringComparison.Ordinal) || e.EndsWith("/Quantize.Cli.xml", StringComparison.Ordinal));

        foreach (string native in OnnxRuntimeNatives)
        {
            Assert.Contains("tools/net10.0/any/" + native, entries);
        }

        Assert.Contains("tools/net10.0/any/runtimes/linux-x64/native/libSkiaSharp.so", entries);
        // Only the desktop RIDs' natives: no ONNX Runtime android/ios archives (~110 MB), no native symbols, no import libraries.
        var runtimes = entries.Where(e => e.StartsWith("tools/net10.0/any/runtimes/", StringComparison.Ordinal)).ToList();
        Assert.DoesNotContain(runtimes, e => e.Contains("/android/", StringComparison.Ordinal) || e.Contains("/ios/", StringComparison.Ordinal));
        Assert.DoesNotContain(runtimes, e => e.EndsWith(".pdb", StringComparison.Ordinal) || e.EndsWith(".lib", StringComparison.Ordinal));
        Assert.Equal(["linux-arm64", "linux-x64", "osx", "osx-arm64", "win-arm64", "win-x64"],
            runtimes.Select(e => e.Split('/')[4]).Distinct().Order(StringComparer.Ordinal));
    }

    [Fact]
    public void Tool_installs_into_a_tool_path_from_the_packed_folder_and_quantizes_a_real_model()
    {
        TestProject.RunScenario(fixture, "tool-path", folder =>
        {
            // The scenario's nuget.config: the fixture's feed is the only source, the fixture's packages folder the only cache.
            string toolPath = Path.Combine(folder, "tools");
            var install = DotNet.Run(folder, null, "tool", "install", PackageId, "--version", fixture.Version,
                "--tool-path", toolPath, "--configfile", Path.Combine(folder, "nuget.config"));
            Assert.True(install.ExitCode == 0, install.Output);
            Assert.Contains($"Tool '{PackageId}' (version '{fixture.Version}') was successfully installed.", install.Output);
            string tool = Path.Combine(toolPath, OperatingSystem.IsWindows() ? Command + ".exe" : Command);
            Assert.True(File.Exists(tool), install.Output);

            // The usage names the command, not the assembly.
            var help = RunTool(tool, folder, "quantize", "--help");
            Assert.True(help.ExitCode == 0, help.Output);
            Assert.Contains("Usage:" + Environment.NewLine + $"  {Command} quantize <model> [options]", help.Output);
            Assert.DoesNotContain("Quantize.Cli", help.Output);

            string model = Path.Combine(TextDirectionModels, "ppocr_cls.onnx");
            string output = Path.Combine(folder, "out", "ppocr_cls.int8.onnx");
            string report = Path.Combine(folder, "out", "report.json");
            // samples/TextDirection's settings; INT8 whatever this machine's timing says (the sample may ship FP32 when INT8 is not faster).
            var run = RunTool(tool, folder, "quantize", model, "--calibration", Path.Combine(TextDirectionModels, "ppocr_cls.calibration"),
                "--output", output, "--report", report, "--image-size", "192x48", "--image-resize", "fit-height", "--image-channels", "bgr",
                "--image-mean", "0.5", "--image-std", "0.5", "--max-calibration-samples", "8", "--latency-runs", "3",
                "--keep-float-if-slower", "false");

            Assert.True(run.ExitCode == 0, run.Output);
            Assert.Contains("Quantize summary: ppocr_cls.onnx: ", run.Output);
            using (var json = JsonDocument.Parse(File.ReadAllText(report)))
            {
                Assert.Equal("quantized", json.RootElement.GetProperty("output").GetString());
                Assert.Equal(8, json.RootElement.GetProperty("calibrationSamples").GetInt32());
                var kernels = json.RootElement.GetProperty("fusion").GetProperty("integerKernels");
                Assert.True(kernels.GetProperty("QLinearConv").GetInt32() > 0, kernels.ToString());
            }

            // An INT8 model in QDQ form, stamped by the engine, smaller than FP32, that ONNX Runtime loads and runs.
            byte[] bytes = File.ReadAllBytes(output);
            Assert.True(bytes.Length < new FileInfo(model).Length * 3 / 4, $"{bytes.Length} bytes");
            Assert.True(bytes.AsSpan().IndexOf("DequantizeLinear"u8) >= 0, "no DequantizeLinear node");
            Assert.True(File.ReadAllBytes(model).AsSpan().IndexOf("DequantizeLinear"u8) < 0);
            using var session = new InferenceSession(output);
            Assert.Equal("Quantize.Onnx", session.ModelMetadata.CustomMetadataMap["quantize.tool"]);
            var input = new DenseTensor<float>([1, 3, 48, 192]);
            for (int i = 0; i < input.Length; i++)
            {
                input.SetValue(i, (i % 97 / 48f) - 1);
            }

            using var results = session.Run([NamedOnnxValue.CreateFromTensor(session.InputMetadata.Keys.Single(), input)]);
            float[] probabilities = results.Single().AsEnumerable<float>().ToArray();
            Assert.Equal(2, probabilities.Length);
            Assert.All(probabilities, p => Assert.InRange(p, 0f, 1f));
        });
    }

    [Fact]
    public void Tool_installs_globally_with_the_packed_folder_as_an_added_source()
    {
        TestProject.RunScenario(fixture, "tool-global", folder =>
        {
            // The README's line, with the global tools folder (DOTNET_CLI_HOME/.dotnet/tools) moved into the scenario;
            // the scenario's nuget.config clears every other source.
            string home = Path.Combine(folder, "cli-home");
            var install = DotNet.Run(folder, new Dictionary<string, string> { ["DOTNET_CLI_HOME"] = home },
                "tool", "install", "--global", "--add-source", fixture.Feed, PackageId, "--version", fixture.Version);
            Assert.True(install.ExitCode == 0, install.Output);
            string tool = Path.Combine(home, ".dotnet", "tools", OperatingSystem.IsWindows() ? Command + ".exe" : Command);
            Assert.True(File.Exists(tool), install.Output);

            var help = RunTool(tool, folder, "--help");
            Assert.True(help.ExitCode == 0, help.Output);
            Assert.Contains($"  {Command} [command] [options]", help.Output);
        });
    }

    /// <summary>Runs an installed tool's command (its apphost shim) as a shell would, on the .NET that runs these tests.</summary>
    private static DotNet.Result RunTool(string tool, string workingDirectory, params string[] args)
    {
        var start = new ProcessStartInfo(tool)
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        // The shim finds .NET through DOTNET_ROOT, else the machine's install location: name the one running the tests.
        if (string.IsNullOrEmpty(Environment.GetEnvironmentVariable("DOTNET_ROOT")))
        {
            start.Environment["DOTNET_ROOT"] = Path.GetFullPath(Path.Combine(RuntimeEnvironment.GetRuntimeDirectory(), "..", "..", ".."));
        }

        var watch = Stopwatch.StartNew();
        var output = new StringBuilder();
        using var process = new Process { StartInfo = start };
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) { lock (output) { output.AppendLine(e.Data); } } };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) { lock (output) { output.AppendLine(e.Data); } } };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        if (!process.WaitForExit(TimeSpan.FromMinutes(5)))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{tool} {string.Join(' ', args)} did not finish in 5 minutes:\n{output}");
        }

        process.WaitForExit();
        lock (output)
        {
            return new DotNet.Result(process.ExitCode, output.ToString(), watch.Elapsed);
        }
    }
}
