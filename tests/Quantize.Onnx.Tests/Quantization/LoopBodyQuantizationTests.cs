using Quantize.Onnx.Model;
using Quantize.Onnx.Model.Proto;
using Quantize.Onnx.Tests.TestModels;
using Quantize.Onnx.Validation;
using Xunit.Abstractions;

namespace Quantize.Onnx.Tests.Quantization;

/// <summary>Convs and MatMuls inside Loop and Scan bodies are calibrated over the iterations that run and run on integer kernels.</summary>
public sealed class LoopBodyQuantizationTests(ITestOutputHelper output) : IDisposable
{
    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    [Fact]
    public void Convs_in_a_loop_body_run_on_integer_kernels_with_ranges_from_every_iteration()
    {
        var net = LoopNets.ConvsInLoop();
        var (model, calibration) = QuantizeTestKit.Prepare(net, _folder.Path);
        var path = _folder.File("convs_in_loop.int8.onnx");

        var result = Quantize(net, model, calibration, path);

        Assert.DoesNotContain(result.Warnings, w => w.Code is ErrorCodes.StaysFloat or ErrorCodes.LoopBodyNotCalibrated or ErrorCodes.UnfusedGroups);
        Assert.Equal(4, result.Fusion.IntegerKernels.GetValueOrDefault("QLinearConv")); // stem and head, 2 in the body
        Assert.True(result.Int8Bytes < result.Fp32Bytes / 2.5, $"{result.Int8Bytes} vs {result.Fp32Bytes}"); // int32 biases, scales
        var body = Body(QuantizeTestKit.OptimizedGraph(path), "Loop");
        Assert.Equal(2, body.Count("QLinearConv"));
        Assert.Equal(0, body.Count("Conv") + body.Count("FusedConv"));

        // The carried value grows with each iteration: the grid of the body's input v covers the values it has at the
        // start of every iteration (the stem's, then those after iterations 1 and 2), not only the first iteration's.
        var calibrationInputs = QuantizeTestKit.CalibrationSeeds.Select(s => QuantizeTestKit.Structured(s, net.InputShape)).ToList();
        var runs = QuantizeTestKit.Run(model, net.InputName, net.InputShape, calibrationInputs);
        var first = runs.SelectMany(o => o["stem_relu"]).ToList();
        var step = first.Count / runs.Count;
        var every = first.Concat(runs.SelectMany(o => o["loop1_all"].Take(2 * step))).ToList();
        static float Width(List<float> values) => Math.Max(0, values.Max()) - Math.Min(0, values.Min());
        var scale = TensorValues.ReadFloats(ModelLoader.Load(path).Graph.Initializer.Single(t => t.Name == "v_in_scale"))[0];
        output.WriteLine($"v_in grid width {scale * 255:F3}; values: first iteration {Width(first):F3}, every iteration {Width(every):F3}");
        Assert.True(Width(first) < 0.8 * Width(every), "the test needs iterations of different ranges");
        Assert.InRange(scale * 255, 0.99 * Width(every), 1.01 * Width(every));

        foreach (var (name, sqnr) in QuantizeTestKit.Sqnr(model, path, net))
        {
            output.WriteLine($"{name}: SQNR {sqnr:F1} dB");
            Assert.True(sqnr > 25, $"{name}: SQNR {sqnr:F1} dB");
        }
    }

