using Quantize.Onnx.Calibration;
using Quantize.Onnx.Model;
using Quantize.Onnx.Model.Proto;
using Quantize.Onnx.Samples;
using Quantize.Onnx.Tests.TestModels;
using Xunit.Abstractions;

namespace Quantize.Onnx.Tests.Quantization;

/// <summary>Calibration methods, symmetric activations, saturation-aware ranges and reduce-range through <see cref="Quantizer.Run"/>, judged by ONNX Runtime.</summary>
public sealed class CalibrationMethodTests(ITestOutputHelper output) : IDisposable
{
    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    [Theory]
    [InlineData(CalibrationMethod.Percentile)]
    [InlineData(CalibrationMethod.Entropy)]
    [InlineData(CalibrationMethod.Mse)]
    public void Every_histogram_method_gives_a_fused_model_close_to_fp32(CalibrationMethod method)
    {
        var net = TestNets.ConvNet();
        var (model, calibration) = QuantizeTestKit.Prepare(net, _folder.Path);
        var path = Path.Combine(_folder.Path, $"{method}.onnx");

        var result = new Quantizer(QuantizeTestKit.Options() with { CalibrationMethod = method }).Run(model, calibration, path);

        var sqnr = QuantizeTestKit.Sqnr(model, path, net);
        output.WriteLine($"{method}: {string.Join(", ", sqnr.Select(kv => $"{kv.Key} {kv.Value:F1} dB"))}");
        Assert.All(sqnr.Values, db => Assert.True(db > 12, $"SQNR {db:F1} dB")); // entropy clips hardest (13.9 dB on conv4)
        Assert.Equal(6, result.Fusion.IntegerKernels.GetValueOrDefault("QLinearConv"));
        Assert.Empty(result.Fusion.UnfusedNodes);
        Assert.Equal(method.ToString().ToLowerInvariant(), result.Settings["calibration-method"]);
    }

    [Fact]
    public void Reduce_range_keeps_every_weight_in_seven_bits_and_the_model_still_validates()
    {
        var net = TestNets.ConvNet();
        var (model, calibration) = QuantizeTestKit.Prepare(net, _folder.Path);
        var path = Path.Combine(_folder.Path, "reduced.onnx");

        var result = new Quantizer(QuantizeTestKit.Options() with { ReduceRange = true }).Run(model, calibration, path);

        var graph = ModelLoader.Load(path).Graph;
        var producers = graph.Producers();
        var weights = graph.Node.Where(n => n.OpType == "Conv").Select(n => graph.Initializer(producers[n.Input[1]].Input[0])).ToList();
        Assert.Equal(6, weights.Count);
        foreach (var w in weights)
        {
            Assert.Equal((int)TensorProto.Types.DataType.Int8, w.DataType);
            var values = w.RawData.ToByteArray().Select(v => (sbyte)v).ToArray();
            Assert.All(values, v => Assert.InRange(v, -64, 63));
            Assert.Equal(63, values.Max(v => Math.Abs((int)v))); // the grid is used to its (7-bit) end
        }

        Assert.All(QuantizeTestKit.Sqnr(model, path, net).Values, db => Assert.True(db > 15, $"SQNR {db:F1} dB"));
        Assert.Equal(6, result.Fusion.IntegerKernels.GetValueOrDefault("QLinearConv"));
        Assert.Equal("true", result.Settings["reduce-range"]);
    }

    [Fact]
    public void Symmetric_activations_put_every_activation_zero_point_at_128()
    {
        var net = TestNets.ConvNet();
        var (model, calibration) = QuantizeTestKit.Prepare(net, _folder.Path);
        var path = Path.Combine(_folder.Path, "symmetric.onnx");

        new Quantizer(QuantizeTestKit.Options() with { SymmetricActivations = true }).Run(model, calibration, path);

        var graph = ModelLoader.Load(path).Graph;
        var zeroPoints = graph.Node.Where(n => n.OpType == "QuantizeLinear").Select(n => graph.Initializer(n.Input[2]).RawData[0]).ToList();
        Assert.NotEmpty(zeroPoints);
        Assert.All(zeroPoints, zp => Assert.Equal(128, zp));
        Assert.All(QuantizeTestKit.Sqnr(model, path, net).Values, db => Assert.True(db > 10, $"SQNR {db:F1} dB"));
    }

