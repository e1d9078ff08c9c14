using Quantize.Onnx.Model;
using Quantize.Onnx.Model.Proto;
using Quantize.Onnx.Tests.TestModels;
using Quantize.Onnx.Validation;
using Xunit.Abstractions;

namespace Quantize.Onnx.Tests.Quantization;

/// <summary>A small transformer block (<see cref="TransformerNet"/>) quantized dynamically (no calibration data) and statically.</summary>
public sealed class TransformerQuantizationTests(ITestOutputHelper output) : IDisposable
{
    private readonly Model.TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    [Fact]
    public void Dynamic_mode_needs_no_calibration_and_runs_every_weight_matmul_on_integer_kernels()
    {
        var net = TransformerNet.Build();
        var model = Save(net);
        var outputPath = _folder.File("transformer.dynamic.onnx");

        var result = new Quantizer(QuantizeTestKit.Options() with { Mode = QuantizationMode.Dynamic }).Run(model, null, outputPath);

        var optimized = QuantizeTestKit.OptimizedGraph(outputPath);
        var sqnr = QuantizeTestKit.Sqnr(model, outputPath, net);
        output.WriteLine($"kernels {string.Join(", ", result.Fusion.IntegerKernels)}; {sqnr[TransformerNet.Output]:F1} dB; ORT graph: {string.Join(" ", optimized.Node.Select(n => n.OpType))}");

        Assert.Equal(OutputKind.Quantized, result.Output);
        Assert.Equal("dynamic", result.Settings["mode"]);
        Assert.Equal(0, result.CalibrationSamples);
        Assert.Equal(TransformerNet.WeightMatMuls.Length, result.QuantizedNodes);

        // Every weight MatMul (with its bias Add) became one fused integer kernel; only the two MatMuls
        // between activations (scores, which ORT fuses with the Transpose, and context) run in float,
        // as do LayerNorm, Softmax and GELU (ORT fuses the decomposed forms at this level).
        var kernels = result.Fusion.IntegerKernels;
        Assert.Equal(6, kernels.GetValueOrDefault("DynamicQuantizeMatMul") + kernels.GetValueOrDefault("MatMulIntegerToFloat"));
        Assert.Equal(0, optimized.Count("MatMulInteger"));
        Assert.Equal(2, optimized.Count("MatMul") + optimized.Count("FusedMatMul"));
        Assert.Equal(1, optimized.Count("Softmax"));
        Assert.Equal(0, optimized.Count("QuantizeLinear") + optimized.Count("DequantizeLinear"));

        // The written model: standard ONNX ops with int8 weights, one scale per output column.
        var quantized = ModelLoader.Load(outputPath);
        var integer = quantized.Graph.Node.Where(n => n.OpType == "MatMulInteger").ToList();
        Assert.Equal(6, integer.Count);
        foreach (var node in integer)
        {
            var weight = quantized.Graph.Initializer(node.Input[1]);
            Assert.Equal((int)TensorProto.Types.DataType.Int8, weight.DataType);
            Assert.Equal([weight.Dims[1]], quantized.Graph.Initializer(node.Input[3]).Dims);
        }

        Assert.DoesNotContain(quantized.Graph.Node, n => n.OpType == "MatMul" && quantized.Graph.Initializer.Any(t => t.Name == n.Input[1]));
        Assert.Contains(quantized.Graph.Node, n => n.OpType == "Erf");
        Assert.Equal(4, quantized.Graph.Node.Count(n => n.OpType == "ReduceMean"));

        // Measured 34.4 dB on held-out inputs (static: 30.7 dB).
        Assert.True(sqnr[TransformerNet.Output] >= 30, $"SQNR {sqnr[TransformerNet.Output]:F1} dB < 30 dB");
        Assert.True(new FileInfo(outputPath).Length < new FileInfo(model).Length);
    }

    [Fact]
    public void Dynamic_mode_with_validation_samples_measures_fidelity_and_checks_accuracy()
    {
        var net = TransformerNet.Build();
        var model = Save(net);
        var validation = QuantizeTestKit.WriteCalibration(_folder.File("validation"), net.InputName, net.InputShape, QuantizeTestKit.HeldOutSeeds);
        var options = QuantizeTestKit.Options() with
        {
            Mode = QuantizationMode.Dynamic,
            Validation = new ValidationOptions { Folder = validation, Checks = [AccuracyCheck.Parse("sqnr>=25")] },
        };

        var result = new Quantizer(options).Run(model, null, _folder.File("out.onnx"));

        Assert.Equal(OutputKind.Quantized, result.Output);
        Assert.Equal(2, result.FidelitySamples);
        Assert.True(Assert.Single(result.Fidelity).SqnrDb >= 25);
        Assert.NotNull(result.Validation);
        Assert.True(result.Validation!.Passed);
        Assert.Equal(QuantizeTestKit.HeldOutSeeds.Length, result.Validation.Samples);
    }

