using Quantize.Onnx.Model;
using Quantize.Onnx.Model.Proto;
using Quantize.Onnx.Quantization;
using Quantize.Onnx.Reporting;
using Quantize.Onnx.Tests.TestModels;
using Quantize.Onnx.Validation;
using Xunit.Abstractions;

namespace Quantize.Onnx.Tests.Quantization;

/// <summary>Weight-only 4-bit mode (<c>--mode weight4</c>) on an LLM-shaped graph (<see cref="LlmNet"/>), checked with ONNX Runtime.</summary>
public sealed class Weight4QuantizationTests(ITestOutputHelper output) : IDisposable
{
    private static readonly int[] HeldOut = [401, 402, 403, 404];
    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    [Fact]
    public void Weight4_mode_turns_weight_matmuls_into_MatMulNBits_with_the_contrib_op_layout_and_keeps_the_rest_float()
    {
        var model = Save(LlmNet.Build(), "llm.onnx");
        var outputPath = _folder.File("llm.weight4.onnx");

        var result = new Quantizer(QuantizeTestKit.Options() with { Mode = QuantizationMode.Weight4 }).Run(model, null, outputPath);

        var (cosine, sqnr) = Fidelity(model, outputPath);
        output.WriteLine($"kernels {string.Join(", ", result.Fusion.IntegerKernels)}; logits cosine {cosine:F5}, SQNR {sqnr:F1} dB; {new FileInfo(model).Length} -> {new FileInfo(outputPath).Length} bytes");
        Assert.Equal(OutputKind.Quantized, result.Output);
        Assert.Equal("weight4", result.Settings["mode"]);
        Assert.Equal("32", result.Settings["block-size"]);
        Assert.Equal("0", result.Settings["accuracy-level"]);
        Assert.Equal("false", result.Settings["weight4-asymmetric"]);
        Assert.Equal(0, result.CalibrationSamples);
        Assert.Equal(LlmNet.BlockMatMuls.Length, result.QuantizedNodes);
        Assert.Equal(LlmNet.BlockMatMuls.Length, result.Fusion.IntegerKernels.GetValueOrDefault("MatMulNBits"));

        var quantized = ModelLoader.Load(outputPath);
        Assert.Contains(quantized.OpsetImport, o => o.Domain == "com.microsoft" && o.Version == 1);
        var nbits = quantized.Graph.Node.Where(n => n.OpType == "MatMulNBits").ToList();
        Assert.Equal(LlmNet.BlockMatMuls.Length, nbits.Count);
        foreach (var node in nbits)
        {
            Assert.Equal("com.microsoft", node.Domain);
            var (k, n) = (node.GetInt("K", 0), node.GetInt("N", 0));
            var blocks = (k + 31) / 32;
            Assert.Equal(4, node.GetInt("bits", 0));
            Assert.Equal(32, node.GetInt("block_size", 0));
            Assert.Null(node.Find("accuracy_level"));
            var packed = quantized.Graph.Initializer(node.Input[1]);
            Assert.Equal((int)TensorProto.Types.DataType.Uint8, packed.DataType);
            Assert.Equal([n, blocks, 16L], packed.Dims);
            Assert.Equal(n * blocks * 16, packed.RawData.Length);
            Assert.Equal([n * blocks], quantized.Graph.Initializer(node.Input[2]).Dims);

            // Symmetric: no zero points; the bias Add joined the node as its bias input (index 5), except lm_head's (none).
            var hasBias = node.Input.Count == 6;
            Assert.True(node.Input.Count is 3 or 6);
            Assert.True(node.Input.Count == 3 || (node.Input[3] == "" && node.Input[4] == ""));
            Assert.Equal(!node.Name.StartsWith("lm_head", StringComparison.Ordinal), hasBias);
        }

        // K = 400 (ff2) is padded to 13 blocks of 32.
        Assert.Contains(nbits, n => n.GetInt("K", 0) == LlmNet.FeedForward && quantized.Graph.Initializer(n.Input[1]).Dims[1] == 13);

        // Stay float: the two MatMuls of activations, the 8-class head (N below one block), LayerNorm, Softmax, GELU.
        Assert.Equal(["context", "head", "scores"], quantized.Graph.Node.Where(n => n.OpType == "MatMul").Select(n => n.Name).Order(StringComparer.Ordinal));
        Assert.Contains(quantized.Graph.Node, n => n.OpType == "Softmax");
        Assert.Contains(quantized.Graph.Node, n => n.OpType == "Erf");
        Assert.DoesNotContain(quantized.Graph.Node, n => n.OpType is "QuantizeLinear" or "DequantizeLinear" or "DynamicQuantizeLinear");

        // The embedding table is int8 per row; no float weight of a block MatMul is left.
        Assert.DoesNotContain(quantized.Graph.Initializer, t => t.Name == "token_embeddings");
        Assert.DoesNotContain(quantized.Graph.Initializer, t => LlmNet.BlockMatMuls.Any(m => t.Name == m + ".weight"));
        Assert.True(new FileInfo(outputPath).Length < new FileInfo(model).Length / 4, "4-bit weights and an int8 table: under a quarter of the size");

        // Measured: cosine 0.973, 12.6 dB (dynamic int8: 0.9996, 31.2 dB). 4-bit blocks of random Gaussian weights keep
        // 21.4 dB each (Block4QuantizerTests); attention and the residual stream compound seven of them.
        Assert.True(cosine >= 0.95, $"logits cosine {cosine:F5} < 0.95");
        Assert.True(sqnr >= 10, $"logits SQNR {sqnr:F1} dB < 10 dB");
    }

