using Quantize.Onnx.Model;
using Quantize.Onnx.Tests.TestModels;
using Quantize.Onnx.Validation;
using Xunit.Abstractions;

namespace Quantize.Onnx.Tests.Quantization;

/// <summary>Convs inside If branches are calibrated from the samples that take each branch and run on integer kernels.</summary>
public sealed class IfBranchQuantizationTests(ITestOutputHelper output) : IDisposable
{
    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    /// <summary>Structured inputs that take the then (or else) branch, from a seed range disjoint from calibration.</summary>
    private static int[] Seeds(bool then, int count, long[]? shape = null) =>
        [.. Enumerable.Range(2000, 400).Where(s => ControlFlowNets.TakesThen(QuantizeTestKit.Structured(s, shape ?? ControlFlowNets.VoiceShape)) == then).Take(count)];

    [Fact]
    public void Convs_in_both_branches_run_on_integer_kernels_smaller_and_close_to_fp32()
    {
        var net = ControlFlowNets.ConvsInIf();
        var (model, calibration) = QuantizeTestKit.Prepare(net, _folder.Path);
        var taken = QuantizeTestKit.CalibrationSeeds.Select(s => ControlFlowNets.TakesThen(QuantizeTestKit.Structured(s, net.InputShape))).ToList();
        Assert.Contains(true, taken);
        Assert.Contains(false, taken);
        var path = _folder.File("convs_in_if.int8.onnx");

        var options = QuantizeTestKit.Options() with { LatencyRuns = 20 };
        var result = new Quantizer(options).Run(model, calibration, path);

        foreach (var w in result.Warnings)
        {
            output.WriteLine($"{w.Code}: {w.Message}");
        }

        var kernels = result.Fusion.IntegerKernels.GetValueOrDefault("QLinearConv");
        output.WriteLine($"{result.Fp32Bytes} → {result.Int8Bytes} bytes, {kernels} QLinearConv, speed-up {result.Latency.Speedup:F2} " +
            $"(1 thread {result.Latency.SingleThread?.Speedup:F2}), {result.QuantizedNodes} quantized nodes, verdict {result.Latency.Verdict}");
        Assert.DoesNotContain(result.Warnings, w => w.Code is ErrorCodes.StaysFloat or ErrorCodes.BranchNotCalibrated or ErrorCodes.UnfusedGroups);
        Assert.Equal(7, kernels); // stem and head, 3 in then, 2 in else
        Assert.True(result.Int8Bytes < result.Fp32Bytes / 3, $"{result.Int8Bytes} vs {result.Fp32Bytes}");

        // ORT fuses inside both branches: its optimised graph holds the QLinearConvs in the If's subgraphs.
        var ifNode = Assert.Single(QuantizeTestKit.OptimizedGraph(path).Node, n => n.OpType == "If");
        foreach (var (branch, count) in new[] { ("then_branch", 3), ("else_branch", 2) })
        {
            var graph = ifNode.Attribute.Single(a => a.Name == branch).G;
            Assert.Equal(count, graph.Count("QLinearConv"));
            Assert.Equal(0, graph.Count("Conv"));
        }

        // The weights live once, quantized, in the main graph; no float weight is left.
        var written = ModelLoader.Load(path);
        Assert.DoesNotContain(written.Graph.Initializer, t => t.Name == "then_conv1.weight");
        Assert.Contains(written.Graph.Initializer, t => t.Name.StartsWith("then_conv1.weight_quantized", StringComparison.Ordinal));

        // Both branches run and stay close to FP32.
        foreach (var then in new[] { true, false })
        {
            var sqnr = QuantizeTestKit.Sqnr(model, path, net, Seeds(then, 3)).Values.Single();
            output.WriteLine($"{(then ? "then" : "else")} branch: SQNR {sqnr:F1} dB");
            Assert.True(sqnr > 25, $"SQNR {sqnr:F1} dB");
        }
    }

    [Fact]
    public void A_branch_no_calibration_sample_takes_stays_float_and_is_named()
    {
        var net = ControlFlowNets.ConvsInIf();
        var (model, _) = QuantizeTestKit.Prepare(net, _folder.Path);
        var calibration = QuantizeTestKit.WriteCalibration(_folder.File("then-only"), net.InputName, net.InputShape, Seeds(then: true, 8));
        var path = _folder.File("then_only.int8.onnx");

        var result = new Quantizer(QuantizeTestKit.Options()).Run(model, calibration, path);

        var warning = Assert.Single(result.Warnings, w => w.Code == ErrorCodes.BranchNotCalibrated);
        output.WriteLine(warning.Message);
        Assert.Contains("else_branch of If 'if1'", warning.Message, StringComparison.Ordinal);
        Assert.Equal(5, result.Fusion.IntegerKernels.GetValueOrDefault("QLinearConv")); // stem, head, 3 in then
        var ifNode = Assert.Single(QuantizeTestKit.OptimizedGraph(path).Node, n => n.OpType == "If");
        var floatBranch = ifNode.Attribute.Single(a => a.Name == "else_branch").G;
        Assert.Equal(0, floatBranch.Count("QLinearConv"));
        Assert.Equal(2, floatBranch.Count("Conv") + floatBranch.Count("FusedConv")); // ORT fuses float Conv+Relu

        // The float branch still runs, and right.
        var sqnr = QuantizeTestKit.Sqnr(model, path, net, Seeds(then: false, 2)).Values.Single();
        Assert.True(sqnr > 25, $"SQNR {sqnr:F1} dB");
    }

