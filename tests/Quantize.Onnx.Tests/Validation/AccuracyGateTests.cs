using Quantize.Onnx.Model;
using Quantize.Onnx.Tests.Samples;
using Quantize.Onnx.Tests.TestModels;
using Quantize.Onnx.Validation;
using Xunit.Abstractions;

namespace Quantize.Onnx.Tests.Validation;

/// <summary>The accuracy gate on the small conv net and the MLP: pass, fail with the layer list, ship FP32, ground truth.</summary>
public sealed class AccuracyGateTests(ITestOutputHelper output) : IDisposable
{
    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    private (string Model, string Calibration, string Validation) Prepare(TestNet net)
    {
        var (model, calibration) = QuantizeTestKit.Prepare(net, _folder.Path);
        var validation = QuantizeTestKit.WriteCalibration(Path.Combine(_folder.Path, "validation"), net.InputName, net.InputShape, QuantizeTestKit.HeldOutSeeds);
        return (model, calibration, validation);
    }

    private static QuantizationOptions Options(string? validation, AccuracyFailureAction onFailure = AccuracyFailureAction.Error, double? minSpeedup = null, params string[] checks) =>
        QuantizeTestKit.Options() with
        {
            Validation = new ValidationOptions
            {
                Folder = validation,
                Checks = checks.Select(AccuracyCheck.Parse).ToList(),
                OnFailure = onFailure,
                MinSpeedup = minSpeedup,
                LayerSamples = 2,
            },
        };

    [Fact]
    public void Default_checks_pass_and_the_report_holds_every_metric_and_the_layers()
    {
        var net = TestNets.Mlp();
        var (model, calibration, validation) = Prepare(net);

        var result = new Quantizer(Options(validation)).Run(model, calibration, _folder.File("out.onnx"));

        var report = Assert.IsType<ValidationReport>(result.Validation);
        output.WriteLine(string.Join("; ", report.Checks.Select(c => c.Describe())));
        Assert.True(report.Passed);
        Assert.Equal(OutputKind.Quantized, result.Output);

        // probs is [8, 10]: sqnr>=10 and top1-agreement>=95 apply by default.
        Assert.Equal(["sqnr>=10", "top1-agreement>=95"], report.Checks.Select(c => c.Check));
        Assert.All(report.Checks, c => Assert.Equal("probs", c.Output));
        Assert.Equal(["cosine", "max-abs-error", "psnr", "sqnr", "top1-agreement", "top5-agreement"], report.Metrics.Select(m => m.Metric).Order());
        Assert.Equal(4, report.Samples);
        Assert.NotEmpty(report.WorstLayers);
        Assert.DoesNotContain(result.Warnings, w => w.Code == ErrorCodes.ValidatingOnCalibration);
        Assert.True(File.Exists(_folder.File("out.onnx")));
    }

    [Fact]
    public void An_impossible_threshold_fails_with_QNT1401_naming_values_threshold_and_worst_layers()
    {
        var net = TestNets.ConvNet();
        var (model, calibration, validation) = Prepare(net);
        var outputPath = _folder.File("out.onnx");

        // Every validation sample in the per-layer analysis, so the ranking of the layers is the set's, not a pair's.
        var options = Options(validation, checks: "sqnr>=80");
        options = options with { Validation = options.Validation! with { LayerSamples = 4 } };
        var e = Assert.Throws<QuantizeException>(() => new Quantizer(options).Run(model, calibration, outputPath));

        output.WriteLine(e.Message);
        Assert.Equal(ErrorCodes.AccuracyCheckFailed, e.Code);
        Assert.Contains("model.onnx", e.Message, StringComparison.Ordinal);
        Assert.Contains("check 'sqnr>=80' on output 'conv4': INT8 vs FP32 ", e.Message, StringComparison.Ordinal);
        Assert.Contains("< threshold 80 dB: failed", e.Message, StringComparison.Ordinal);
        Assert.Contains("Most damaging layers", e.Message, StringComparison.Ordinal);
        var hint = System.Text.RegularExpressions.Regex.Match(e.Message, "QuantizeExcludeNodes=\"([^\"]+)\"");
        Assert.True(hint.Success, e.Message);
        var layers = hint.Groups[1].Value.Split(';');
        Assert.Equal(3, layers.Length);
        var nodeNames = ModelLoader.Load(model).Graph.Node.Select(n => n.Name).ToHashSet();
        Assert.All(layers, l => Assert.Contains(l, nodeNames));

        // The 1x1 head conv on the pooled features loses the most; an absorbed Relu is named by its conv.
        Assert.Contains("head", layers);
        Assert.DoesNotContain(layers, l => l.StartsWith("relu", StringComparison.Ordinal));
        Assert.Contains($"--exclude-nodes \"{hint.Groups[1].Value}\"", e.Message, StringComparison.Ordinal);
        Assert.False(File.Exists(outputPath));
    }