    [Fact]
    public void A_range_is_cut_where_the_hard_swish_reading_it_saturates()
    {
        // conv1 → Mul(4) → hard-swish (Add 3, Clip 0..6, Mul, Div 6) → conv2: conv1's output only matters above
        // −3/4. (A [1,1,1] scale, not a scalar: ORT's preparation would fold a scalar Mul into conv1.)
        var b = new TestModelBuilder(seed: 3);
        var x = b.Input(TestNets.ImageInput, TestNets.ImageShape);
        var c1 = b.Conv("conv1", x, 3, 8);
        var t = b.Node("Mul", "scale", [c1, b.Constant("four", [1, 1, 1], [4f])]);
        var gate = b.Node("Clip", "gate", [b.Node("Add", "plus3", [t, b.Constant("three", [], [3f])]), b.Constant("zero", [], [0f]), b.Constant("six", [], [6f])]);
        var hs = b.Node("Div", "hswish", [b.Node("Mul", "swish", [t, gate]), b.Constant("six_div", [], [6f])]);
        b.Conv("conv2", hs, 8, 4);
        b.Output("conv2", 1, 4, 16, 16);
        var net = new TestNet(b.Build(), TestNets.ImageInput, TestNets.ImageShape, b.ConvNodes);
        var (model, cut, plain) = QuantizeWithAndWithoutCut(net);

        var (cutLow, cutScale) = OutputGrid(cut, "conv1");
        var (plainLow, plainScale) = OutputGrid(plain, "conv1");
        output.WriteLine($"conv1 grid low {cutLow} (scale {cutScale}) vs {plainLow} (scale {plainScale})");
        Assert.True(plainLow < -1.5, $"the test needs conv1 outputs well below −3/4, got {plainLow}");
        Assert.InRange(cutLow, -0.75 - cutScale, -0.75 + cutScale);
        Assert.True(cutScale < plainScale);
        var cutSqnr = QuantizeTestKit.Sqnr(model, cut, net)["conv2"];
        var plainSqnr = QuantizeTestKit.Sqnr(model, plain, net)["conv2"];
        output.WriteLine($"SQNR {cutSqnr:F2} dB cut vs {plainSqnr:F2} dB plain");
        Assert.True(cutSqnr > plainSqnr, $"{cutSqnr:F2} vs {plainSqnr:F2} dB");
    }

    [Fact]
    public void A_sigmoid_heads_logits_are_cut_through_a_linear_resize_and_the_mask_gets_finer()
    {
        // conv1 → Relu → side (1×1, 2 → 1: 2·a − 40·b − 1, a long negative tail where b > 0) → Resize(linear ×2) →
        // Sigmoid → output, the shape of a segmentation side head. The Resize shares side's grid, so side's range decides.
        var b = new TestModelBuilder(seed: 5);
        var x = b.Input(TestNets.ImageInput, TestNets.ImageShape);
        var features = b.Relu("relu1", b.Conv("conv1", x, 3, 2));
        var w = b.Constant("side.weight", [1, 2, 1, 1], [2f, -40f]);
        var side = b.Node("Conv", "side", [features, w, b.Constant("side.bias", [1], [-1f])], TestModelBuilder.Ints("kernel_shape", 1, 1));
        var up = b.Node("Resize", "up", [side, "", b.Constant("scales", [4], [1f, 1f, 2f, 2f])], TestModelBuilder.String("mode", "linear"));
        b.Node("Sigmoid", "mask", [up]);
        b.Output("mask", 1, 1, 32, 32);
        var net = new TestNet(b.Build(), TestNets.ImageInput, TestNets.ImageShape, b.ConvNodes);
        var (model, cut, plain) = QuantizeWithAndWithoutCut(net);

        var (cutLow, cutScale) = OutputGrid(cut, "side");
        var (plainLow, plainScale) = OutputGrid(plain, "side");
        output.WriteLine($"side grid low {cutLow:F2} (scale {cutScale:F4}) vs {plainLow:F2} (scale {plainScale:F4})");
        Assert.True(plainLow < -34, $"the test needs logits well below −17, got {plainLow}");
        Assert.InRange(cutLow, -17 - cutScale, -17 + cutScale);
        Assert.True(cutScale < plainScale / 3);

        // A steeper tail widens the plain grid further, but the side conv then also amplifies relu1's rounding where b is
        // just above 0, for both models alike: the gap is +4.0 dB here (28.2 vs 24.2), +1.5 dB at −80.
        var cutSqnr = QuantizeTestKit.Sqnr(model, cut, net)["mask"];
        var plainSqnr = QuantizeTestKit.Sqnr(model, plain, net)["mask"];
        output.WriteLine($"mask SQNR {cutSqnr:F2} dB cut vs {plainSqnr:F2} dB plain");
        Assert.True(cutSqnr > plainSqnr + 3, $"{cutSqnr:F2} vs {plainSqnr:F2} dB");
    }

