using System.Text;
using System.Text.RegularExpressions;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Quantize.MSBuild.Tests.Infrastructure;

namespace Quantize.MSBuild.Tests;

/// <summary>
/// samples/SuperResolution itself, built and run as build/build-sample.sh does, from a copy that references the packed
/// package: its settings (uint8 inputs and outputs, the PSNR gate on its validation photos) and its Program.cs as they are
/// in the repository. ONNX Runtime, which the app references, comes from the NuGet folder the repository restored into
/// (a fallback folder: nothing is downloaded or copied into the test's cache).
/// </summary>
[Collection(PackageCollection.Name)]
public sealed partial class SampleProjectTests(PackageFixture fixture)
{
    private static string Sample => Path.Combine(Repo.Root, "samples", "SuperResolution");

    [Fact]
    public void The_SuperResolution_sample_ships_a_uint8_model_that_passes_its_gate_and_its_app_upscales_the_bytes()
    {
        TestProject.RunScenario(fixture, "sample", folder =>
        {
            var app = CopySample(Path.Combine(folder, "SuperResolution"));

            var build = app.Build();

            Assert.True(build.Succeeded, build.ToString());
            string summary = Assert.Single(build.Summaries);
            Assert.Matches(@"\d+ validation sample\(s\): psnr [\d.]+ -> [\d.]+ dB \(drop [\d.]+ \[[^\]]+\] <= 1: ok\)", summary);
            string quantized = Path.Combine(app.QuantizeDir, "Models", "waifu2x.onnx");
            string shipped = Path.Combine(app.BinDir, "Models", "waifu2x.onnx");
            Assert.Equal(TestProject.Sha256(quantized), TestProject.Sha256(shipped));
            using (var session = new InferenceSession(shipped))
            {
                Assert.Equal(TensorElementType.UInt8, Assert.Single(session.InputMetadata.Values).ElementDataType);
                var (name, outputInfo) = Assert.Single(session.OutputMetadata);
                Assert.Equal(TensorElementType.UInt8, outputInfo.ElementDataType);
                Assert.Contains($"quantize.output.{name}.scale", session.ModelMetadata.CustomMetadataMap.Keys);
            }

            // The app as the README runs it: bytes in, the output dequantized from the metadata, a PPM out.
            string ppm = Path.Combine(folder, "upscaled.ppm");
            var run = DotNet.Run(app.BinDir, null, Path.Combine(app.BinDir, "SuperResolution.dll"), Path.Combine(app.BinDir, "sample-input.npy"), ppm);
            Assert.True(run.ExitCode == 0, run.Output);
            Assert.Contains("Super-resolved 1x3x96x96 -> 1x3x96x96 in ", run.Output, StringComparison.Ordinal);
            Assert.Contains($"Model: {shipped} (", run.Output, StringComparison.Ordinal);

            // Its image is the FP32 model's, up to INT8's error: a wrong grid (scale or zero point) would be far off.
            byte[] image = File.ReadAllBytes(ppm);
            byte[] header = Encoding.ASCII.GetBytes("P6\n96 96\n255\n");
            Assert.Equal(header, image[..header.Length]);
            double psnr = Psnr(image[header.Length..], Fp32Pixels(Path.Combine(Sample, "Models", "waifu2x.onnx"), Path.Combine(Sample, "sample-input.npy")));
            Assert.True(psnr > 30, $"the app's image is {psnr:F1} dB PSNR from the FP32 model's");
        });
    }

    /// <summary>Copies the sample's project, code, input and models (not its bin/ and obj/) and points it at the test feed's package.</summary>
    private TestProject CopySample(string target)
    {
        foreach (string file in Directory.GetFiles(Sample).Concat(Directory.GetFiles(Path.Combine(Sample, "Models"), "*", SearchOption.AllDirectories)))
        {
            string copy = Path.Combine(target, Path.GetRelativePath(Sample, file));
            Directory.CreateDirectory(Path.GetDirectoryName(copy)!);
            File.Copy(file, copy);
        }

        string project = Path.Combine(target, "SuperResolution.csproj");
        string text = File.ReadAllText(project);
        string pinned = PackageVersion().Replace(text, $"Include=\"Quantize.MSBuild\" Version=\"{fixture.Version}\"");
        Assert.NotEqual(text, pinned);
        File.WriteAllText(project, pinned);

        // The scenario's nuget.config (the test feed, the fixture's cache) plus the folder ONNX Runtime was restored into for this repository.
        string restored = Environment.GetEnvironmentVariable("NUGET_PACKAGES") is { Length: > 0 } set ? set
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        Assert.True(Directory.Exists(Path.Combine(restored, "microsoft.ml.onnxruntime")), $"ONNX Runtime is not in {restored}: restore the solution first");
        File.WriteAllText(Path.Combine(target, "nuget.config"), $"""
            <?xml version="1.0" encoding="utf-8"?>
            <configuration>
              <fallbackPackageFolders>
                <add key="repository-restore" value="{restored}" />
              </fallbackPackageFolders>
            </configuration>
            """);
        return TestProject.Existing(fixture, target, "SuperResolution");
    }

    /// <summary>The FP32 model's image for the sample's input bytes (x = u / 255), as the app would write it.</summary>
    private static byte[] Fp32Pixels(string model, string npy)
    {
        byte[] file = File.ReadAllBytes(npy);
        int headerLength = BitConverter.ToUInt16(file, 8);
        float[] input = file[(10 + headerLength)..].Select(b => b / 255f).ToArray();
        using var session = new InferenceSession(model);
        using var value = OrtValue.CreateTensorValueFromMemory(input, [1, 3, 96, 96]);
        using var runOptions = new RunOptions();
        using var outputs = session.Run(runOptions, new Dictionary<string, OrtValue> { [session.InputNames[0]] = value }, session.OutputNames);
        float[] chw = outputs[0].GetTensorDataAsSpan<float>().ToArray();
        var pixels = new byte[chw.Length];
        for (int i = 0; i < chw.Length; i++)
        {
            // CHW to the PPM's HWC order.
            int c = i / (96 * 96), p = i % (96 * 96);
            pixels[(p * 3) + c] = (byte)Math.Clamp(MathF.Round(chw[i] * 255f), 0f, 255f);
        }

        return pixels;
    }

    private static double Psnr(byte[] a, byte[] b)
    {
        Assert.Equal(a.Length, b.Length);
        double mse = a.Zip(b, (x, y) => (double)(x - y) * (x - y)).Average();
        return mse == 0 ? double.PositiveInfinity : 10 * Math.Log10(255.0 * 255.0 / mse);
    }

    [GeneratedRegex("Include=\"Quantize.MSBuild\" Version=\"[^\"]+\"")]
    private static partial Regex PackageVersion();
}