    [Fact]
    public void Ship_fp32_writes_the_unchanged_fp32_model_with_QNT2401()
    {
        var net = TestNets.ConvNet();
        var (model, calibration, validation) = Prepare(net);
        var outputPath = _folder.File("out.onnx");

        var result = new Quantizer(Options(validation, AccuracyFailureAction.ShipFp32, null, "sqnr>=80", "cosine>=0.5")).Run(model, calibration, outputPath);

        Assert.Equal(OutputKind.KeptFloatFailedCheck, result.Output);
        var warning = Assert.Single(result.Warnings, w => w.Code == ErrorCodes.AccuracyCheckFailedShippedFp32);
        Assert.Contains("FP32 model is shipped unchanged", warning.Message, StringComparison.Ordinal);
        Assert.Contains("(passed: cosine>=0.5)", warning.Message, StringComparison.Ordinal);
        var written = ModelLoader.Load(outputPath);
        Assert.DoesNotContain(written.Graph.Node, n => n.OpType is "QuantizeLinear" or "DequantizeLinear");
        Assert.Equal(ModelLoader.Load(model).Graph.Node.Count, written.Graph.Node.Count);
        Assert.Contains(written.MetadataProps, p => p.Value.Contains("kept-fp32-accuracy-check-failed", StringComparison.Ordinal));
        Assert.False(result.Validation!.Passed);
    }

    [Fact]
    public void Ground_truth_drop_checks_compare_fp32_and_int8_with_expected_outputs()
    {
        var net = TestNets.Mlp();
        var (model, calibration, validation) = Prepare(net);

        // Ground truth: the FP32 probabilities plus a fixed perturbation, so both models have an error.
        var inputs = QuantizeTestKit.HeldOutSeeds.Select(s => QuantizeTestKit.Structured(s, net.InputShape)).ToList();
        var fp32 = QuantizeTestKit.Run(model, net.InputName, net.InputShape, inputs);
        var expected = new List<float[]>();
        for (var s = 0; s < inputs.Count; s++)
        {
            var values = fp32[s]["probs"].Select((v, i) => v + (0.01f * ((i % 3) - 1))).ToArray();
            expected.Add(values);
            var folder = Directory.CreateDirectory(Path.Combine(validation, $"sample_{s:D3}", "expected")).FullName;
            Npy.WriteFloats(Path.Combine(folder, "probs.npy"), [8, 10], values);
        }

        var outputPath = _folder.File("out.onnx");
        var result = new Quantizer(Options(validation, AccuracyFailureAction.Error, null, "drop:mse<=1", "drop:top1<=100", "mae<=1")).Run(model, calibration, outputPath);

        var report = result.Validation!;
        output.WriteLine(string.Join("; ", report.Checks.Select(c => c.Describe())));
        Assert.True(report.Passed);

        // The same numbers computed here from the written INT8 model.
        var int8 = QuantizeTestKit.Run(outputPath, net.InputName, net.InputShape, inputs);
        double Mse(List<Dictionary<string, float[]>> runs) =>
            runs.SelectMany((r, s) => r["probs"].Select((v, i) => Math.Pow(v - expected[s][i], 2))).Average();
        var mse = Assert.Single(report.Checks, c => c.Check == "drop:mse<=1");
        Assert.Equal(Mse(fp32), mse.Fp32!.Value, 6);
        Assert.Equal(Mse(int8), mse.Int8, 6);
        Assert.Equal(Mse(int8) - Mse(fp32), mse.Value, 6);
        Assert.Contains(report.Metrics, m => m.Kind == "task" && m.Metric == "top1" && m.Fp32 > 50);

        // A drop check that must fail names FP32, INT8, drop and threshold.
        var e = Assert.Throws<QuantizeException>(() => new Quantizer(Options(validation, AccuracyFailureAction.Error, null, "drop:mse<=-1")).Run(model, calibration, _folder.File("out2.onnx")));
        Assert.Equal(ErrorCodes.AccuracyCheckFailed, e.Code);
        Assert.Matches(@"check 'drop:mse<=-1' on output 'probs': FP32 \S+, INT8 \S+, drop \S+ > threshold -1: failed", e.Message);
    }

