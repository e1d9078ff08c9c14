using System.Security.Cryptography;
using Quantize.Onnx.Model;
using Quantize.Onnx.Model.Proto;
using Quantize.Onnx.Tests.TestModels;
using Xunit.Abstractions;

namespace Quantize.Onnx.Tests.Quantization;

/// <summary>Per-tensor fallback when the opset cannot be raised, slow kernels kept float, and edge cases of the entry point.</summary>
public sealed class FallbackAndEdgeCaseTests(ITestOutputHelper output) : IDisposable
{
    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    [Fact]
    public void A_model_without_a_float_output_is_quantized_not_QNT1301()
    {
        // Fuzz (models, seed 10, case 1692 and two more: the output node made a Constant): with no float output the
        // fidelity run requested none, which ORT refuses. A classifier that returns only its ArgMax is the real case.
        var net = TestNets.ConvNet();
        var graph = net.Model.Graph;
        graph.Output.Clear();
        graph.Node.Add(new NodeProto { OpType = "ArgMax", Name = "class", Input = { "head" }, Output = { "class" }, Attribute = { TestModelBuilder.Int("axis", 1) } });
        graph.Output.Add(new ValueInfoProto { Name = "class", Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Int64 } } });
        var (model, calibration) = QuantizeTestKit.Prepare(net, _folder.Path);
        var path = _folder.File("argmax.int8.onnx");

        var result = new Quantizer(QuantizeTestKit.Options()).Run(model, calibration, path);

        Assert.True(result.Fusion.IntegerKernels.GetValueOrDefault("QLinearConv") > 0);
        using var session = new Microsoft.ML.OnnxRuntime.InferenceSession(path);
        Assert.Equal(["class"], session.OutputNames);
    }

    [Fact]
    public void Model_whose_opset_cannot_be_raised_falls_back_to_per_tensor_with_QNT2001_and_stays_valid()
    {
        // Opset 10 nearest Resize ×2 in height, ×½ in width: ORT rounds the two axes in opposite
        // directions, which opset 13's single nearest_mode cannot state.
        var net = TestNets.Resampling(opset: 10, "nearest", 2f, widthFactor: 0.5f);
        var (model, calibration) = QuantizeTestKit.Prepare(net, _folder.Path);
        var path = _folder.File("resize10.int8.onnx");

        var result = new Quantizer(QuantizeTestKit.Options()).Run(model, calibration, path);

        var warning = Assert.Single(result.Warnings, w => w.Code == ErrorCodes.PerChannelFallback);
        Assert.Equal(model, warning.File);
        Assert.Contains("node 'resample' (Resize): a nearest resize that upsamples one axis and downsamples another", warning.Message);
        Assert.False(result.PerChannel);

        // Still opset 10 (DequantizeLinear-10 has no axis): every weight scale is a scalar.
        var quantized = ModelLoader.Load(path);
        Assert.Equal(10, quantized.ModelOpset());
        var dequantize = quantized.Graph.Node.Where(n => n.OpType == "DequantizeLinear").ToList();
        Assert.NotEmpty(dequantize);
        Assert.All(dequantize, dq => Assert.DoesNotContain(dq.Attribute, a => a.Name == "axis"));
        Assert.All(dequantize, dq => Assert.Empty(quantized.Graph.Initializer(dq.Input[1]).Dims));

        Assert.Equal(2, result.Fusion.IntegerKernels.GetValueOrDefault("QLinearConv"));
        Assert.Empty(result.Fusion.UnfusedNodes);
        var sqnr = QuantizeTestKit.Sqnr(model, path, net);
        output.WriteLine($"conv2 {sqnr["conv2"]:F1} dB; kernels {string.Join(", ", result.Fusion.IntegerKernels)}");

        // Measured 31.4 dB.
        Assert.True(sqnr["conv2"] >= 26, $"conv2 SQNR {sqnr["conv2"]:F1} dB < 26 dB");
    }

    [Fact]
    public void Depthwise_conv_larger_than_3x3_is_written_float_by_default()
    {
        var net = TestNets.Depthwise(kernel: 5);
        var (model, calibration) = QuantizeTestKit.Prepare(net, _folder.Path);
        var fast = _folder.File("dw5-fast.onnx");

        new Quantizer(QuantizeTestKit.Options()).Run(model, calibration, fast);

        // Default: the 5×5 depthwise conv is measured slower in int8 on ORT CPU, so the writer leaves it float.
        var graph = ModelLoader.Load(fast).Graph;
        var dw = Assert.Single(graph.Node, n => n.Name == "dw");
        Assert.False(graph.Producers().ContainsKey(dw.Input[1]), "the 5x5 depthwise weight is dequantized");
        Assert.Equal((int)TensorProto.Types.DataType.Float, graph.Initializer(dw.Input[1]).DataType);
    }

    [Fact]
    public void Depthwise_conv_larger_than_3x3_is_quantized_when_fast_kernels_only_is_off()
    {
        var net = TestNets.Depthwise(kernel: 5);
        var (model, calibration) = QuantizeTestKit.Prepare(net, _folder.Path);
        var all = _folder.File("dw5-all.onnx");

        var allResult = new Quantizer(QuantizeTestKit.Options() with { FastKernelsOnly = false }).Run(model, calibration, all);

        var allGraph = ModelLoader.Load(all).Graph;
        Assert.Equal("DequantizeLinear", allGraph.Producers()[Assert.Single(allGraph.Node, n => n.Name == "dw").Input[1]].OpType);
        Assert.Equal(3, allResult.Fusion.IntegerKernels.GetValueOrDefault("QLinearConv"));
        Assert.Empty(allResult.Fusion.UnfusedNodes);
    }

    [Fact]
    public void Depthwise_conv_larger_than_3x3_runs_as_a_float_conv_in_onnx_runtime()
    {
        var (model, calibration) = QuantizeTestKit.Prepare(TestNets.Depthwise(kernel: 5), _folder.Path);
        var path = _folder.File("dw5.onnx");

        var result = new Quantizer(QuantizeTestKit.Options()).Run(model, calibration, path);

        // conv1 and conv2 only; dw must stay a float Conv (FusedConv once ORT fuses its Relu).
        var optimized = QuantizeTestKit.OptimizedGraph(path);
        Assert.Equal(2, optimized.Count("QLinearConv"));
        Assert.Equal(1, optimized.Count("Conv") + optimized.Count("FusedConv"));
        Assert.Equal(2, result.Fusion.IntegerKernels.GetValueOrDefault("QLinearConv"));
    }

    [Fact]
    public void Conv_excluded_by_name_between_quantized_ops_runs_as_a_float_conv_in_onnx_runtime()
    {
        var (model, calibration) = QuantizeTestKit.Prepare(TestNets.Depthwise(kernel: 3), _folder.Path);
        var path = _folder.File("dw3-excluded.onnx");

        var result = new Quantizer(QuantizeTestKit.Options() with { ExcludedNodes = new HashSet<string> { "dw" } }).Run(model, calibration, path);

        var optimized = QuantizeTestKit.OptimizedGraph(path);
        Assert.Equal(2, optimized.Count("QLinearConv"));
        Assert.Equal(1, optimized.Count("Conv") + optimized.Count("FusedConv"));
        Assert.Equal(2, result.Fusion.IntegerKernels.GetValueOrDefault("QLinearConv"));
    }

    [Fact]
    public void Pre_cancelled_run_throws_and_writes_nothing()
    {
        var (model, calibration) = QuantizeTestKit.Prepare(TestNets.ConvNet(), _folder.Path);
        var path = _folder.File("cancelled.onnx");
        using var cancellation = new CancellationTokenSource();
        cancellation.Cancel();

        Assert.ThrowsAny<OperationCanceledException>(() => new Quantizer(QuantizeTestKit.Options()).Run(model, calibration, path, null, cancellation.Token));
        Assert.False(File.Exists(path));
    }

    [Fact]
    public void Output_path_equal_to_the_model_path_is_refused_and_the_source_is_kept()
    {
        var (model, calibration) = QuantizeTestKit.Prepare(TestNets.ConvNet(), _folder.Path);
        var hash = SHA256.HashData(File.ReadAllBytes(model));

        var e = Assert.Throws<QuantizeException>(() => new Quantizer(QuantizeTestKit.Options()).Run(model, calibration, model));

        Assert.Equal(ErrorCodes.OutputNotWritable, e.Code);
        Assert.Equal(hash, SHA256.HashData(File.ReadAllBytes(model)));
    }

    [Theory]
    [InlineData("linear")]
    [InlineData("cubic")]
    public void Linear_and_cubic_resize_are_not_left_as_unfused_groups(string mode)
    {
        var net = TestNets.Resampling(opset: 13, mode, 2f);
        var (model, calibration) = QuantizeTestKit.Prepare(net, _folder.Path);
        var path = _folder.File($"resize-{mode}.onnx");

        var result = new Quantizer(QuantizeTestKit.Options()).Run(model, calibration, path);

        Assert.Empty(result.Fusion.UnfusedNodes);
        Assert.DoesNotContain(result.Warnings, w => w.Code == ErrorCodes.UnfusedGroups);
        Assert.Equal(2, result.Fusion.IntegerKernels.GetValueOrDefault("QLinearConv"));
    }

    [Fact]
    public void Nearest_resize_runs_on_uint8_without_unfused_groups()
    {
        var net = TestNets.Resampling(opset: 13, "nearest", 0.5f);
        var (model, calibration) = QuantizeTestKit.Prepare(net, _folder.Path);
        var path = _folder.File("resize-nearest.onnx");

        var result = new Quantizer(QuantizeTestKit.Options()).Run(model, calibration, path);

        Assert.Empty(result.Fusion.UnfusedNodes);
        Assert.Equal(2, result.Fusion.IntegerKernels.GetValueOrDefault("QLinearConv"));
        var optimized = QuantizeTestKit.OptimizedGraph(path);
        var resize = Assert.Single(optimized.Node, n => n.OpType == "Resize");
        Assert.NotEqual("DequantizeLinear", optimized.Producers()[resize.Input[0]].OpType);
    }
}
