using Quantize.Onnx.Model;
using Quantize.Onnx.Preparation;
using Quantize.Onnx.Quantization;
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

    [Theory]
    [InlineData(2f)]
    [InlineData(0.5f)]
    public void Opset_10_nearest_resize_by_an_integer_ratio_upgrades_to_an_equivalent_model(float factor) =>
        AssertUpgradeKeepsOutputs(TestNets.Resampling(opset: 10, "nearest", factor));

    [Theory]
    [InlineData(0.75f)]
    [InlineData(1.5f)]
    public void Opset_10_linear_resize_upgrades_to_an_equivalent_model(float factor) =>
        AssertUpgradeKeepsOutputs(TestNets.Resampling(opset: 10, "linear", factor));

    [Fact]
    public void Opset_10_nearest_resize_that_downsamples_by_a_fraction_upgrades_to_an_equivalent_model() =>
        AssertUpgradeKeepsOutputs(TestNets.Resampling(opset: 10, "nearest", 0.75f));

    [Fact]
    public void Opset_10_nearest_resize_that_downsamples_by_a_fraction_still_quantizes_close_to_fp32()
    {
        // Whether the opset is raised or the engine falls back to per-tensor at opset 10 (what it does
        // while the upgrade rule is wrong, see the skipped test above), the output must be valid and close.
        var net = TestNets.Resampling(opset: 10, "nearest", 0.75f);
        var (model, calibration) = QuantizeTestKit.Prepare(net, _folder.Path);
        var path = _folder.File("resize10.int8.onnx");

        var result = new Quantizer(QuantizeTestKit.Options()).Run(model, calibration, path);

        var sqnr = QuantizeTestKit.Sqnr(model, path, net);
        output.WriteLine($"conv2 {sqnr["conv2"]:F1} dB, per-channel {result.PerChannel}, warnings {string.Join(" | ", result.Warnings.Select(w => w.Code))}");
        Assert.Equal(2, result.Fusion.IntegerKernels.GetValueOrDefault("QLinearConv"));

        // Measured 33.3 dB (per-tensor fallback at opset 10).
        Assert.True(sqnr["conv2"] >= 26, $"conv2 SQNR {sqnr["conv2"]:F1} dB < 26 dB");
    }

    [Fact]
    public void Opset_9_model_with_Upsample_quantizes()
    {
        var net = TestNets.Resampling(opset: 9, "nearest", 2f, opType: "Upsample");
        var (model, calibration) = QuantizeTestKit.Prepare(net, _folder.Path);
        var path = _folder.File("upsample9.int8.onnx");

        var result = new Quantizer(QuantizeTestKit.Options()).Run(model, calibration, path);

        Assert.Equal(13, ModelLoader.Load(path).ModelOpset());
        Assert.Equal(2, result.Fusion.IntegerKernels.GetValueOrDefault("QLinearConv"));
        Assert.True(QuantizeTestKit.Sqnr(model, path, net)["conv2"] >= 26);
    }

    [Theory]
    [InlineData(9)]
    [InlineData(11)]
    public void Paddle_style_recogniser_with_dynamic_batch_and_width_quantizes_per_channel_at_opset_13(long opset)
    {
        // The premise: ORT's static inference does not know the rank of the attention Softmax's input.
        var net = TestNets.PaddleRecognizer(opset);
        Assert.True(TensorTypes.Infer(net.Model)["p2o.Mul.0"]?.Shape is null or { Count: 0 });
        var model = _folder.File("model/p2o_rec.onnx");
        Directory.CreateDirectory(Path.GetDirectoryName(model)!);
        ModelWriter.Save(net.Model, model);
        var calibration = WriteTextLines(_folder.File("calibration"), net.InputName, [12, 20]);
        var path = _folder.File("p2o_rec.int8.onnx");

        var result = new Quantizer(QuantizeTestKit.Options()).Run(model, calibration, path);

        Assert.Equal(13, ModelLoader.Load(path).ModelOpset());
        Assert.True(result.PerChannel);
        Assert.DoesNotContain(result.Warnings, w => w.Code == ErrorCodes.PerChannelFallback);
        Assert.Equal(3, result.Fusion.IntegerKernels.GetValueOrDefault("QLinearConv"));
        Assert.Empty(result.Fusion.UnfusedNodes);

        // Held out: batch 2 and width 28, a shape no calibration sample had (no sample dims baked into the graph).
        var sqnr = QuantizeTestKit.Sqnr(model, path, net);
        output.WriteLine($"opset {opset}: {string.Join(", ", sqnr.Select(kv => $"{kv.Key} {kv.Value:F1} dB"))}; kernels {string.Join(", ", result.Fusion.IntegerKernels)}");
        Assert.All(sqnr, kv => Assert.True(kv.Value >= 25, $"{kv.Key} SQNR {kv.Value:F1} dB < 25 dB"));
    }

    /// <summary>Text-line samples [1, 3, 8, width], the widths taken in turn: 8 sample folders of one <c>.npy</c> each.</summary>
    private static string WriteTextLines(string folder, string inputName, long[] widths)
    {
        for (int i = 0; i < 8; i++)
        {
            long[] shape = [1, 3, 8, widths[i % widths.Length]];
            var sample = Directory.CreateDirectory(Path.Combine(folder, $"sample_{i:D3}")).FullName;
            Samples.Npy.WriteFloats(Path.Combine(sample, inputName + ".npy"), shape, QuantizeTestKit.Structured(QuantizeTestKit.CalibrationSeeds[i], shape));
        }

        return folder;
    }

    /// <summary>Raises <paramref name="net"/> to opset 13 with the engine's upgrader and compares FP32 outputs on every calibration seed.</summary>
    private void AssertUpgradeKeepsOutputs(TestNet net)
    {
        var upgraded = net.Model.Clone();
        Assert.True(OpsetUpgrader.TryUpgrade(upgraded, TensorTypes.Infer(net.Model), out var reason), reason);
        var before = _folder.File($"before-{Guid.NewGuid():N}.onnx");
        var after = _folder.File($"after-{Guid.NewGuid():N}.onnx");
        ModelWriter.Save(net.Model, before);
        ModelWriter.Save(upgraded, after);

        var sqnr = QuantizeTestKit.Sqnr(before, after, net, QuantizeTestKit.CalibrationSeeds);

        Assert.All(sqnr, kv => Assert.True(kv.Value >= 100, $"upgrade changed output {kv.Key}: SQNR {kv.Value:F1} dB"));
    }
}
