using Quantize.Onnx.Model.Proto;
using Quantize.Onnx.Tests.TestModels;
using Xunit.Abstractions;

namespace Quantize.Onnx.Tests.Quantization;

/// <summary>The conv net with every weight in a Constant node (no initializers), at opset 11.</summary>
public sealed class ConstantNodeOpset11Fixture() : QuantizedNetFixture(TestNets.ConvNet(weightsAsConstantNodes: true, opset: 11));

/// <summary>
/// Weights in Constant nodes (as paddle2onnx exports them) are still weights, and an opset-11 model is
/// raised to opset 13 so that its weights get per-channel scales.
/// </summary>
public sealed class ConstantNodeOpset11Tests(ConstantNodeOpset11Fixture fixture, ITestOutputHelper output) : IClassFixture<ConstantNodeOpset11Fixture>
{
    [Fact]
    public void The_source_really_has_constant_nodes_and_no_initializers_at_opset_11()
    {
        Assert.Empty(fixture.Net.Model.Graph.Initializer);
        Assert.True(fixture.Net.Model.Graph.Count("Constant") > 20);
        Assert.Equal(11, fixture.Net.Model.ModelOpset());
    }

    [Fact]
    public void Quantized_model_is_at_opset_13()
    {
        Assert.Equal(13, fixture.Quantized.ModelOpset());
        Assert.True(fixture.Result.PerChannel);
        Assert.DoesNotContain(fixture.Result.Warnings, w => w.Code == ErrorCodes.PerChannelFallback);
    }

    [Fact]
    public void Every_conv_weight_is_int8_with_per_channel_scales()
    {
        var graph = fixture.Quantized.Graph;
        var producers = graph.Producers();
        var convs = graph.Node.Where(n => n.OpType == "Conv").ToList();
        Assert.Equal(6, convs.Count);
        foreach (var conv in convs)
        {
            var dq = producers[conv.Input[1]];
            Assert.Equal("DequantizeLinear", dq.OpType);
            Assert.Equal((int)TensorProto.Types.DataType.Int8, graph.Initializer(dq.Input[0]).DataType);
            Assert.Equal(0, Assert.Single(dq.Attribute, a => a.Name == "axis").I);
            var scale = graph.Initializer(dq.Input[1]);
            Assert.Single(scale.Dims);
            Assert.Equal(graph.Initializer(dq.Input[0]).Dims[0], scale.Dims[0]);
        }
    }

    [Fact]
    public void Batch_norm_is_folded_and_every_conv_fuses()
    {
        Assert.Equal(0, fixture.Quantized.Graph.Count("BatchNormalization"));
        Assert.Equal(6, fixture.Result.Fusion.IntegerKernels.GetValueOrDefault("QLinearConv"));
        Assert.Equal(0, fixture.Optimized.Count("Conv"));
        Assert.Empty(fixture.Result.Fusion.UnfusedNodes);
        Assert.Empty(fixture.Optimized.UnfusedGroups());
    }

    [Fact]
    public void Quantized_model_runs_and_stays_within_the_stated_sqnr()
    {
        output.WriteLine(string.Join(", ", fixture.Sqnr.Select(kv => $"{kv.Key}: {kv.Value:F1} dB")));

        // Same weights as the opset-13 initializer net, so the same figures: measured conv4 41.8 dB, head 25.6 dB
        // (see ConvNetQuantizationTests for why the head is lower).
        Assert.True(fixture.Sqnr["conv4"] >= 32, $"conv4 SQNR {fixture.Sqnr["conv4"]:F1} dB < 32 dB");
        Assert.True(fixture.Sqnr["head"] >= 20, $"head SQNR {fixture.Sqnr["head"]:F1} dB < 20 dB");
    }
}