    [Fact]
    public void Expected_output_of_the_wrong_shape_is_QNT1108_naming_the_file()
    {
        var net = TestNets.Mlp();
        var (model, calibration, validation) = Prepare(net);
        var folder = Directory.CreateDirectory(Path.Combine(validation, "sample_001", "expected")).FullName;
        var file = Npy.WriteFloats(Path.Combine(folder, "probs.npy"), [8, 9], new float[72]);

        var e = Assert.Throws<QuantizeException>(() => new Quantizer(Options(validation)).Run(model, calibration, _folder.File("out.onnx")));

        Assert.Equal(ErrorCodes.ExpectedShapeMismatch, e.Code);
        Assert.Equal(file, e.File);
        Assert.Contains("[8, 9]", e.Message, StringComparison.Ordinal);
        Assert.Contains("[8, 10]", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Class_index_ground_truth_gives_top1_accuracy()
    {
        var net = TestNets.Mlp();
        var (model, calibration, validation) = Prepare(net);
        var inputs = QuantizeTestKit.HeldOutSeeds.Select(s => QuantizeTestKit.Structured(s, net.InputShape)).ToList();
        var fp32 = QuantizeTestKit.Run(model, net.InputName, net.InputShape, inputs);
        for (var s = 0; s < inputs.Count; s++)
        {
            // The FP32 class of every row, except row 0 which is labelled one class off.
            var labels = Enumerable.Range(0, 8).Select(r => (long)FidelityMetrics.ArgMax(fp32[s]["probs"].AsSpan(r * 10, 10))).ToArray();
            labels[0] = (labels[0] + 1) % 10;
            var folder = Directory.CreateDirectory(Path.Combine(validation, $"sample_{s:D3}", "expected")).FullName;
            Npy.WriteInt64(Path.Combine(folder, "probs.npy"), [8], labels);
        }

        var result = new Quantizer(Options(validation, AccuracyFailureAction.Error, null, "drop:top1<=100")).Run(model, calibration, _folder.File("out.onnx"));

        var top1 = Assert.Single(result.Validation!.Metrics, m => m.Kind == "task" && m.Metric == "top1");
        Assert.Equal(87.5, top1.Fp32);
    }

    [Fact]
    public void Class_names_in_label_txt_give_top1_and_top5_accuracy()
    {
        var net = TestNets.Mlp();
        var (model, calibration, validation) = Prepare(net);
        string[] names = ["cat", "dog", "car", "bus", "tree", "sky", "road", "bird", "boat", "cup"];
        File.WriteAllLines(Path.Combine(validation, Onnx.Samples.ClassLabels.FileName), names);
        var inputs = QuantizeTestKit.HeldOutSeeds.Select(s => QuantizeTestKit.Structured(s, net.InputShape)).ToList();
        var fp32 = QuantizeTestKit.Run(model, net.InputName, net.InputShape, inputs);
        int rows = 0, top1 = 0, top5 = 0;
        for (var s = 0; s < inputs.Count; s++)
        {
            // Each row is labelled with FP32's second-best class, except the first row of each sample (its best).
            var labels = new List<string>();
            for (var r = 0; r < 8; r++)
            {
                var order = Enumerable.Range(0, 10).OrderByDescending(c => fp32[s]["probs"][(r * 10) + c]).ThenBy(c => c).ToList();
                var label = order[r == 0 ? 0 : 1];
                labels.Add(names[label]);
                rows++;
                top1 += r == 0 ? 1 : 0;
                top5 += order.IndexOf(label) < 5 ? 1 : 0;
            }

            File.WriteAllText(Path.Combine(validation, $"sample_{s:D3}", ExpectedOutputs.SampleLabelFile), string.Join("\n", labels) + "\n");
        }

        var result = new Quantizer(Options(validation, AccuracyFailureAction.Error, null, "drop:top5<=100", "top1-agreement>=0")).Run(model, calibration, _folder.File("out.onnx"));

        var metrics = result.Validation!.Metrics.Where(m => m.Kind == "task").ToDictionary(m => m.Metric);
        Assert.Equal(100.0 * top1 / rows, metrics["top1"].Fp32);
        Assert.Equal(100.0 * top5 / rows, metrics["top5"].Fp32);
        Assert.Equal(100, metrics["top5"].Fp32);
        Assert.Equal(["top1", "top5"], metrics.Keys.Order());
    }

    [Theory]
    [InlineData("unicorn", "neither a class name nor a class index below 10")]
    [InlineData("12", "neither a class name nor a class index below 10")]
    public void A_label_that_is_no_class_is_QNT1108_naming_the_file(string label, string reason)
    {
        var net = TestNets.Mlp();
        var (model, calibration, validation) = Prepare(net);
        foreach (var sample in Directory.GetDirectories(validation))
        {
            File.WriteAllText(Path.Combine(sample, ExpectedOutputs.SampleLabelFile), string.Join(" ", Enumerable.Repeat("3", 7).Append(label)));
        }

        var e = Assert.Throws<QuantizeException>(() => new Quantizer(Options(validation, AccuracyFailureAction.Error, null, "top1>=0")).Run(model, calibration, _folder.File("out.onnx")));

        Assert.Equal(ErrorCodes.ExpectedShapeMismatch, e.Code);
        Assert.EndsWith(ExpectedOutputs.SampleLabelFile, e.File, StringComparison.Ordinal);
        Assert.Contains(reason, e.Message, StringComparison.Ordinal);
        Assert.Contains(Onnx.Samples.ClassLabels.FileName, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_drop_check_without_ground_truth_is_QNT1201_naming_the_check()
    {
        var net = TestNets.Mlp();
        var (model, calibration, validation) = Prepare(net);

        var e = Assert.Throws<QuantizeException>(() => new Quantizer(Options(validation, AccuracyFailureAction.Error, null, "drop:psnr<=1")).Run(model, calibration, _folder.File("out.onnx")));

        Assert.Equal(ErrorCodes.InvalidOption, e.Code);
        Assert.Contains("'drop:psnr<=1'", e.Message, StringComparison.Ordinal);
        Assert.Contains("expected/probs.npy", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Validating_on_the_calibration_folder_warns_QNT2403()
    {
        var net = TestNets.Mlp();
        var (model, calibration, _) = Prepare(net);

        var result = new Quantizer(Options(calibration + Path.DirectorySeparatorChar)).Run(model, calibration, _folder.File("out.onnx"));

        var warning = Assert.Single(result.Warnings, w => w.Code == ErrorCodes.ValidatingOnCalibration);
        Assert.Contains("validating on calibration samples overstates accuracy", warning.Message, StringComparison.Ordinal);
        Assert.True(result.Validation!.SameAsCalibration);
    }

    [Fact]
    public void Min_speedup_fails_with_QNT1402_or_ships_fp32_with_QNT2402()
    {
        var net = TestNets.Mlp();
        var (model, calibration, _) = Prepare(net);
        var outputPath = _folder.File("out.onnx");

        var e = Assert.Throws<QuantizeException>(() => new Quantizer(Options(null, minSpeedup: 1000)).Run(model, calibration, outputPath));
        Assert.Equal(ErrorCodes.SpeedupTooLow, e.Code);
        Assert.Contains("below the minimum speed-up 1000x", e.Message, StringComparison.Ordinal);
        Assert.False(File.Exists(outputPath));

        var result = new Quantizer(Options(null, AccuracyFailureAction.ShipFp32, 1000)).Run(model, calibration, outputPath);
        Assert.Equal(OutputKind.KeptFloatFailedCheck, result.Output);
        Assert.Single(result.Warnings, w => w.Code == ErrorCodes.SpeedupTooLowShippedFp32);
        Assert.Null(result.Validation);
        Assert.DoesNotContain(ModelLoader.Load(outputPath).Graph.Node, n => n.OpType == "QuantizeLinear");
    }

    [Theory]
    [InlineData("sqnr@nope>=10", "names output 'nope'")]
    [InlineData("top1-agreement@conv4>=90", "does not apply to output 'conv4'")]
    public void Checks_that_do_not_fit_the_model_are_QNT1201(string spec, string reason)
    {
        var net = TestNets.ConvNet();
        var (model, calibration, validation) = Prepare(net);

        var e = Assert.Throws<QuantizeException>(() => new Quantizer(Options(validation, checks: spec)).Run(model, calibration, _folder.File("out.onnx")));

        Assert.Equal(ErrorCodes.InvalidOption, e.Code);
        Assert.Contains($"'{spec}'", e.Message, StringComparison.Ordinal);
        Assert.Contains(reason, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Per_layer_sqnr_is_the_same_when_the_byte_budget_forces_one_tensor_per_pass()
    {
        var net = TestNets.ConvNet();
        var (model, calibration, validation) = Prepare(net);
        var one = Options(validation);

        var whole = new Quantizer(one).Run(model, calibration, _folder.File("a.onnx")).Validation!.WorstLayers;
        var split = new Quantizer(one with { Validation = one.Validation! with { LayerBudgetBytes = 1 } }).Run(model, calibration, _folder.File("b.onnx")).Validation!.WorstLayers;

        output.WriteLine(string.Join(", ", whole.Select(l => $"{l.Node} {l.SqnrDb:F1}/{l.LossDb:F1}")));
        Assert.True(whole.Count >= 5, $"only {whole.Count} layers");
        Assert.Equal(whole.Select(l => (l.Node, Math.Round(l.SqnrDb, 6))), split.Select(l => (l.Node, Math.Round(l.SqnrDb, 6))));
        Assert.All(whole, l => Assert.True(l.SqnrDb is > 0 and <= 100 && l.LossDb >= 0, l.ToString()));
    }
}