    [Fact]
    public void MatMuls_in_a_scan_body_run_on_integer_kernels_with_outer_scope_weights()
    {
        var net = LoopNets.ScanRnn();
        var (model, calibration) = QuantizeTestKit.Prepare(net, _folder.Path);
        var path = _folder.File("scan_rnn.int8.onnx");

        var result = Quantize(net, model, calibration, path);

        Assert.DoesNotContain(result.Warnings, w => w.Code is ErrorCodes.StaysFloat or ErrorCodes.LoopBodyNotCalibrated or ErrorCodes.UnfusedGroups);
        Assert.True(result.Int8Bytes < result.Fp32Bytes / 3, $"{result.Int8Bytes} vs {result.Fp32Bytes}");
        // Both products run on integer kernels, not re-fused by ORT into a float Gemm of dequantized weights.
        var body = Body(QuantizeTestKit.OptimizedGraph(path), "Scan");
        Assert.Equal(2, body.Node.Count(n => n.OpType is "MatMulIntegerToFloat" or "QLinearMatMul"));
        Assert.Equal(0, body.Count("MatMul") + body.Count("Gemm"));

        // The weights live once, int8, in the main graph, and the model's Scan signature is as it was.
        var written = ModelLoader.Load(path).Graph;
        Assert.DoesNotContain(written.Initializer, t => t.Name is "body_input.weight" or "body_recurrent.weight");
        var scan = Assert.Single(written.Node, n => n.OpType == "Scan");
        Assert.Equal(["h_last", "states"], scan.Output);
        Assert.Equal(2, scan.Attribute.Single(a => a.Name == "body").G.Output.Count);

        var sqnr = QuantizeTestKit.Sqnr(model, path, net).Values.Single();
        output.WriteLine($"SQNR {sqnr:F1} dB");
        Assert.True(sqnr > 25, $"SQNR {sqnr:F1} dB");
    }

    [Fact]
    public void MatMuls_in_a_scan_body_are_quantized_in_dynamic_mode_too()
    {
        var net = LoopNets.ScanRnn();
        var (model, _) = QuantizeTestKit.Prepare(net, _folder.Path);
        var path = _folder.File("scan_rnn.dynamic.onnx");

        var result = new Quantizer(QuantizeTestKit.Options() with { Mode = QuantizationMode.Dynamic }).Run(model, null, path);

        var body = Body(QuantizeTestKit.OptimizedGraph(path), "Scan");
        output.WriteLine($"{result.Fp32Bytes} → {result.Int8Bytes} bytes, body: {string.Join(", ", body.Node.Select(n => n.OpType))}; speed-up {result.Latency.Speedup:F2}");
        Assert.Equal(2, body.Node.Count(n => n.OpType is "DynamicQuantizeMatMul" or "MatMulIntegerToFloat"));
        Assert.Equal(0, body.Count("MatMul") + body.Count("Gemm"));
        Assert.True(result.Int8Bytes < result.Fp32Bytes / 3, $"{result.Int8Bytes} vs {result.Fp32Bytes}");
        var sqnr = QuantizeTestKit.Sqnr(model, path, net).Values.Single();
        output.WriteLine($"SQNR {sqnr:F1} dB");
        Assert.True(sqnr > 25, $"SQNR {sqnr:F1} dB");
    }

    [Fact]
    public void Convs_in_the_branches_of_an_if_inside_a_loop_body_are_calibrated_and_run_on_integer_kernels()
    {
        var net = LoopNets.IfInLoop();
        var (model, calibration) = QuantizeTestKit.Prepare(net, _folder.Path);
        var path = _folder.File("if_in_loop.int8.onnx");

        var result = Quantize(net, model, calibration, path);

        Assert.DoesNotContain(result.Warnings, w => w.Code is ErrorCodes.StaysFloat or ErrorCodes.BranchNotCalibrated or ErrorCodes.LoopBodyNotCalibrated);
        Assert.Equal(4, result.Fusion.IntegerKernels.GetValueOrDefault("QLinearConv")); // stem, head, one per branch
        var branches = Assert.Single(Body(QuantizeTestKit.OptimizedGraph(path), "Loop").Node, n => n.OpType == "If").Attribute;
        Assert.All(branches, a => Assert.Equal(1, a.G.Count("QLinearConv")));
        var sqnr = QuantizeTestKit.Sqnr(model, path, net).Values.Single();
        output.WriteLine($"SQNR {sqnr:F1} dB");
        Assert.True(sqnr > 25, $"SQNR {sqnr:F1} dB");
    }

