using Quantize.Onnx.Model;
using Quantize.Onnx.Preparation;
using Quantize.Onnx.Tests.TestModels;
using Xunit.Abstractions;

namespace Quantize.Onnx.Tests.Quantization;

/// <summary>
/// An opset-9 model whose Clip and Slice keep their parameters in attributes (moved to inputs at
/// opsets 11 and 10): raising it to 13 must not change what it computes, and the quantized model
/// must be valid.
/// </summary>
public sealed class OpsetUpgradeQuantizationTests(ITestOutputHelper output) : IDisposable
{
    private readonly Model.TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    [Fact]
    public void Upgrading_clip_and_slice_attributes_to_opset_13_keeps_fp32_outputs_identical()
    {
        var net = TestNets.ClipSliceOpset9();
        var upgraded = net.Model.Clone();

        Assert.True(OpsetUpgrader.TryUpgrade(upgraded, TensorTypes.Infer(net.Model), out var reason), reason);

        Assert.Equal(13, upgraded.ModelOpset());
        var clip = Assert.Single(upgraded.Graph.Node, n => n.OpType == "Clip");
        Assert.Empty(clip.Attribute);
        Assert.Equal(3, clip.Input.Count);
        var slice = Assert.Single(upgraded.Graph.Node, n => n.OpType == "Slice");
        Assert.Empty(slice.Attribute);
        Assert.Equal(4, slice.Input.Count);
        Assert.Equal([2L, 2L], TensorValues.ReadInt64s(upgraded.Graph.Initializer(slice.Input[1])));
        Assert.Equal([14L, 14L], TensorValues.ReadInt64s(upgraded.Graph.Initializer(slice.Input[2])));
        Assert.Equal([2L, 3L], TensorValues.ReadInt64s(upgraded.Graph.Initializer(slice.Input[3])));

        var before = _folder.File("opset9.onnx");
        var after = _folder.File("opset13.onnx");
        ModelWriter.Save(net.Model, before);
        ModelWriter.Save(upgraded, after);
        var sqnr = QuantizeTestKit.Sqnr(before, after, net, QuantizeTestKit.CalibrationSeeds);

        // The same float ops on the same data: bit-identical outputs (SQNR +∞). Allow ≥ 100 dB.
        output.WriteLine($"conv2: {sqnr["conv2"]} dB");
        Assert.True(sqnr["conv2"] >= 100, $"upgrade changed the output: SQNR {sqnr["conv2"]:F1} dB");
    }

    [Fact]
    public void Opset_9_model_quantizes_to_a_valid_opset_13_model_close_to_fp32()
    {
        var net = TestNets.ClipSliceOpset9();
        var (model, calibration) = QuantizeTestKit.Prepare(net, _folder.Path);
        var outputPath = _folder.File("model.int8.onnx");

        var result = new Quantizer(QuantizeTestKit.Options()).Run(model, calibration, outputPath);

        var quantized = ModelLoader.Load(outputPath);
        Assert.Equal(13, quantized.ModelOpset());
        Assert.True(result.PerChannel);
        Assert.DoesNotContain(result.Warnings, w => w.Code == ErrorCodes.PerChannelFallback);
        Assert.Equal(2, result.Fusion.IntegerKernels.GetValueOrDefault("QLinearConv"));
        Assert.Empty(result.Fusion.UnfusedNodes);
        Assert.Empty(QuantizeTestKit.OptimizedGraph(outputPath).UnfusedGroups());

        var sqnr = QuantizeTestKit.Sqnr(model, outputPath, net);
        output.WriteLine($"conv2: {sqnr["conv2"]:F1} dB; kernels {string.Join(", ", result.Fusion.IntegerKernels)}");

        // Measured 34.3 dB.
        Assert.True(sqnr["conv2"] >= 28, $"conv2 SQNR {sqnr["conv2"]:F1} dB < 28 dB");
    }
}