    [Fact]
    public void Static_mode_quantizes_weight_matmuls_and_their_bias_adds_and_keeps_activation_matmuls_float()
    {
        var net = TransformerNet.Build();
        var (model, calibration) = QuantizeTestKit.Prepare(net, _folder.Path, "transformer.onnx");
        var outputPath = _folder.File("transformer.static.onnx");

        var result = new Quantizer(QuantizeTestKit.Options()).Run(model, calibration, outputPath);

        var optimized = QuantizeTestKit.OptimizedGraph(outputPath);
        var sqnr = QuantizeTestKit.Sqnr(model, outputPath, net);
        output.WriteLine($"kernels {string.Join(", ", result.Fusion.IntegerKernels)}; {sqnr[TransformerNet.Output]:F1} dB; ORT graph: {string.Join(" ", optimized.Node.Select(n => n.OpType))}");

        // ORT turns each quantized MatMul + bias Add of the 3-D activations into Reshape → QGemm → Reshape.
        Assert.Equal(OutputKind.Quantized, result.Output);
        Assert.Equal(6, result.Fusion.IntegerKernels.GetValueOrDefault("QGemm") + result.Fusion.IntegerKernels.GetValueOrDefault("QLinearMatMul"));
        Assert.Empty(result.Fusion.UnfusedNodes);

        // MatMul of two activations stays float by design: the context MatMul reads v through its
        // DequantizeLinear and feeds o's QuantizeLinear, the only float op between DQ and Q.
        Assert.Equal(["context (MatMul)"], optimized.UnfusedGroups());
        Assert.DoesNotContain(optimized.Node, n => n.OpType is "MatMul" or "Gemm" && n.Input.Count > 1 && optimized.Initializer.Any(t => t.Name == n.Input[1]));

        // LayerNorm, Softmax and GELU stay float; the activation MatMuls compute the right thing (measured 30.7 dB).
        var quantized = ModelLoader.Load(outputPath);
        Assert.Contains(quantized.Graph.Node, n => n.OpType == "Erf");
        Assert.Contains(quantized.Graph.Node, n => n.OpType == "Softmax");
        Assert.True(sqnr[TransformerNet.Output] >= 25, $"SQNR {sqnr[TransformerNet.Output]:F1} dB < 25 dB");
    }

    [Fact]
    public void Static_matmul_read_only_by_float_ops_keeps_a_float_output_and_runs_as_matmul_integer_to_float()
    {
        // x → MatMul fc (quantized: input and weight) → Erf (float) → output: the MatMul output needs no
        // 8-bit grid, so the writer puts no QuantizeLinear after it.
        var b = new TestModelBuilder(opset: 13, seed: 3, name: "float-output");
        var x = b.Input(TransformerNet.Input, TransformerNet.Shape);
        b.Node("Erf", "hidden", [b.MatMul("fc", x, 32, 32)]);
        b.Output("hidden", TransformerNet.Shape);
        var net = new TestNet(b.Build(), TransformerNet.Input, TransformerNet.Shape, []);
        var (model, calibration) = QuantizeTestKit.Prepare(net, _folder.Path, "float-output.onnx");
        var outputPath = _folder.File("float-output.int8.onnx");

        var result = new Quantizer(QuantizeTestKit.Options()).Run(model, calibration, outputPath);

        var quantized = ModelLoader.Load(outputPath);
        var fc = Assert.Single(quantized.Graph.Node, n => n.OpType == "MatMul");
        Assert.All(fc.Input, i => Assert.Equal("DequantizeLinear", quantized.Graph.Producers()[i].OpType));
        Assert.DoesNotContain(quantized.Graph.Node, n => n.OpType == "QuantizeLinear" && n.Input[0] == fc.Output[0]);
        Assert.Equal(1, result.Fusion.IntegerKernels.GetValueOrDefault("MatMulIntegerToFloat"));
        Assert.Equal(0, QuantizeTestKit.OptimizedGraph(outputPath).Count("MatMul"));
        var sqnr = QuantizeTestKit.Sqnr(model, outputPath, net)["hidden"];
        Assert.True(sqnr >= 30, $"SQNR {sqnr:F1} dB < 30 dB");
    }

    private string Save(TestNet net)
    {
        var path = _folder.File("transformer.onnx");
        ModelWriter.Save(net.Model, path);
        return path;
    }
}
