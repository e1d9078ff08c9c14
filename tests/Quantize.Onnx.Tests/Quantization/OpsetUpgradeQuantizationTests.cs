using Quantize.Onnx.Model;
using Quantize.Onnx.Model.Proto;
using Quantize.Onnx.Preparation;
using Quantize.Onnx.Tests.TestModels;
using Xunit.Abstractions;

namespace Quantize.Onnx.Tests.Quantization;

/// <summary>
/// Raising old models to opset 13: every op whose signature changed since the model's opset (Clip and
/// Slice attributes, Resize-10/Upsample, Softmax-family axes, Dropout, BatchNormalization spatial,
/// Scatter) is rewritten without changing what the model computes, ranks static inference cannot find
/// are read from a sample, and the models — a paddle2onnx-style recogniser with dynamic batch and width
/// among them — quantize to valid per-channel opset-13 models; what cannot be raised is refused with the node and the fix.
/// </summary>
public sealed class OpsetUpgradeQuantizationTests(ITestOutputHelper output) : IDisposable
{
    private readonly TempFolder _folder = new();

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

        var quantized = ModelLoader.Load(path);
        Assert.Equal(13, quantized.ModelOpset());
        Assert.True(result.PerChannel);
        Assert.DoesNotContain(result.Warnings, w => w.Code == ErrorCodes.PerChannelFallback);

        // The first sample showed both Softmax inputs' ranks (4 and 3): each normalises its last axis, no Flatten/Reshape needed.
        Assert.All(quantized.Graph.Node.Where(n => n.OpType == "Softmax"), n => Assert.Equal(-1, n.GetInt("axis", 0)));
        Assert.Equal(2, quantized.Graph.Count("Softmax"));
        Assert.Equal(0, quantized.Graph.Count("Flatten"));
        Assert.Equal(3, result.Fusion.IntegerKernels.GetValueOrDefault("QLinearConv"));
        Assert.Empty(result.Fusion.UnfusedNodes);

        // Held out: batch 2 and width 28, a shape no calibration sample had (no sample dims baked into the graph).
        var sqnr = QuantizeTestKit.Sqnr(model, path, net);
        output.WriteLine($"opset {opset}: {string.Join(", ", sqnr.Select(kv => $"{kv.Key} {kv.Value:F1} dB"))}; kernels {string.Join(", ", result.Fusion.IntegerKernels)}");