    [Theory]
    [InlineData(false, 0)]
    [InlineData(true, 0)]
    [InlineData(false, 4)]
    public void OnnxRuntime_multiplies_by_exactly_the_dequantized_blocks(bool asymmetric, int accuracyLevel)
    {
        // x [1, 8, 400] → MatMul W [400, 64] → Add b: K = 400 is 12.5 blocks of 32 (the last one padded).
        var b = new TestModelBuilder(opset: 13, seed: 5, name: "one-matmul");
        var x = b.Input("x", 1, 8, 400);
        b.Node("Identity", "y", [b.AddBias("fc_bias", b.MatMul("fc", x, 400, 64), 64)]);
        b.Output("y", 1, 8, 64);
        var source = b.Build();
        var model = Save(source, "one.onnx");
        var outputPath = _folder.File("one.weight4.onnx");
        var options = QuantizeTestKit.Options() with { Mode = QuantizationMode.Weight4, Weight4Asymmetric = asymmetric, AccuracyLevel = accuracyLevel };

        var result = new Quantizer(options).Run(model, null, outputPath);

        Assert.Equal(OutputKind.Quantized, result.Output);
        var quantized = ModelLoader.Load(outputPath);
        var node = Assert.Single(quantized.Graph.Node, n => n.OpType == "MatMulNBits");
        Assert.Equal(6, node.Input.Count);
        Assert.Equal(asymmetric, node.Input[3].Length > 0);
        if (asymmetric)
        {
            // 13 blocks per column: 7 bytes of two zero points each, per column.
            Assert.Equal([64L * 7], quantized.Graph.Initializer(node.Input[3]).Dims);
        }

        Assert.Equal(accuracyLevel == 0 ? null : accuracyLevel, node.Find("accuracy_level")?.I);

        // The weights ORT multiplies by are the block dequantization of the float weight.
        var weight = TensorValues.ReadFloats(source.Graph.Initializer("fc.weight"));
        var blocks = Block4Quantizer.Quantize(weight, 400, 64, transposed: false, blockSize: 32, asymmetric);
        Assert.Equal(blocks.Packed, quantized.Graph.Initializer(node.Input[1]).RawData.ToByteArray());
        var dequantized = blocks.Dequantize();
        var bias = TensorValues.ReadFloats(source.Graph.Initializer("fc_bias.bias"));
        var input = QuantizeTestKit.Structured(7, [1, 8, 400]);
        var actual = QuantizeTestKit.Run(outputPath, "x", [1, 8, 400], [input])[0]["y"];
        var (worst, scale) = (0.0, 0.0);
        for (var row = 0; row < 8; row++)
        {
            for (var n = 0; n < 64; n++)
            {
                double expected = bias[n];
                for (var k = 0; k < 400; k++)
                {
                    expected += (double)input[(row * 400) + k] * dequantized[(k * 64) + n];
                }

                worst = Math.Max(worst, Math.Abs(expected - actual[(row * 64) + n]));
                scale = Math.Max(scale, Math.Abs(expected));
            }
        }

        output.WriteLine($"asymmetric {asymmetric}, accuracy level {accuracyLevel}: max |ORT - x·dequantized(W) - b| = {worst:G3} (outputs up to {scale:F2})");

        // Float compute: rounding only. Accuracy level 4 quantizes x to int8 per block inside the kernel: ~1 % of the range.
        Assert.True(worst <= (accuracyLevel == 4 ? 0.02 : 1e-4) * scale, $"max error {worst:G3} vs outputs up to {scale:F2}");
    }