    [Theory]
    [InlineData(0L, 96L << 20)] // unknown or tiny: the floor
    [InlineData(2L << 30, 256L << 20)] // an eighth
    [InlineData(24L << 30, 1L << 30)] // the 24 GB CI machine: the cap
    public void Histogram_runs_fetch_an_eighth_of_the_available_memory_within_bounds(long available, long expected) =>
        Assert.Equal(expected, HistogramCalibrator.BudgetBytes(available));

    [Fact]
    public void Histograms_collected_in_several_groups_equal_those_of_one_pass()
    {
        var net = TestNets.ConvNet();
        var (_, calibration) = QuantizeTestKit.Prepare(net, _folder.Path);
        var inputs = net.Model.Graph.Input.Select(InputSpec.FromValueInfo).ToList();
        var data = SampleSet.Open(calibration, inputs, new SampleSetOptions { MaxSamples = 4 });
        var tensors = net.Model.Graph.Node.SelectMany(n => n.Output).Prepend(net.InputName).ToList();

        var one = HistogramCalibrator.Collect(net.Model, [net.InputName], tensors, data, long.MaxValue, null, default);
        var passes = 0;
        var grouped = HistogramCalibrator.Collect(net.Model, [net.InputName], tensors, data, budgetBytes: 1, (done, total) => passes = total / data.Count, default);

        Assert.True(passes >= tensors.Count - 1, $"{passes} passes"); // one tensor per run with a 1-byte budget
        foreach (var tensor in tensors)
        {
            // Sessions with other outputs fuse differently (Conv+Relu), so a value may differ in its last bit
            // and land in the neighbouring bin; everything else is identical.
            var (a, g) = (one[tensor], grouped[tensor]);
            Assert.Equal(a.Count, g.Count);
            Assert.Equal(a.Width, g.Width);
            Assert.Equal(a.Min, g.Min, 1e-4f);
            Assert.Equal(a.Max, g.Max, 1e-4f);
            var moved = Enumerable.Range(0, a.Bins).Sum(i => Math.Abs(a[i] - g[i]));
            Assert.True(moved <= a.Count / 1000, $"{tensor}: {moved} of {a.Count} values in other bins");
        }
    }

    [Fact]
    public void A_percentile_outside_50_to_100_is_QNT1205()
    {
        var (model, calibration) = QuantizeTestKit.Prepare(TestNets.ConvNet(), _folder.Path);

        var e = Assert.Throws<QuantizeException>(() => new Quantizer(QuantizeTestKit.Options() with { CalibrationMethod = CalibrationMethod.Percentile, CalibrationPercentile = 101 })
            .Run(model, calibration, Path.Combine(_folder.Path, "x.onnx")));

        Assert.Equal(ErrorCodes.InvalidCalibrationPercentile, e.Code);
        Assert.Contains("101", e.Message);
    }

    /// <summary>The prepared source model, and it quantized with saturation-aware ranges (cut) and without (plain).</summary>
    private (string Model, string Cut, string Plain) QuantizeWithAndWithoutCut(TestNet net)
    {
        var (model, calibration) = QuantizeTestKit.Prepare(net, _folder.Path);
        var cut = Path.Combine(_folder.Path, "cut.onnx");
        var plain = Path.Combine(_folder.Path, "plain.onnx");
        new Quantizer(QuantizeTestKit.Options()).Run(model, calibration, cut);
        new Quantizer(QuantizeTestKit.Options() with { SaturationAwareRanges = false }).Run(model, calibration, plain);
        return (model, cut, plain);
    }

    /// <summary>Lowest representable value and scale of the QuantizeLinear after <paramref name="node"/>'s output.</summary>
    private static (double Low, double Scale) OutputGrid(string path, string node)
    {
        var graph = ModelLoader.Load(path).Graph;
        var output = graph.Node.Single(n => n.Name == node).Output[0];
        var q = graph.Node.Single(n => n.OpType == "QuantizeLinear" && n.Input[0] == output);
        var scale = TensorValues.ReadFloats(graph.Initializer(q.Input[1]))[0];
        var zeroPoint = graph.Initializer(q.Input[2]).RawData[0];
        return (-zeroPoint * (double)scale, scale);
    }
}
