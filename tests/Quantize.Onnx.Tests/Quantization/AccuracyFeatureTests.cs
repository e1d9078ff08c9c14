using Quantize.Onnx.Calibration;
using Quantize.Onnx.Model;
using Quantize.Onnx.Model.Proto;
using Quantize.Onnx.Quantization;
using Quantize.Onnx.Tests.TestModels;
using Xunit.Abstractions;
using static Quantize.Onnx.Tests.TestModels.TestModelBuilder;

namespace Quantize.Onnx.Tests.Quantization;

/// <summary>Cross-layer equalization and output bias correction: exact in float, better in INT8.</summary>
public sealed class AccuracyFeatureTests(ITestOutputHelper output) : IDisposable
{
    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    /// <summary>
    /// conv1 3→8 → LeakyRelu(0.1) → conv2 8→8 → LeakyRelu(0.1) → conv3 8→3 (output), like a
    /// super-resolution stack; channels 0 and 1 of conv1 are 8× larger than the rest (and conv2 reads
    /// them 8× weaker), so the activation between has a few dominant channels.
    /// </summary>
    private static TestNet UnevenLeakyStack()
    {
        var b = new TestModelBuilder(13, 23, false, "leaky");
        var x = b.Input(TestNets.ImageInput, TestNets.ImageShape);
        var a = b.Node("LeakyRelu", "lrelu1", [b.Conv("conv1", x, 3, 8)], Float("alpha", 0.1f));
        var c = b.Node("LeakyRelu", "lrelu2", [b.Conv("conv2", a, 8, 8)], Float("alpha", 0.1f));
        b.Conv("conv3", c, 8, 3);
        b.Output("conv3", 1, 3, 16, 16);
        var model = b.Build();
        Rescale(model.Graph, "conv1.weight", 8f, axis: 0);
        Rescale(model.Graph, "conv1.bias", 8f, axis: 0);
        Rescale(model.Graph, "conv2.weight", 1 / 8f, axis: 1);
        return new TestNet(model, TestNets.ImageInput, TestNets.ImageShape, b.ConvNodes);
    }

    private static void Rescale(GraphProto graph, string name, float factor, int axis)
    {
        var tensor = graph.Initializer.Single(t => t.Name == name);
        var values = TensorValues.ReadFloats(tensor);
        var dims = tensor.Dims.ToArray();
        var inner = dims.Skip(axis + 1).Aggregate(1L, (p, d) => p * d);
        for (long i = 0; i < values.Length; i++)
        {
            if (i / inner % dims[axis] < 2)
            {
                values[i] *= factor;
            }
        }

        graph.Initializer[graph.Initializer.IndexOf(tensor)] = TensorValues.FromFloats(name, dims, values);
    }

    [Fact]
    public void Equalization_does_not_change_what_the_float_model_computes()
    {
        var net = UnevenLeakyStack();
        var original = _folder.File("original.onnx");
        ModelWriter.Save(net.Model, original);
        var equalized = net.Model.Clone();
        var pairs = CrossLayerEqualizer.FindPairs(equalized.Graph);
        Assert.Equal(["conv1", "conv2"], pairs.Select(p => p.First.Name));
        Assert.Equal(["conv1", "lrelu1"], pairs[0].Tensors);

        // Channels 0 and 1 span 10× the others: they are the ones to shrink.
        var ranges = pairs.SelectMany(p => p.Tensors).ToDictionary(t => t, t => new ChannelRange(
            Enumerable.Range(0, 8).Select(c => c < 2 ? -8f : -0.8f).ToArray(), Enumerable.Range(0, 8).Select(c => c < 2 ? 2f : 0.2f).ToArray()));
        var divisors = CrossLayerEqualizer.Equalize(equalized.Graph, pairs, ranges);
        var path = _folder.File("equalized.onnx");
        ModelWriter.Save(equalized, path);

        Assert.Equal(4, divisors.Count);
        Assert.Equal([5f, 5f, 1f, 1f, 1f, 1f, 1f, 1f], divisors["conv1"]);
        Assert.NotEqual(
            TensorValues.ReadFloats(net.Model.Graph.Initializer.Single(t => t.Name == "conv2.weight")),
            TensorValues.ReadFloats(equalized.Graph.Initializer.Single(t => t.Name == "conv2.weight")));
        var sqnr = QuantizeTestKit.Sqnr(original, path, net)["conv3"];
        output.WriteLine($"equalized vs original: {sqnr:F1} dB");
        Assert.True(sqnr > 100, $"equalization changed the float outputs: {sqnr:F1} dB");

        var scaled = CrossLayerEqualizer.ScaledRange(new ChannelRange([-2f, -1f], [1f, 4f]), [2f, 4f]);
        Assert.Equal(new TensorRange(-1f, 1f), scaled);
    }