        // Measured 37.8 dB (logits) and 38.0 dB (probs) at both opsets.
        Assert.All(sqnr, kv => Assert.True(kv.Value >= 30, $"{kv.Key} SQNR {kv.Value:F1} dB < 30 dB"));
    }

    [Theory]
    [InlineData(9)]
    [InlineData(11)]
    public void Paddle_style_recogniser_upgrades_with_ranks_read_from_a_sample_and_keeps_its_outputs_at_other_shapes(long opset)
    {
        var net = TestNets.PaddleRecognizer(opset);
        long[][] shapes = [[1, 3, 8, 12], [2, 3, 8, 28], [3, 3, 8, 5]];
        var sample = QuantizeTestKit.StructuredSample(net.InputName, shapes[0]);

        // With the sample: both Softmax inputs proven rank 4 and 3, their axes (3 and 2) the last one.
        var withSample = AssertUpgradeKeepsOutputs(net, SampleShapes.For(net.Model, [net.InputName], sample), shapes);
        Assert.Equal(0, withSample.Graph.Count("Flatten"));
        Assert.All(withSample.Graph.Node.Where(n => n.OpType == "Softmax"), n => Assert.Equal(-1, n.GetInt("axis", 0)));

        // Without one the ranks stay unknown: the opset-9 meaning is spelled out (Flatten → Softmax → Reshape), still exact.
        var without = AssertUpgradeKeepsOutputs(net, probe: null, shapes);
        Assert.Equal(2, without.Graph.Count("Flatten"));
    }

    [Theory]
    [InlineData("Softmax")]
    [InlineData("LogSoftmax")]
    [InlineData("Hardmax")]
    public void Softmax_family_over_a_middle_axis_upgrades_to_flatten_op_reshape_with_identical_outputs(string opType)
    {
        var upgraded = AssertUpgradeKeepsOutputs(TestNets.SoftmaxOverChannelsOpset11(opType: opType));

        var op = Assert.Single(upgraded.Graph.Node, n => n.OpType == opType);
        Assert.Equal(-1, op.GetInt("axis", 0));
        var producers = upgraded.Graph.Producers();
        Assert.Equal(1, producers[op.Input[0]].GetInt("axis", 0)); // Flatten at the old axis
        Assert.Equal("Reshape", Assert.Single(upgraded.Graph.Node, n => n.Input.Contains(op.Output[0])).OpType);
    }

    [Fact]
    public void Model_whose_softmax_axis_was_refused_before_now_quantizes_per_channel()
    {
        var net = TestNets.SoftmaxOverChannelsOpset11();
        var (model, calibration) = QuantizeTestKit.Prepare(net, _folder.Path);
        var path = _folder.File("softmax.int8.onnx");

        var result = new Quantizer(QuantizeTestKit.Options()).Run(model, calibration, path);

        Assert.Equal(13, ModelLoader.Load(path).ModelOpset());
        Assert.True(result.PerChannel);
        Assert.DoesNotContain(result.Warnings, w => w.Code == ErrorCodes.PerChannelFallback);
        Assert.Equal(2, result.Fusion.IntegerKernels.GetValueOrDefault("QLinearConv"));
        var sqnr = QuantizeTestKit.Sqnr(model, path, net);
        output.WriteLine($"conv2 {sqnr["conv2"]:F1} dB");

        // Per tensor at opset 11 this model measured 40.9 dB.
        Assert.True(sqnr["conv2"] >= 32, $"conv2 SQNR {sqnr["conv2"]:F1} dB < 32 dB");
    }

    [Fact]
    public void Softmax_whose_rank_varies_with_the_input_is_not_taken_from_the_sample()
    {
        // Squeeze without axes drops every dim of size 1, the dynamic batch too: rank 2 for batch 1, rank 3 otherwise.
        var b = new TestModelBuilder(opset: 11);
        var x = b.SymbolicInput("x", "batch", "2", "width");
        b.Softmax("softmax", b.Node("Squeeze", "squeeze", [x]), axis: 1);
        b.Output("softmax");
        var net = new TestNet(b.Build(), "x", [1, 2, 5], []);
        long[][] shapes = [[1, 2, 5], [3, 2, 5]];
        var sample = QuantizeTestKit.StructuredSample("x", shapes[0]);
        var ranks = new TensorRanks(net.Model.Graph, TensorTypes.Infer(net.Model), SampleShapes.For(net.Model, ["x"], sample));
        ranks.Observe(["squeeze"]);
        Assert.False(ranks.IsFixedByGraph("squeeze"));
        Assert.Equal((null, RankSource.Unknown), ranks["squeeze"]);

        // On the sample axis 1 is the last one, on batch 3 it is not: only the Flatten form is right for both.
        var upgraded = AssertUpgradeKeepsOutputs(net, SampleShapes.For(net.Model, ["x"], sample), shapes);
        Assert.Equal(1, upgraded.Graph.Count("Flatten"));
    }

    [Theory]
    [InlineData(9)]
    [InlineData(11)]
    public void Dropout_ratio_attribute_becomes_an_input_with_identical_outputs(long opset)
    {
        var upgraded = AssertUpgradeKeepsOutputs(TestNets.DropoutNet(opset));

        var dropout = Assert.Single(upgraded.Graph.Node, n => n.OpType == "Dropout");
        Assert.Empty(dropout.Attribute);
        Assert.Equal([0.3f], TensorValues.ReadFloats(upgraded.Graph.Initializer(dropout.Input[1])));
    }

    [Fact]
    public void Dropout_whose_mask_is_read_is_refused_with_the_reason()
    {
        var net = TestNets.DropoutNet(opset: 11, readMask: true);

        Assert.False(OpsetUpgrader.TryUpgrade(net.Model.Clone(), TensorTypes.Infer(net.Model), out var reason));

        Assert.StartsWith("node 'dropout' (Dropout): its mask output is read", reason);
        Assert.Contains("re-export the model with opset 13 or later", reason);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(0)]
    public void Batch_normalization_spatial_attribute_of_opset_8_is_dropped_with_identical_outputs(long spatial)
    {
        var upgraded = AssertUpgradeKeepsOutputs(TestNets.BatchNormSpatialOpset8(spatial));

        var bn = Assert.Single(upgraded.Graph.Node, n => n.OpType == "BatchNormalization");
        Assert.DoesNotContain(bn.Attribute, a => a.Name == "spatial");
        Assert.Equal(spatial == 0 ? 1 : 0, upgraded.Graph.Count("Flatten")); // per-activation statistics: on the flattened input
    }

    [Fact]
    public void Scatter_of_opset_10_becomes_ScatterElements_with_identical_outputs()
    {
        var upgraded = AssertUpgradeKeepsOutputs(TestNets.ScatterOpset10());

        Assert.Equal(1, upgraded.Graph.Count("ScatterElements"));
        Assert.Equal(0, upgraded.Graph.Count("Scatter"));
    }

    [Fact]
    public void Opset_9_model_that_cannot_be_raised_fails_with_QNT1005_naming_the_node_and_the_fix()
    {
        // Its Dropout's mask is a model output: ORT fills it with zeros at opset 9 and with ones from 12.
        var net = TestNets.DropoutNet(opset: 9, readMask: true);
        var (model, calibration) = QuantizeTestKit.Prepare(net, _folder.Path);

        var e = Assert.Throws<QuantizeException>(() => new Quantizer(QuantizeTestKit.Options()).Run(model, calibration, _folder.File("out.onnx")));

        output.WriteLine(e.Message);
        Assert.Equal(ErrorCodes.ModelUnsupported, e.Code);
        Assert.StartsWith("The model uses opset 9, which has no QuantizeLinear, and raising it to 13 failed: node 'dropout' (Dropout): its mask output is read", e.Message);
        Assert.EndsWith("remove the Dropout (inference does not need it) or re-export the model with opset 13 or later.", e.Message);
    }

    [Fact]
    public void Opset_9_nearest_upsample_with_scales_computed_at_run_time_upgrades_to_an_equivalent_model()
    {
        var upgraded = AssertUpgradeKeepsOutputs(TestNets.UpsampleWithComputedScalesOpset9(), shapes: [[1, 3, 16, 16], [1, 3, 12, 20]]);

        var resize = Assert.Single(upgraded.Graph.Node, n => n.OpType == "Resize");
        Assert.Equal("floor", resize.GetString("nearest_mode", "")); // Upsample's scales are ≥ 1: ORT rounds down
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

    /// <summary>
    /// Raises <paramref name="net"/> to opset 13 with the engine's upgrader (given <paramref name="probe"/>
    /// for ranks static inference cannot find) and compares FP32 outputs on every calibration seed, at the
    /// net's input shape or at each of <paramref name="shapes"/>; returns the upgraded model.
    /// </summary>
    private ModelProto AssertUpgradeKeepsOutputs(TestNet net, ShapeProbe? probe = null, long[][]? shapes = null)
    {
        var upgraded = net.Model.Clone();
        Assert.True(OpsetUpgrader.TryUpgrade(upgraded, TensorTypes.Infer(net.Model), probe, out var reason), reason);
        Assert.Equal(13, upgraded.ModelOpset());
        var before = _folder.File($"before-{Guid.NewGuid():N}.onnx");
        var after = _folder.File($"after-{Guid.NewGuid():N}.onnx");
        ModelWriter.Save(net.Model, before);
        ModelWriter.Save(upgraded, after);

        foreach (var shape in shapes ?? [net.InputShape])
        {
            var sqnr = QuantizeTestKit.Sqnr(before, after, net with { InputShape = shape }, QuantizeTestKit.CalibrationSeeds);

            Assert.All(sqnr, kv => Assert.True(kv.Value >= 100, $"upgrade changed output {kv.Key} at [{string.Join(", ", shape)}]: SQNR {kv.Value:F1} dB"));
        }

        return upgraded;
    }
}
