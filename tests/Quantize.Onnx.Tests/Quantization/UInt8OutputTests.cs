using System.Globalization;
using Microsoft.ML.OnnxRuntime;
using Quantize.Onnx.Model;
using Quantize.Onnx.Model.Proto;
using Quantize.Onnx.Tests.TestModels;

namespace Quantize.Onnx.Tests.Quantization;

/// <summary>
/// <see cref="QuantizationOptions.UInt8Outputs"/> through <see cref="Quantizer.Run"/>: each output ships as the uint8
/// output of its final QuantizeLinear, its grid in the metadata; the app's (u − zero point) · scale is the measured
/// model's float output bit for bit (the measured model is the one built without the option: only the settings differ).
/// </summary>
public sealed class UInt8OutputTests : IDisposable
{
    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    [Fact]
    public void Outputs_ship_as_uint8_with_their_grids_in_the_metadata_and_dequantize_to_the_measured_outputs_bit_for_bit()
    {
        var net = TestNets.ConvNet();
        var (model, calibration) = QuantizeTestKit.Prepare(net, _folder.Path);
        var shipped = Path.Combine(_folder.Path, "uint8.onnx");
        var measured = Path.Combine(_folder.Path, "measured.onnx");
        var result = new Quantizer(QuantizeTestKit.Options() with { UInt8Outputs = true }).Run(model, calibration, shipped);
        new Quantizer(QuantizeTestKit.Options()).Run(model, calibration, measured);

        Assert.Equal(OutputKind.Quantized, result.Output);
        Assert.Equal("true", result.Settings["uint8-outputs"]);
        var shippedModel = ModelLoader.Load(shipped);
        Assert.All(shippedModel.Graph.Output, o => Assert.Equal((int)TensorProto.Types.DataType.Uint8, o.Type.TensorType.ElemType));
        Assert.Equal(["conv4", "head"], shippedModel.Graph.Output.Select(o => o.Name));
        var metadata = shippedModel.MetadataProps.ToDictionary(p => p.Key, p => p.Value, StringComparer.Ordinal);

        using var options = new SessionOptions { IntraOpNumThreads = 1 };
        using var bytesSession = new InferenceSession(shipped, options);
        using var floatSession = new InferenceSession(measured, options);
        foreach (var seed in QuantizeTestKit.HeldOutSeeds)
        {
            var input = QuantizeTestKit.Structured(seed, net.InputShape);
            var bytes = Run(bytesSession, net, input, (v, n) => v.GetTensorDataAsSpan<byte>().ToArray().Select(b => (float)b).ToArray());
            var floats = Run(floatSession, net, input, (v, n) => v.GetTensorDataAsSpan<float>().ToArray());
            foreach (var (name, values) in floats)
            {
                var scale = float.Parse(metadata[$"quantize.output.{name}.scale"], CultureInfo.InvariantCulture);
                var zeroPoint = int.Parse(metadata[$"quantize.output.{name}.zero_point"], CultureInfo.InvariantCulture);
                Assert.Equal(values, bytes[name].Select(u => (float)((int)u - zeroPoint) * scale).ToArray());
            }
        }
    }

    [Fact]
    public void An_output_no_QuantizeLinear_produces_is_QNT1532_naming_it()
    {
        var b = new TestModelBuilder(13, 3, false, "sigmoid");
        var x = b.Input(TestNets.ImageInput, TestNets.ImageShape);
        b.Node("Sigmoid", "probability", [b.Conv("conv", x, 3, 4)]);
        b.Output("probability", 1, 4, 16, 16);
        var net = new TestNet(b.Build(), TestNets.ImageInput, TestNets.ImageShape, b.ConvNodes);
        var (model, calibration) = QuantizeTestKit.Prepare(net, _folder.Path);

        var e = Assert.Throws<QuantizeException>(() =>
            new Quantizer(QuantizeTestKit.Options() with { UInt8Outputs = true }).Run(model, calibration, Path.Combine(_folder.Path, "out.onnx")));
        Assert.Equal(ErrorCodes.UInt8OutputNotQuantized, e.Code);
        Assert.Contains("'probability'", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Uint8_outputs_in_dynamic_mode_is_QNT1530()
    {
        var (model, _) = QuantizeTestKit.Prepare(TestNets.ConvNet(), _folder.Path);
        var e = Assert.Throws<QuantizeException>(() =>
            new Quantizer(QuantizeTestKit.Options() with { Mode = QuantizationMode.Dynamic, UInt8Outputs = true }).Run(model, null, Path.Combine(_folder.Path, "out.onnx")));
        Assert.Equal(ErrorCodes.UInt8InputsNeedStatic, e.Code);
        Assert.Contains("--uint8-outputs", e.Message, StringComparison.Ordinal);
    }

    private static Dictionary<string, float[]> Run(InferenceSession session, TestNet net, float[] input, Func<OrtValue, string, float[]> read)
    {
        using var value = OrtValue.CreateTensorValueFromMemory(input, net.InputShape);
        using var runOptions = new RunOptions();
        var names = session.OutputNames.ToArray();
        using var outputs = session.Run(runOptions, new Dictionary<string, OrtValue> { [net.InputName] = value }, names);
        return names.Select((n, i) => (n, read(outputs[i], n))).ToDictionary(p => p.n, p => p.Item2, StringComparer.Ordinal);
    }
}
