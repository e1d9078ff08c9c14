using Quantize.Onnx.Model;
using Quantize.Onnx.Model.Proto;
using Quantize.Onnx.Tests.TestModels;
using Quantize.Onnx.Validation;
using Xunit.Abstractions;

namespace Quantize.Onnx.Tests.Quantization;

/// <summary>A small transformer block (<see cref="TransformerNet"/>) quantized dynamically (no calibration data) and statically.</summary>
public sealed class TransformerQuantizationTests(ITestOutputHelper output) : IDisposable
{
    private readonly TempFolder _folder = new();

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

    [Fact]
    public void Embedding_tables_are_stored_int8_per_row_and_looked_up_exactly_enough()
    {
        // token ids [1, 16] → Gather(table [2000, 64]) → MatMul 64→32 → output.
        var b = new TestModelBuilder(opset: 13, seed: 9, name: "embedding");
        var random = new Random(9);
        var table = b.Constant("word_embeddings", [2000, 64], Enumerable.Range(0, 2000 * 64).Select(i => (float)((random.NextDouble() - 0.5) * (0.02 + (i / 64 % 7 * 0.05)))).ToArray());
        var model = b.Build();
        model.Graph.Input.Add(new ValueInfoProto
        {
            Name = "ids",
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Int64, Shape = new TensorShapeProto { Dim = { new TensorShapeProto.Types.Dimension { DimValue = 1 }, new TensorShapeProto.Types.Dimension { DimValue = 16 } } } } },
        });
        var weights = new TestModelBuilder(opset: 13, seed: 10);
        weights.MatMul("fc", "rows", 64, 32);
        model.Graph.Node.Add(new NodeProto { OpType = "Gather", Name = "lookup", Input = { table, "ids" }, Output = { "rows" } });
        model.Graph.Node.Add(weights.Build().Graph.Node);
        model.Graph.Initializer.Add(weights.Build().Graph.Initializer);
        model.Graph.Output.Add(TestModelBuilder.FloatValueInfo("fc", [1, 16, 32]));
        var path = _folder.File("embedding.onnx");
        ModelWriter.Save(model, path);
        var outputPath = _folder.File("embedding.dynamic.onnx");

        var result = new Quantizer(QuantizeTestKit.Options() with { Mode = QuantizationMode.Dynamic }).Run(path, null, outputPath);

        Assert.Equal(OutputKind.Quantized, result.Output);
        var quantized = ModelLoader.Load(outputPath);
        Assert.DoesNotContain(quantized.Graph.Initializer, t => t.Name == "word_embeddings");
        var lookup = Assert.Single(quantized.Graph.Node, n => n.OpType == "Gather" && quantized.Graph.Initializer.Any(t => t.Name == n.Input[0] && t.DataType == (int)TensorProto.Types.DataType.Int8));
        Assert.Equal([2000L, 1L], quantized.Graph.Initializer.Single(t => t.Dims.SequenceEqual([2000L, 1L])).Dims);
        Assert.True(new FileInfo(outputPath).Length < new FileInfo(path).Length / 3, "int8 table: about a quarter of the size");

        // ORT runs it, and the looked-up rows keep their per-row precision.
        var ids = Enumerable.Range(0, 16).Select(i => (long)((i * 131) + 7) % 2000).ToArray();
        float[] Run(string modelPath)
        {
            using var session = new Microsoft.ML.OnnxRuntime.InferenceSession(modelPath);
            using var input = Microsoft.ML.OnnxRuntime.OrtValue.CreateTensorValueFromMemory(ids, [1, 16]);
            using var outputs = session.Run(new Microsoft.ML.OnnxRuntime.RunOptions(), new Dictionary<string, Microsoft.ML.OnnxRuntime.OrtValue> { ["ids"] = input }, ["fc"]);
            return outputs[0].GetTensorDataAsSpan<float>().ToArray();
        }

        var (expected, actual) = (Run(path), Run(outputPath));
        var sqnr = 10 * Math.Log10(expected.Sum(v => (double)v * v) / expected.Zip(actual, (e, a) => (double)(e - a) * (e - a)).Sum());
        output.WriteLine($"{lookup.Name}: SQNR {sqnr:F1} dB");
        Assert.True(sqnr >= 30, $"SQNR {sqnr:F1} dB < 30 dB");
    }

    [Fact]
    public void Dynamic_mode_turns_gemm_with_transposed_weight_and_bias_into_a_fused_integer_kernel()
    {
        // The MLP: Gemm fc1 (transB=1, bias), fc2 (MatMul + Add, fused into a Gemm by ORT's basic optimisation), MatMul fc3.
        var net = TestNets.Mlp();
        var (model, _) = QuantizeTestKit.Prepare(net, _folder.Path, "mlp.onnx");
        var outputPath = _folder.File("mlp.dynamic.onnx");

        var result = new Quantizer(QuantizeTestKit.Options() with { Mode = QuantizationMode.Dynamic }).Run(model, null, outputPath);

        var optimized = QuantizeTestKit.OptimizedGraph(outputPath);
        var sqnr = QuantizeTestKit.Sqnr(model, outputPath, net)["probs"];
        output.WriteLine($"kernels {string.Join(", ", result.Fusion.IntegerKernels)}; probs {sqnr:F1} dB");
        Assert.Equal(3, result.QuantizedNodes);
        Assert.Equal(3, result.Fusion.IntegerKernels.GetValueOrDefault("DynamicQuantizeMatMul") + result.Fusion.IntegerKernels.GetValueOrDefault("MatMulIntegerToFloat"));
        Assert.Equal(0, optimized.Count("Gemm") + optimized.Count("MatMul") + optimized.Count("MatMulInteger"));
        Assert.True(sqnr >= 30, $"probs SQNR {sqnr:F1} dB < 30 dB"); // measured 43.1 dB
    }

    private string Save(TestNet net)
    {
        var path = _folder.File("transformer.onnx");
        ModelWriter.Save(net.Model, path);
        return path;
    }
}