    [Fact]
    public void The_per_layer_analysis_reads_samples_spread_over_the_validation_folder_and_sees_both_branches()
    {
        // A folder sorted by condition, as a speech model's 16 kHz frames before its 8 kHz ones: the first samples all
        // take the then branch. Read from the start, the analysis would see only that branch's layers.
        var net = ControlFlowNets.ConvsInIf();
        var (model, calibration) = QuantizeTestKit.Prepare(net, _folder.Path);
        var validation = QuantizeTestKit.WriteCalibration(_folder.File("sorted"), net.InputName, net.InputShape, [.. Seeds(then: true, 4), .. Seeds(then: false, 4)]);
        var gate = new ValidationOptions { Folder = validation, Checks = [AccuracyCheck.Parse("sqnr>=5")], LayerSamples = 2 };

        var result = new Quantizer(QuantizeTestKit.Options() with { Validation = gate }).Run(model, calibration, _folder.File("sorted.int8.onnx"));

        var layers = result.Validation!.WorstLayers.Select(l => l.Node).ToList();
        output.WriteLine(string.Join(", ", layers));
        Assert.Contains(layers, n => n.StartsWith("then_", StringComparison.Ordinal));
        Assert.Contains(layers, n => n.StartsWith("else_", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData(QuantizationMode.Dynamic)]
    [InlineData(QuantizationMode.Static)]
    public void Lstms_in_both_branches_become_DynamicQuantizeLSTM_with_outer_scope_weights(QuantizationMode mode)
    {
        var net = ControlFlowNets.LstmInIf();
        var (model, calibration) = QuantizeTestKit.Prepare(net, _folder.Path);
        var path = _folder.File("lstm_in_if.int8.onnx");

        var result = new Quantizer(QuantizeTestKit.Options() with { Mode = mode }).Run(model, mode == QuantizationMode.Static ? calibration : null, path);

        Assert.Equal(2, result.Fusion.IntegerKernels.GetValueOrDefault("DynamicQuantizeLSTM"));
        var written = ModelLoader.Load(path).Graph;
        Assert.DoesNotContain(written.Initializer, t => t.Name is "then_lstm.W" or "else_lstm.R");
        var ifNode = Assert.Single(written.Node, n => n.OpType == "If");
        Assert.All(ifNode.Attribute, a => Assert.Single(a.G.Node, n => n.OpType == "DynamicQuantizeLSTM"));
        foreach (var then in new[] { true, false })
        {
            var sqnr = QuantizeTestKit.Sqnr(model, path, net, Seeds(then, 3, net.InputShape)).Values.Single();
            output.WriteLine($"{mode}, {(then ? "then" : "else")} branch: SQNR {sqnr:F1} dB");
            Assert.True(sqnr > 20, $"SQNR {sqnr:F1} dB");
        }
    }

    [Fact]
    public void Convs_in_an_if_nested_in_a_branch_run_on_integer_kernels_on_every_path()
    {
        var net = IfNets.Build();
        var (model, calibration) = QuantizeTestKit.Prepare(net, _folder.Path);
        var paths = QuantizeTestKit.CalibrationSeeds.Select(s => IfNets.Takes(QuantizeTestKit.Structured(s, net.InputShape))).ToList();
        Assert.Contains((true, true), paths);
        Assert.Contains((true, false), paths);
        Assert.Contains(paths, p => !p.Outer);
        var path = _folder.File("nested_if.int8.onnx");

        var result = new Quantizer(QuantizeTestKit.Options()).Run(model, calibration, path);

        Assert.DoesNotContain(result.Warnings, w => w.Code is ErrorCodes.StaysFloat or ErrorCodes.BranchNotCalibrated or ErrorCodes.UnfusedGroups);
        Assert.Equal(6, result.Fusion.IntegerKernels.GetValueOrDefault("QLinearConv")); // stem, head, t1, e1, one in each inner branch
        var outer = Assert.Single(QuantizeTestKit.OptimizedGraph(path).Node, n => n.OpType == "If");
        var inner = Assert.Single(outer.Attribute.Single(a => a.Name == "then_branch").G.Node, n => n.OpType == "If");
        Assert.All(inner.Attribute, a => Assert.Equal(1, a.G.Count("QLinearConv")));

        var heldOut = Enumerable.Range(3000, 200).GroupBy(s => IfNets.Takes(QuantizeTestKit.Structured(s, net.InputShape)));
        foreach (var group in heldOut)
        {
            var sqnr = QuantizeTestKit.Sqnr(model, path, net, group.Take(2)).Values.Single();
            output.WriteLine($"outer {(group.Key.Outer ? "then" : "else")}, inner {(group.Key.Inner ? "then" : "else")}: SQNR {sqnr:F1} dB");
            Assert.True(sqnr > 25, $"SQNR {sqnr:F1} dB");
        }
    }

    [Fact]
    public void A_transpose_whose_output_the_branches_read_runs_on_uint8_so_onnx_runtime_loads_the_model()
    {
        // Left float, the Transpose would read a DequantizeLinear and ORT 1.31's QDQ propagation would abort the process.
        var net = IfNets.TransposeBeforeIf();
        var (model, calibration) = QuantizeTestKit.Prepare(net, _folder.Path);
        var path = _folder.File("transpose_before_if.int8.onnx");

        var result = new Quantizer(QuantizeTestKit.Options()).Run(model, calibration, path);

        Assert.Equal(4, result.Fusion.IntegerKernels.GetValueOrDefault("QLinearConv"));
        var graph = ModelLoader.Load(path).Graph;
        var producers = graph.Producers();
        var transpose = Assert.Single(graph.Node, n => n.OpType == "Transpose");
        Assert.Equal("DequantizeLinear", producers[transpose.Input[0]].OpType);
        Assert.All(graph.Node.Where(n => n.Input.Contains(transpose.Output[0])), n => Assert.Equal("QuantizeLinear", n.OpType));
        Assert.True(QuantizeTestKit.Sqnr(model, path, net).Values.Single() > 25);
    }
}
