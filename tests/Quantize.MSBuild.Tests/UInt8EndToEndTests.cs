using Microsoft.Build.Logging.StructuredLogger;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Quantize.MSBuild.Tests.Infrastructure;

namespace Quantize.MSBuild.Tests;

/// <summary>
/// QuantizeUInt8Inputs and QuantizeUInt8Outputs in a real project that references the packed package: the model in bin/
/// takes and returns uint8, and when the build falls back to FP32 (here a failed gate under ship-fp32) the model in bin/
/// keeps those tensors and the output grids in its metadata, so the app does not break.
/// </summary>
[Collection(PackageCollection.Name)]
public sealed class UInt8EndToEndTests(PackageFixture fixture)
{
    [Fact]
    public void QuantizeUInt8Inputs_and_Outputs_ship_uint8_tensors_and_the_FP32_fallback_keeps_them()
    {
        TestProject.RunScenario(fixture, "uint8-io", folder =>
        {
            var app = TestProject.Create(fixture, folder, "App", Body(""));
            TestProject.CopySampleModel(Path.Combine(app.Directory, "Models", "waifu2x.onnx"), samples: 2);
            string validation = Path.Combine(app.Directory, "Models", "waifu2x.validation");
            foreach (string sample in new[] { "006", "007" })
            {
                Directory.CreateDirectory(Path.Combine(validation, sample));
                File.Copy(Path.Combine(Repo.SampleCalibration, sample, "input.npy"), Path.Combine(validation, sample, "input.npy"));
            }

            string quantized = Path.Combine(app.QuantizeDir, "Models", "waifu2x.onnx");
            string shipped = Path.Combine(app.BinDir, "Models", "waifu2x.onnx");

            // 1. INT8 ships, taking and returning uint8.
            var build = app.Build();
            Assert.True(build.Succeeded, build.ToString());
            string rsp = File.ReadAllText(quantized + ".rsp");
            Assert.Contains("--uint8-inputs", rsp, StringComparison.Ordinal);
            Assert.Contains("--uint8-outputs", rsp, StringComparison.Ordinal);
            Assert.Equal(TestProject.Sha256(quantized), TestProject.Sha256(shipped));
            var int8 = Contract(shipped);
            Assert.Equal(TensorElementType.UInt8, int8.Input);
            Assert.Equal(TensorElementType.UInt8, int8.Output);
            Assert.True(new FileInfo(shipped).Length < new FileInfo(Repo.SampleModel).Length / 2, "INT8 weights");

            // 2. An impossible check under ship-fp32: FP32 ships (its float weights), with the INT8 model's tensors and grids.
            app.WriteProject(Body("""
                    <QuantizeAccuracyChecks>sqnr&gt;=80</QuantizeAccuracyChecks>
                    <QuantizeOnAccuracyFailure>ship-fp32</QuantizeOnAccuracyFailure>
                """));
            var fallback = app.Build();
            Assert.True(fallback.Succeeded, fallback.ToString());
            Warning kept = Assert.Single(fallback.Warnings, w => w.Code == "QNT2401");
            Assert.Contains("shipped with the same uint8 inputs and outputs as the INT8 model", kept.Text, StringComparison.Ordinal);
            var summary = Assert.Single(fallback.Summaries);
            Assert.Contains("kept FP32", summary);
            Assert.Contains("uint8 inputs and outputs kept", summary);
            Assert.True(new FileInfo(shipped).Length > new FileInfo(Repo.SampleModel).Length, "FP32 weights, and the uint8 front and back ends");
            Assert.Equal(int8, Contract(shipped));
        });

        static string Body(string gate) => $"""
              <PropertyGroup>
                <QuantizeMaxCalibrationSamples>2</QuantizeMaxCalibrationSamples>
                <QuantizeKeepFloatIfSlower>false</QuantizeKeepFloatIfSlower>
                <QuantizeUInt8Inputs>true</QuantizeUInt8Inputs>
                <QuantizeUInt8Outputs>true</QuantizeUInt8Outputs>
            {gate}
              </PropertyGroup>
              <ItemGroup>
                <None Update="Models/waifu2x.onnx" CopyToOutputDirectory="PreserveNewest" />
              </ItemGroup>
            """;
    }

    /// <summary>What the app sees of the model: its tensors' types and shapes and the output's grid from the metadata; it runs on bytes.</summary>
    private static AppContract Contract(string model)
    {
        using var session = new InferenceSession(model);
        var (inputName, input) = Assert.Single(session.InputMetadata);
        var (outputName, output) = Assert.Single(session.OutputMetadata);
        var metadata = session.ModelMetadata.CustomMetadataMap;
        using var bytes = OrtValue.CreateTensorValueFromMemory(new byte[3 * 96 * 96], [1, 3, 96, 96]);
        using var runOptions = new RunOptions();
        using var outputs = session.Run(runOptions, new Dictionary<string, OrtValue> { [inputName] = bytes }, [outputName]);
        Assert.Equal(3 * 96 * 96, outputs[0].GetTensorDataAsSpan<byte>().Length);
        return new AppContract(input.ElementDataType, string.Join(",", input.Dimensions), output.ElementDataType,
            metadata[$"quantize.output.{outputName}.scale"], metadata[$"quantize.output.{outputName}.zero_point"]);
    }

    private sealed record AppContract(TensorElementType Input, string InputShape, TensorElementType Output, string Scale, string ZeroPoint);
}