    [Fact]
    public void Larger_blocks_store_fewer_scales_and_pad_K_further()
    {
        var model = Save(LlmNet.Build(), "llm.onnx");
        var sizes = new Dictionary<int, (long Bytes, double Sqnr)>();
        foreach (var blockSize in new[] { 32, 128 })
        {
            var outputPath = _folder.File($"llm.block{blockSize}.onnx");
            var result = new Quantizer(QuantizeTestKit.Options() with { Mode = QuantizationMode.Weight4, BlockSize = blockSize }).Run(model, null, outputPath);
            Assert.Equal(blockSize.ToString(System.Globalization.CultureInfo.InvariantCulture), result.Settings["block-size"]);
            var quantized = ModelLoader.Load(outputPath);
            long bytes = 0;
            foreach (var node in quantized.Graph.Node.Where(n => n.OpType == "MatMulNBits"))
            {
                var (k, n) = (node.GetInt("K", 0), node.GetInt("N", 0));
                var blocks = (k + blockSize - 1) / blockSize;
                Assert.Equal(blockSize, node.GetInt("block_size", 0));
                Assert.Equal(n * blocks * blockSize / 2, quantized.Graph.Initializer(node.Input[1]).RawData.Length);
                Assert.Equal(n * blocks * sizeof(float), quantized.Graph.Initializer(node.Input[2]).RawData.Length);
                bytes += quantized.Graph.Initializer(node.Input[1]).RawData.Length + quantized.Graph.Initializer(node.Input[2]).RawData.Length;
            }

            sizes[blockSize] = (bytes, Fidelity(model, outputPath).Sqnr);
        }

        // Per column of K = 256: 8 blocks of 32 (128 + 32 bytes) vs 2 of 128 (128 + 8 bytes); K = 400 (ff2): 13 blocks of 32
        // (208 + 52 bytes) vs 4 of 128 (256 + 16 bytes, 112 padded rows). Columns: q, k, v, o 256 each, ff1 400, lm_head 512; ff2 256.
        long smaller = ((4 * 256) + 400 + 512) * (160 - 136);
        long ff2 = 256 * (260 - 272);
        output.WriteLine($"block 32: {sizes[32].Bytes} bytes, {sizes[32].Sqnr:F1} dB; block 128: {sizes[128].Bytes} bytes, {sizes[128].Sqnr:F1} dB");
        Assert.Equal(smaller + ff2, sizes[32].Bytes - sizes[128].Bytes);
        Assert.True(sizes[128].Sqnr < sizes[32].Sqnr, "coarser blocks lose precision"); // measured 10.8 vs 12.6 dB
    }

    [Fact]
    public void Gemm_with_a_transposed_weight_and_bias_becomes_MatMulNBits()
    {
        // x [4, 256] → Gemm fc1 (transB = 1, bias) 256→128 → Relu → Gemm fc2 128→64 → output.
        var b = new TestModelBuilder(opset: 13, seed: 12, name: "gemm");
        var x = b.Input("x", 4, 256);
        b.Node("Identity", "y", [b.Gemm("fc2", b.Relu("relu", b.Gemm("fc1", x, 256, 128)), 128, 64)]);
        b.Output("y", 4, 64);
        var net = new TestNet(b.Build(), "x", [4, 256], []);
        var model = Save(net.Model, "gemm.onnx");
        var outputPath = _folder.File("gemm.weight4.onnx");

        var result = new Quantizer(QuantizeTestKit.Options() with { Mode = QuantizationMode.Weight4 }).Run(model, null, outputPath);

        var quantized = ModelLoader.Load(outputPath);
        var nbits = quantized.Graph.Node.Where(n => n.OpType == "MatMulNBits").ToList();
        Assert.Equal([(256L, 128L), (128L, 64L)], nbits.Select(n => (n.GetInt("K", 0), n.GetInt("N", 0))));
        Assert.All(nbits, n => Assert.Equal(6, n.Input.Count));
        Assert.DoesNotContain(quantized.Graph.Node, n => n.OpType == "Gemm");
        Assert.Equal(2, result.Fusion.IntegerKernels.GetValueOrDefault("MatMulNBits"));

        // The [N, K] Gemm weight is already MatMulNBits' column order: packed straight from its rows.
        var fc1 = TensorValues.ReadFloats(net.Model.Graph.Initializer("fc1.weight"));
        Assert.Equal(Block4Quantizer.Quantize(fc1, 256, 128, transposed: true, 32, asymmetric: false).Packed, quantized.Graph.Initializer(nbits[0].Input[1]).RawData.ToByteArray());
        var sqnr = QuantizeTestKit.Sqnr(model, outputPath, net)["y"];
        output.WriteLine($"SQNR {sqnr:F1} dB");
        Assert.True(sqnr >= 15, $"SQNR {sqnr:F1} dB < 15 dB");
    }