    [Fact]
    public void Before_a_float_conv_quiet_channels_are_amplified_too_and_the_float_model_is_unchanged()
    {
        var net = UnevenLeakyStack();
        var original = _folder.File("original-amplified.onnx");
        ModelWriter.Save(net.Model, original);
        var equalized = net.Model.Clone();
        var pairs = CrossLayerEqualizer.FindPairs(equalized.Graph);
        // Channels 0 and 1 span 10, channels 2–4 span 1 and channels 5–7 span 0.1; the median range is 1, the common range 2.
        var ranges = pairs.SelectMany(p => p.Tensors).ToDictionary(t => t, t => new ChannelRange(
            Enumerable.Range(0, 8).Select(c => c < 2 ? -8f : c < 5 ? -0.8f : -0.08f).ToArray(),
            Enumerable.Range(0, 8).Select(c => c < 2 ? 2f : c < 5 ? 0.2f : 0.02f).ToArray()));

        var divisors = CrossLayerEqualizer.Equalize(equalized.Graph, pairs, ranges, n => n.Name == "conv2");
        var path = _folder.File("amplified.onnx");
        ModelWriter.Save(equalized, path);

        // conv2 stays float: quiet channels are amplified to the common range, up to 4×; conv3 is quantized: only shrink.
        Assert.Equal([5f, 5f, 0.5f, 0.5f, 0.5f, 1 / CrossLayerEqualizer.MaxAmplification, 0.25f, 0.25f], divisors["conv1"]);
        Assert.Equal([5f, 5f, 1f, 1f, 1f, 1f, 1f, 1f], divisors["conv2"]);
        var sqnr = QuantizeTestKit.Sqnr(original, path, net)["conv3"];
        Assert.True(sqnr > 100, $"equalization changed the float outputs: {sqnr:F1} dB");
    }

    [Fact]
    public void A_conv_kept_float_in_a_quantization_takes_the_amplifying_factors_of_the_conv_before_it()
    {
        var net = UnevenLeakyStack();
        var (model, calibration) = QuantizeTestKit.Prepare(net, _folder.Path);
        var quantized = _folder.File("conv2-float.onnx");
        new Quantizer(QuantizeTestKit.Options() with { ExcludedNodes = new HashSet<string> { "conv2" }, BiasCorrection = false }).Run(model, calibration, quantized);

        // conv2 ships float: each input column of its weight is the original times the factor channel c was divided by.
        var before = TensorValues.ReadFloats(net.Model.Graph.Initializer.Single(t => t.Name == "conv2.weight"));
        var after = TensorValues.ReadFloats(ModelLoader.Load(quantized).Graph.Initializer.Single(t => t.Name == "conv2.weight"));
        var factors = Enumerable.Range(0, 8).Select(c => ColumnNorm(after, c) / ColumnNorm(before, c)).ToArray();
        output.WriteLine($"conv2 column factors: {string.Join(", ", factors.Select(f => f.ToString("F2", System.Globalization.CultureInfo.InvariantCulture)))}");
        Assert.All(factors[..2], f => Assert.True(f > 1.5, $"dominant channel not shrunk: {f:F2}"));
        Assert.Contains(factors[2..], f => f < 0.95); // quiet channels amplified: the dominant-only rule leaves them at 1
        Assert.All(factors, f => Assert.True(f >= (1 / CrossLayerEqualizer.MaxAmplification) - 1e-4, $"amplified beyond the cap: {f:F3}"));

        static double ColumnNorm(float[] w, int c) =>
            Math.Sqrt(Enumerable.Range(0, 8).Sum(o => Enumerable.Range(0, 9).Sum(k => Math.Pow(w[(((o * 8) + c) * 9) + k], 2))));
    }

    [Fact]
    public void Equalization_improves_int8_fidelity_when_a_few_channels_dominate()
    {
        var net = UnevenLeakyStack();
        var (model, calibration) = QuantizeTestKit.Prepare(net, _folder.Path);
        var plain = _folder.File("plain.onnx");
        var equalized = _folder.File("equalized-int8.onnx");

        new Quantizer(QuantizeTestKit.Options() with { Equalize = false, BiasCorrection = false }).Run(model, calibration, plain);
        new Quantizer(QuantizeTestKit.Options() with { Equalize = true, BiasCorrection = false }).Run(model, calibration, equalized);

        var without = QuantizeTestKit.Sqnr(model, plain, net)["conv3"];
        var with = QuantizeTestKit.Sqnr(model, equalized, net)["conv3"];
        output.WriteLine($"SQNR without equalization {without:F2} dB, with {with:F2} dB");
        Assert.True(with > without + 1, $"equalization did not help: {without:F2} → {with:F2} dB");
    }

    [Fact]
    public void Bias_correction_removes_the_mean_offset_of_the_int8_outputs()
    {
        var net = UnevenLeakyStack();
        var (model, calibration) = QuantizeTestKit.Prepare(net, _folder.Path);
        var plain = _folder.File("uncorrected.onnx");
        var corrected = _folder.File("corrected.onnx");

        new Quantizer(QuantizeTestKit.Options() with { BiasCorrection = false }).Run(model, calibration, plain);
        new Quantizer(QuantizeTestKit.Options() with { BiasCorrection = true }).Run(model, calibration, corrected);

        var before = MeanOffset(model, plain, net);
        var after = MeanOffset(model, corrected, net);
        output.WriteLine($"mean |per-channel offset| before {before:E2}, after {after:E2}");
        Assert.True(after < before / 2, $"bias correction left the offset at {after:E2} (was {before:E2})");
    }

    /// <summary>Mean over output channels of |mean(INT8 − FP32)| on the calibration inputs.</summary>
    private static double MeanOffset(string reference, string candidate, TestNet net)
    {
        var inputs = QuantizeTestKit.CalibrationSeeds.Select(s => QuantizeTestKit.Structured(s, net.InputShape)).ToList();
        var expected = QuantizeTestKit.Run(reference, net.InputName, net.InputShape, inputs);
        var actual = QuantizeTestKit.Run(candidate, net.InputName, net.InputShape, inputs);
        var offsets = new double[3];
        for (var s = 0; s < inputs.Count; s++)
        {
            var e = expected[s]["conv3"];
            var a = actual[s]["conv3"];
            for (var i = 0; i < e.Length; i++)
            {
                offsets[i / (e.Length / 3)] += (a[i] - e[i]) / (double)(e.Length / 3) / inputs.Count;
            }
        }

        return offsets.Average(Math.Abs);
    }
}
