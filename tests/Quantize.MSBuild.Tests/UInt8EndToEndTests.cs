using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Quantize.MSBuild.Tests.Infrastructure;

namespace Quantize.MSBuild.Tests;

/// <summary>QuantizeUInt8Inputs in a real project that references the packed package: the model in bin/ takes uint8 bytes.</summary>
[Collection(PackageCollection.Name)]
public sealed class UInt8EndToEndTests(PackageFixture fixture)
{
    [Fact]
    public void QuantizeUInt8Inputs_ships_a_model_whose_input_is_uint8()
    {
        TestProject.RunScenario(fixture, "uint8-inputs", folder =>
        {
            var app = TestProject.Create(fixture, folder, "App", """
                  <PropertyGroup>
                    <QuantizeMaxCalibrationSamples>2</QuantizeMaxCalibrationSamples>
                    <QuantizeKeepFloatIfSlower>false</QuantizeKeepFloatIfSlower>
                    <QuantizeUInt8Inputs>true</QuantizeUInt8Inputs>
                  </PropertyGroup>
                  <ItemGroup>
                    <None Update="Models/waifu2x.onnx" CopyToOutputDirectory="PreserveNewest" />
                  </ItemGroup>
                """);
            TestProject.CopySampleModel(Path.Combine(app.Directory, "Models", "waifu2x.onnx"), samples: 2);

            var build = app.Build();

            Assert.True(build.Succeeded, build.ToString());
            string quantized = Path.Combine(app.QuantizeDir, "Models", "waifu2x.onnx");
            Assert.Contains("--uint8-inputs", File.ReadAllText(quantized + ".rsp"), StringComparison.Ordinal);
            string shipped = Path.Combine(app.BinDir, "Models", "waifu2x.onnx");
            using var session = new InferenceSession(shipped);
            var input = Assert.Single(session.InputMetadata.Values);
            Assert.Equal(TensorElementType.UInt8, input.ElementDataType);
            Assert.Equal(TestProject.Sha256(quantized), TestProject.Sha256(shipped));
        });
    }
}