    [Fact]
    public void Validation_samples_gate_a_weight4_model_and_the_report_records_the_options()
    {
        var model = Save(LlmNet.Build(), "llm.onnx");
        var validation = LlmNet.WriteSamples(_folder.File("validation"), HeldOut);
        var options = QuantizeTestKit.Options() with
        {
            Mode = QuantizationMode.Weight4,
            BlockSize = 64,
            Weight4Asymmetric = true,
            AccuracyLevel = 4,
            Validation = new ValidationOptions { Folder = validation, Checks = [AccuracyCheck.Parse($"cosine@{LlmNet.Logits}>=0.9"), AccuracyCheck.Parse($"sqnr@{LlmNet.Logits}>=40")] },
            KeepFloatIfSlower = true,
        };
        var outputPath = _folder.File("llm.weight4.onnx");

        var failed = Assert.Throws<QuantizeException>(() => new Quantizer(options).Run(model, null, outputPath));

        // 4-bit weights cannot reach 40 dB here: the gate fails the run and names the check; nothing is written.
        Assert.Equal(ErrorCodes.AccuracyCheckFailed, failed.Code);
        Assert.Contains("sqnr", failed.Message);
        Assert.False(File.Exists(outputPath));
        var report = failed.Result!;
        Assert.True(report.Validation!.Checks.Single(c => c.Metric == "cosine").Passed);
        Assert.Equal(("64", "4", "true"), (report.Settings["block-size"], report.Settings["accuracy-level"], report.Settings["weight4-asymmetric"]));

        var result = new Quantizer(options with { Validation = options.Validation with { Checks = [AccuracyCheck.Parse($"cosine@{LlmNet.Logits}>=0.9")] } }).Run(model, null, outputPath);

        // Passes, and ships 4-bit even where it is not faster than FP32 on this batch (keep-float-if-slower does not apply: it is a size mode).
        Assert.Equal(OutputKind.Quantized, result.Output);
        Assert.True(result.Validation!.Passed);
        Assert.Equal(HeldOut.Length, result.Validation.Samples);
        Assert.Equal(2, result.FidelitySamples);
        Assert.DoesNotContain(result.Warnings, w => w.Code == ErrorCodes.KeptFloatNotFaster);
        var provenance = ModelLoader.Load(outputPath).MetadataProps.ToDictionary(p => p.Key, p => p.Value);
        Assert.Contains(provenance, p => p.Value.Contains("weight4", StringComparison.Ordinal));

        // The reports say what ran: the JSON settings and the HTML calibration card.
        var json = _folder.File("report.json");
        ReportWriter.Write(result, json);
        Assert.Contains("\"block-size\": \"64\"", File.ReadAllText(json));
        var html = _folder.File("report.html");
        HtmlReport.Write(result, html);
        Assert.Contains("none: 4-bit weights, blocks of 64", File.ReadAllText(html));
    }

    [Fact]
    public void A_weight_read_by_two_MatMuls_is_packed_once()
    {
        // x [1, 4, 64] → MatMul(x, W) → Relu → MatMul(·, W) with the same 64×64 initializer W.
        var b = new TestModelBuilder(opset: 13, seed: 14, name: "shared");
        var x = b.Input("x", 1, 4, 64);
        var first = b.MatMul("first", x, 64, 64); // its weight: initializer "first.weight"
        b.Node("Identity", "y", [b.Node("MatMul", "second", [b.Relu("relu", first), "first.weight"])]);
        b.Output("y", 1, 4, 64);
        var net = new TestNet(b.Build(), "x", [1, 4, 64], []);
        var model = Save(net.Model, "shared.onnx");
        var outputPath = _folder.File("shared.weight4.onnx");

        new Quantizer(QuantizeTestKit.Options() with { Mode = QuantizationMode.Weight4 }).Run(model, null, outputPath);

        var quantized = ModelLoader.Load(outputPath);
        var nbits = quantized.Graph.Node.Where(n => n.OpType == "MatMulNBits").ToList();
        Assert.Equal(2, nbits.Count);
        Assert.Single(nbits.Select(n => n.Input[1]).Distinct());
        Assert.Single(quantized.Graph.Initializer, t => t.DataType == (int)TensorProto.Types.DataType.Uint8);
        Assert.DoesNotContain(quantized.Graph.Initializer, t => t.Name == "first.weight");
        var sqnr = QuantizeTestKit.Sqnr(model, outputPath, net)["y"];
        Assert.True(sqnr >= 15, $"SQNR {sqnr:F1} dB < 15 dB");
    }

