using Microsoft.ML.OnnxRuntime;
using Quantize.Onnx.Model;
using Quantize.Onnx.Model.Proto;
using Quantize.Onnx.Quantization;
using Quantize.Onnx.Tests.TestModels;
using Xunit.Abstractions;

namespace Quantize.Onnx.Tests.Quantization;

/// <summary>Nodes that stay float with FLOAT16 weights: smaller, same math after ORT folds the Cast, close to FP32 weights.</summary>
public sealed class Fp16WeightsTests(ITestOutputHelper output) : IDisposable
{
    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    [Fact]
    public void Float_nodes_store_fp16_weights_that_ort_folds_and_that_stay_close_to_fp32()
    {
        var net = TestNets.ConvNet(width: 32);
        var (model, calibration) = QuantizeTestKit.Prepare(net, _folder.Path);
        var options = QuantizeTestKit.Options() with { ExcludedNodes = new HashSet<string> { "conv2", "conv3", "conv4" } };
        string fp32Path = _folder.File("fp32-float-nodes.onnx"), fp16Path = _folder.File("fp16-float-nodes.onnx");

        new Quantizer(options).Run(model, calibration, fp32Path);
        var result = new Quantizer(options with { FloatPrecision = FloatPrecision.Fp16 }).Run(model, calibration, fp16Path);

        // The excluded convs read FLOAT16 weights through a Cast; quantized convs keep their int8 weights.
        var graph = ModelLoader.Load(fp16Path).Graph;
        var producers = graph.Producers();
        foreach (var name in new[] { "conv2", "conv3", "conv4" })
        {
            var conv = graph.Node.Single(n => n.Name == name);
            var cast = producers[conv.Input[1]];
            Assert.Equal("Cast", cast.OpType);
            Assert.Equal((int)TensorProto.Types.DataType.Float16, graph.Initializer(cast.Input[0]).DataType);
        }

        Assert.Equal("fp16", result.Settings["float-precision"]);
        Assert.Equal(3, result.Fusion.IntegerKernels.GetValueOrDefault("QLinearConv"));
        long fp32Size = new FileInfo(fp32Path).Length, fp16Size = new FileInfo(fp16Path).Length;
        output.WriteLine($"float nodes FP32: {fp32Size} bytes, FP16: {fp16Size} bytes");
        Assert.True(fp16Size < fp32Size * 0.75, $"{fp16Size} vs {fp32Size}");

        // ORT folds the Casts when it loads the model: the optimised graph computes in FP32 as before.
        Assert.Equal(0, QuantizeTestKit.OptimizedGraph(fp16Path, GraphOptimizationLevel.ORT_ENABLE_EXTENDED).Count("Cast"));

        // FP16 rounding of the weights costs little next to int8 quantization.
        var sqnr = QuantizeTestKit.Sqnr(fp32Path, fp16Path, net);
        output.WriteLine(string.Join(", ", sqnr.Select(kv => $"{kv.Key} {kv.Value:F1} dB")));
        Assert.All(sqnr.Values, db => Assert.True(db > 45, $"SQNR {db:F1} dB"));
    }

    [Fact]
    public void Whole_model_fp16_mode_halves_the_size_without_calibration_data_and_keeps_fp32_inputs_and_outputs()
    {
        var net = TestNets.ConvNet(width: 32);
        var (model, _) = QuantizeTestKit.Prepare(net, _folder.Path);
        var path = _folder.File("fp16.onnx");

        // Keep-float-if-slower stays on: FP16 weights are about size, not speed, so they ship even at 1.0x.
        var result = new Quantizer(QuantizeTestKit.Options() with { Mode = QuantizationMode.Fp16, KeepFloatIfSlower = true }).Run(model, null, path);

        Assert.Equal(OutputKind.Quantized, result.Output);
        Assert.Equal("fp16", result.Settings["mode"]);
        var shipped = ModelLoader.Load(path);
        Assert.DoesNotContain(shipped.Graph.Node, n => n.OpType is "QuantizeLinear" or "DequantizeLinear");
        Assert.All(shipped.Graph.Input.Concat(shipped.Graph.Output), v => Assert.Equal((int)TensorProto.Types.DataType.Float, v.Type.TensorType.ElemType));
        long before = new FileInfo(model).Length, after = new FileInfo(path).Length;
        output.WriteLine($"FP32 {before} bytes -> FP16 weights {after} bytes");
        Assert.True(after < before * 0.6, $"{after} vs {before}");
        var sqnr = QuantizeTestKit.Sqnr(model, path, net);
        output.WriteLine(string.Join(", ", sqnr.Select(kv => $"{kv.Key} {kv.Value:F1} dB")));
        Assert.All(sqnr.Values, db => Assert.True(db > 50, $"SQNR {db:F1} dB"));
    }

    [Fact]
    public void Small_tensors_and_tensors_beyond_the_fp16_range_stay_fp32()
    {
        var net = TestNets.ConvNet();
        var model = net.Model.Clone();
        var conv1 = model.Graph.Node.First(n => n.OpType == "Conv");
        var weight = model.Graph.Initializer.Single(t => t.Name == conv1.Input[1]);
        var values = TensorValues.ReadFloats(weight);
        values[0] = 1e6f; // beyond FLOAT16's 65504
        var index = model.Graph.Initializer.IndexOf(weight);
        model.Graph.Initializer[index] = TensorValues.FromFloats(weight.Name, weight.Dims.ToArray(), values);

        var converted = Fp16Weights.Convert(model);

        Assert.Equal((int)TensorProto.Types.DataType.Float, model.Graph.Initializer[index].DataType);
        Assert.True(converted > 0);
        Assert.All(model.Graph.Initializer.Where(t => t.DataType == (int)TensorProto.Types.DataType.Float16),
            t => Assert.True(t.Dims.Aggregate(1L, (a, d) => a * d) >= 16));
        Assert.DoesNotContain(model.Graph.Initializer, t => t.DataType == (int)TensorProto.Types.DataType.Float && model.Graph.Node.Any(n => n.OpType == "Cast" && n.Output[0] == t.Name));
    }
}