    [Fact]
    public void A_loop_body_no_calibration_sample_iterates_stays_float_and_is_named()
    {
        var net = LoopNets.RareLoop();
        var (model, calibration) = QuantizeTestKit.Prepare(net, _folder.Path);
        var path = _folder.File("rare_loop.int8.onnx");

        var result = new Quantizer(QuantizeTestKit.Options()).Run(model, calibration, path);

        var warning = Assert.Single(result.Warnings, w => w.Code == ErrorCodes.LoopBodyNotCalibrated);
        output.WriteLine(warning.Message);
        Assert.Contains("body of Loop 'loop_rare'", warning.Message, StringComparison.Ordinal);
        Assert.Equal(2, result.Fusion.IntegerKernels.GetValueOrDefault("QLinearConv")); // stem and head
        var body = Body(QuantizeTestKit.OptimizedGraph(path), "Loop");
        Assert.Equal(0, body.Count("QLinearConv"));
        Assert.Equal(1, body.Count("Conv"));

        // The model stays valid: an input above 10 makes the loop iterate once (in float), and it runs.
        var large = QuantizeTestKit.Structured(901, net.InputShape).Select(v => v * 20).ToArray();
        var head = QuantizeTestKit.Run(path, net.InputName, net.InputShape, [large])[0]["head"];
        Assert.Equal(4 * 32 * 32, head.Length);
        Assert.All(head, v => Assert.True(float.IsFinite(v)));
        Assert.True(QuantizeTestKit.Sqnr(model, path, net).Values.Single() > 25);
    }

    [Fact]
    public void Histogram_calibration_and_the_per_layer_analysis_reach_into_a_loop_body()
    {
        var net = LoopNets.ConvsInLoop();
        var (model, calibration) = QuantizeTestKit.Prepare(net, _folder.Path);
        var validation = QuantizeTestKit.WriteCalibration(_folder.File("validation"), net.InputName, net.InputShape, QuantizeTestKit.HeldOutSeeds);
        var gate = new ValidationOptions { Folder = validation, Checks = [AccuracyCheck.Parse("sqnr>=5")], LayerSamples = 2 };
        Dictionary<string, float> Scales(CalibrationMethod method)
        {
            var path = _folder.File($"{method}.onnx");
            var result = new Quantizer(QuantizeTestKit.Options() with { CalibrationMethod = method, CalibrationPercentile = 99.9, Validation = gate }).Run(model, calibration, path);
            output.WriteLine($"{method}: worst layers {string.Join(", ", result.Validation!.WorstLayers.Select(l => $"{l.Node} {l.SqnrDb:F1} dB"))}");
            Assert.Contains(result.Validation.WorstLayers, l => l.Node is "body_conv1" or "body_conv2");
            var body = Body(ModelLoader.Load(path).Graph, "Loop");
            var initializers = ModelLoader.Load(path).Graph.Initializer.ToDictionary(t => t.Name);
            return body.Node.Where(n => n.OpType == "QuantizeLinear" && initializers.ContainsKey(n.Input[1]))
                .ToDictionary(n => n.Input[0], n => TensorValues.ReadFloats(initializers[n.Input[1]])[0]);
        }

        // The body's tensors have static shapes, so they leave the loop as scan outputs and get histograms: percentile 99.9
        // narrows their grids (before, every body grid stayed MinMax's whatever the method).
        var (minMax, percentile) = (Scales(CalibrationMethod.MinMax), Scales(CalibrationMethod.Percentile));
        foreach (var (tensor, scale) in minMax)
        {
            output.WriteLine($"{tensor}: grid width minmax {scale * 255:F4}, percentile {percentile.GetValueOrDefault(tensor) * 255:F4}");
        }

        Assert.All(new[] { "body_relu", "body_conv2" }, t => Assert.True(percentile[t] < 0.9 * minMax[t], $"{t}: {percentile[t]} vs {minMax[t]}"));
    }