    [Theory]
    [InlineData(8, 0, "QNT1520")]
    [InlineData(48, 0, "QNT1520")]
    [InlineData(512, 0, "QNT1520")]
    [InlineData(32, 5, "QNT1521")]
    [InlineData(32, -1, "QNT1521")]
    public void Bad_block_size_or_accuracy_level_is_a_coded_error(int blockSize, int accuracyLevel, string code)
    {
        var model = Save(LlmNet.Build(), "llm.onnx");
        var options = QuantizeTestKit.Options() with { Mode = QuantizationMode.Weight4, BlockSize = blockSize, AccuracyLevel = accuracyLevel };

        var e = Assert.Throws<QuantizeException>(() => new Quantizer(options).Run(model, null, _folder.File("out.onnx")));

        Assert.Equal(code, e.Code);
        Assert.Contains(code == "QNT1520" ? "--block-size (QuantizeBlockSize)" : "--accuracy-level (QuantizeAccuracyLevel)", e.Message);
    }

    [Fact]
    public void A_model_without_a_weight_worth_4_bit_blocks_is_written_unchanged_with_a_warning()
    {
        // The MLP's weights are 32×64, 64×32 and 32×10: with blocks of 64, no K and N reach one block.
        var net = TestNets.Mlp();
        var model = Save(net.Model, "mlp.onnx");

        var result = new Quantizer(QuantizeTestKit.Options() with { Mode = QuantizationMode.Weight4, BlockSize = 64 }).Run(model, null, _folder.File("mlp.out.onnx"));

        Assert.Equal(OutputKind.Unchanged, result.Output);
        var warning = Assert.Single(result.Warnings, w => w.Code == ErrorCodes.NothingToQuantizeWeight4);
        Assert.Contains("at least one block (64)", warning.Message);
        Assert.Contains("smaller --block-size", warning.Message);
        Assert.Equal("weight4", result.Settings["mode"]);

        // A conv net has nothing weight4 quantizes at all: the warning points at static mode instead.
        var conv = Save(TestNets.ConvNet().Model, "convnet.onnx");
        var convResult = new Quantizer(QuantizeTestKit.Options() with { Mode = QuantizationMode.Weight4 }).Run(conv, null, _folder.File("convnet.out.onnx"));
        Assert.Equal(OutputKind.Unchanged, convResult.Output);
        Assert.Contains("no MatMul or Gemm", Assert.Single(convResult.Warnings, w => w.Code == ErrorCodes.NothingToQuantizeWeight4).Message);
    }

    private string Save(ModelProto model, string name)
    {
        var path = _folder.File(name);
        ModelWriter.Save(model, path);
        return path;
    }

    /// <summary>Mean cosine and overall SQNR of the logits vs FP32 on held-out token sequences.</summary>
    private static (double Cosine, double Sqnr) Fidelity(string reference, string candidate)
    {
        var sequences = HeldOut.Select(LlmNet.TokenIds).ToList();
        var expected = LlmNet.Run(reference, sequences);
        var actual = LlmNet.Run(candidate, sequences);
        double cosine = 0, signal = 0, noise = 0;
        for (var s = 0; s < sequences.Count; s++)
        {
            var (e, a) = (expected[s][LlmNet.Logits], actual[s][LlmNet.Logits]);
            double dot = 0, ee = 0, aa = 0;
            for (var i = 0; i < e.Length; i++)
            {
                dot += (double)e[i] * a[i];
                ee += (double)e[i] * e[i];
                aa += (double)a[i] * a[i];
                noise += ((double)e[i] - a[i]) * ((double)e[i] - a[i]);
            }

            signal += ee;
            cosine += dot / Math.Sqrt(ee * aa) / sequences.Count;
        }

        return (cosine, 10 * Math.Log10(signal / noise));
    }
}
