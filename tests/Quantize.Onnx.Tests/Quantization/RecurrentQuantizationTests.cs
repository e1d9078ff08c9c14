using Quantize.Onnx.Hardware;
using Quantize.Onnx.Model;
using Quantize.Onnx.Model.Proto;
using Quantize.Onnx.Tests.TestModels;
using Xunit.Abstractions;

namespace Quantize.Onnx.Tests.Quantization;

/// <summary>LSTM layers become ORT's DynamicQuantizeLSTM (int8 weights) in static, dynamic and weight4 mode; ORT runs them close to FP32.</summary>
public sealed class RecurrentQuantizationTests(ITestOutputHelper output) : IDisposable
{
    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    [Theory]
    [InlineData(QuantizationMode.Static, false, true)]
    [InlineData(QuantizationMode.Dynamic, true, true)]
    [InlineData(QuantizationMode.Dynamic, true, false)]
    [InlineData(QuantizationMode.Weight4, false, true)]
    public void An_lstm_becomes_DynamicQuantizeLSTM_with_int8_weights_close_to_fp32(QuantizationMode mode, bool bidirectional, bool perChannel)
    {
        var net = ControlFlowNets.Lstm(bidirectional);
        var (model, calibration) = QuantizeTestKit.Prepare(net, _folder.Path);
        var path = _folder.File("lstm.int8.onnx");

        var result = new Quantizer(QuantizeTestKit.Options() with { Mode = mode, PerChannel = perChannel, BlockSize = 16 })
            .Run(model, mode == QuantizationMode.Static ? calibration : null, path);

        var sqnr = QuantizeTestKit.Sqnr(model, path, net);
        output.WriteLine($"{mode}, bidirectional {bidirectional}, per-channel {perChannel}: head {sqnr["head"]:F1} dB");
        // Weight4 also makes the 16x16 projection 4-bit, whose noise (~16 dB) then dominates.
        Assert.True(sqnr["head"] > (mode == QuantizationMode.Weight4 ? 12 : 25), $"SQNR {sqnr["head"]:F1} dB");
        Assert.DoesNotContain(result.Warnings, w => w.Code == ErrorCodes.StaysFloat);
        Assert.Equal(1, result.Fusion.IntegerKernels.GetValueOrDefault("DynamicQuantizeLSTM"));

        var quantized = ModelLoader.Load(path);
        var lstm = Assert.Single(quantized.Graph.Node, n => n.OpType == "DynamicQuantizeLSTM");
        Assert.Equal("com.microsoft", lstm.Domain);
        Assert.DoesNotContain(quantized.Graph.Node, n => n.OpType == "LSTM");
        Assert.DoesNotContain(quantized.Graph.Initializer, t => t.Name is "LSTM.W" or "LSTM.R"); // float weights gone

        // W [D, 4H, I] float is stored transposed as int8 [D, I, 4H]; scales per gate row or per direction.
        var initializers = quantized.Graph.Initializer.ToDictionary(t => t.Name);
        long directions = bidirectional ? 2 : 1;
        Assert.Equal([directions, 16, 32], initializers[lstm.Input[1]].Dims);
        Assert.Equal([directions, 8, 32], initializers[lstm.Input[2]].Dims);
        Assert.Equal((int)TensorProto.Types.DataType.Int8, initializers[lstm.Input[1]].DataType);
        Assert.Equal(perChannel ? [directions, 32] : [directions], initializers[lstm.Input[8]].Dims);
        Assert.Equal(12, lstm.Input.Count);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Stored_weights_dequantize_to_the_transposed_float_weights_within_half_a_step(bool exactTargetsOnly)
    {
        var net = ControlFlowNets.Lstm();
        var (model, _) = QuantizeTestKit.Prepare(net, _folder.Path);
        var path = _folder.File("lstm.int8.onnx");
        // Portable targets (the default) include x64 without VNNI: each row's same-sign neighbours along K sum to at most 128.
        IReadOnlyList<QuantizeTarget> targets = exactTargetsOnly ? [QuantizeTarget.X64Vnni, QuantizeTarget.Arm64] : QuantizeTargets.Portable;
        new Quantizer(QuantizeTestKit.Options() with { Mode = QuantizationMode.Dynamic, Targets = targets }).Run(model, null, path);

        var w = TensorValues.ReadFloats(net.Model.Graph.Initializer.Single(t => t.Name == "LSTM.W")); // [1, 32, 16]
        var quantized = ModelLoader.Load(path).Graph;
        var lstm = quantized.Node.Single(n => n.OpType == "DynamicQuantizeLSTM");
        var q = quantized.Initializer.Single(t => t.Name == lstm.Input[1]).RawData.Span; // int8 [1, 16, 32]
        var scales = TensorValues.ReadFloats(quantized.Initializer.Single(t => t.Name == lstm.Input[8])); // [1, 32]
        for (int row = 0; row < 32; row++)
        {
            float absMax = Enumerable.Range(0, 16).Max(k => MathF.Abs(w[(row * 16) + k]));
            if (exactTargetsOnly)
            {
                Assert.Equal(absMax / 127f, scales[row], 6);
            }
            else
            {
                Assert.True(scales[row] >= absMax / 127f);
            }

            for (int k = 0; k < 16; k++)
            {
                float dequantized = (sbyte)q[(k * 32) + row] * scales[row];
                Assert.InRange(dequantized - w[(row * 16) + k], -scales[row] / 2 - 1e-6f, scales[row] / 2 + 1e-6f);
                if (!exactTargetsOnly && k + 1 < 16 && Math.Sign((sbyte)q[(k * 32) + row]) == Math.Sign((sbyte)q[((k + 1) * 32) + row]))
                {
                    Assert.True(Math.Abs((sbyte)q[(k * 32) + row]) + Math.Abs((sbyte)q[((k + 1) * 32) + row]) <= 128);
                }
            }
        }
    }

    [Fact]
    public void An_lstm_with_the_default_layout_attribute_becomes_DynamicQuantizeLSTM_without_it()
    {
        var net = ControlFlowNets.Lstm(layout: 0);
        var (model, _) = QuantizeTestKit.Prepare(net, _folder.Path);
        var path = _folder.File("lstm.int8.onnx");

        var result = new Quantizer(QuantizeTestKit.Options() with { Mode = QuantizationMode.Dynamic }).Run(model, null, path);

        Assert.DoesNotContain(result.Warnings, w => w.Code == ErrorCodes.StaysFloat);
        var lstm = Assert.Single(ModelLoader.Load(path).Graph.Node, n => n.OpType == "DynamicQuantizeLSTM");
        Assert.DoesNotContain(lstm.Attribute, a => a.Name == "layout");
        Assert.True(QuantizeTestKit.Sqnr(model, path, net)["head"] > 25);
    }
}