    [Fact]
    public void A_loop_without_a_trip_count_whose_condition_never_changes_is_QNT1005_not_a_hang()
    {
        // Fuzz (models, seed 8, case 18459): the trip count input emptied, the condition a constant true that the body
        // passes through: ORT ran the first sample forever.
        var net = ControlFlowNets.ConvLoop();
        Assert.Single(net.Model.Graph.Node, n => n.OpType == "Loop").Input[0] = "";
        var (model, calibration) = QuantizeTestKit.Prepare(net, _folder.Path);

        var e = Assert.Throws<QuantizeException>(() => new Quantizer(QuantizeTestKit.Options()).Run(model, calibration, _folder.File("out.onnx")));

        Assert.Equal(ErrorCodes.ModelUnsupported, e.Code);
        Assert.Contains("Loop 'loop1'", e.Message, StringComparison.Ordinal);
        Assert.Contains("never ends", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_loop_without_a_trip_count_whose_body_computes_its_condition_is_quantized()
    {
        // The same loop as a while loop (i < 3, computed in the body) ends, and is not refused.
        var net = ControlFlowNets.ConvLoop();
        var loop = Assert.Single(net.Model.Graph.Node, n => n.OpType == "Loop");
        var trips = loop.Input[0];
        loop.Input[0] = "";
        var condition = loop.Attribute.Single(a => a.Name == "body").G.Node.Single(n => n.Name == "body_cond");
        (condition.OpType, condition.Input[0]) = ("Less", "i");
        condition.Input.Add(trips);
        var (model, calibration) = QuantizeTestKit.Prepare(net, _folder.Path);

        var result = new Quantizer(QuantizeTestKit.Options()).Run(model, calibration, _folder.File("out.onnx"));

        Assert.Equal(2, result.Fusion.IntegerKernels.GetValueOrDefault("QLinearConv"));
        Assert.True(QuantizeTestKit.Sqnr(model, _folder.File("out.onnx"), net).Values.Single() > 25);
    }

    [Fact]
    public void A_constant_node_in_an_if_inside_a_loop_body_is_kept_once_when_tensors_stay_on_disk()
    {
        // Fuzz (models, seed 14, case 3888): odd_conv's bias as a Constant node of its branch; with tensors kept on disk,
        // ORT's optimized model defined it twice (initializer and node), and ORT refused it (QNT1301).
        var net = LoopNets.IfInLoop();
        var conv = ControlFlowBodies.AllNodes(net.Model.Graph).Single(n => n.Name == "odd_conv");
        var bias = net.Model.Graph.Initializer.Single(t => t.Name == conv.Input[2]).Clone();
        bias.Name = conv.Input[2] = "odd_conv.bias_in_branch";
        var branch = ControlFlowBodies.AllNodes(net.Model.Graph).Single(n => n.Name == "body_if").Attribute.Single(a => a.Name == "else_branch").G;
        branch.Node.Insert(0, new NodeProto
        {
            OpType = "Constant",
            Name = bias.Name,
            Output = { bias.Name },
            Attribute = { new AttributeProto { Name = "value", Type = AttributeProto.Types.AttributeType.Tensor, T = bias } },
        });
        var (model, calibration) = QuantizeTestKit.Prepare(net, _folder.Path);
        var path = _folder.File("if_in_loop.int8.onnx");

        var result = new Quantizer(QuantizeTestKit.Options() with { DeferTensorMinBytes = 256 }).Run(model, calibration, path);

        Assert.Equal(4, result.Fusion.IntegerKernels.GetValueOrDefault("QLinearConv"));
        Assert.True(QuantizeTestKit.Sqnr(model, path, net).Values.Single() > 25);
    }

    private QuantizeResult Quantize(TestNet net, string model, string calibration, string path)
    {
        var result = new Quantizer(QuantizeTestKit.Options() with { LatencyRuns = 20 }).Run(model, calibration, path);
        foreach (var w in result.Warnings)
        {
            output.WriteLine($"{w.Code}: {w.Message}");
        }

        output.WriteLine($"{net.Model.Graph.Name}: {result.Fp32Bytes} → {result.Int8Bytes} bytes, " +
            $"{string.Join(", ", result.Fusion.IntegerKernels.Select(k => $"{k.Value} {k.Key}"))}, speed-up {result.Latency.Speedup:F2} " +
            $"(1 thread {result.Latency.SingleThread?.Speedup:F2}), verdict {result.Latency.Verdict}");
        return result;
    }

    private static GraphProto Body(GraphProto graph, string opType) =>
        Assert.Single(graph.Node, n => n.OpType == opType).Attribute.Single(a => a.Name == "body").G;
}
