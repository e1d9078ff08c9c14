using System.Globalization;
using Quantize.Onnx.Model;
using Quantize.Onnx.Model.Proto;
using Quantize.Onnx.Quantization;
using Quantize.Onnx.Tests.TestModels;
using Quantize.Onnx.Tuning;
using Xunit.Abstractions;

namespace Quantize.Onnx.Tests.Tuning;

/// <summary>
/// Tuning with <see cref="QuantizationOptions.UInt8Outputs"/>: the layers writing the outputs' bytes are never kept float
/// (that would leave an output with no measured bytes, QNT1532), so a gate plain quantization misses is passed with
/// other layers float and the outputs still ship as uint8.
/// </summary>
public sealed class UInt8OutputTuningTests(ITestOutputHelper output) : IDisposable
{
    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    [Fact]
    public void A_gate_that_needs_float_layers_is_tuned_around_the_output_writers_and_the_outputs_ship_as_uint8()
    {
        var net = OutlierNet();
        var (model, calibration) = QuantizeTestKit.Prepare(net, _folder.Path);
        var validation = QuantizeTestKit.WriteCalibration(_folder.File("validation"), net.InputName, net.InputShape, QuantizeTestKit.HeldOutSeeds);
        var plain = new Quantizer(TunerTests.Options(validation, "sqnr>=0", null) with { UInt8Outputs = true }).Run(model, calibration, _folder.File("plain.onnx"));
        var sqnr = plain.Validation!.Checks.Single().Value;
        var check = FormattableString.Invariant($"sqnr>={sqnr + 6:F1}");
        output.WriteLine($"plain SQNR {sqnr:F2} dB; gate {check}");

        var tuning = new TuningOptions { Enabled = true, LockFile = _folder.File("model.quantization.json") };
        var shipped = _folder.File("tuned.onnx");
        var tuned = new Quantizer(TunerTests.Options(validation, check, tuning) with { UInt8Outputs = true }).Run(model, calibration, shipped);

        var report = Assert.IsType<TuningReport>(tuned.Tuning);
        foreach (var a in report.Attempts)
        {
            output.WriteLine($"{a.Number} {a.Step}: {(a.Passed ? "pass" : "fail")} {string.Join("; ", a.Checks)} float [{string.Join(", ", a.FloatNodes)}]");
        }

        output.WriteLine(report.Why);
        Assert.True(report.Succeeded, report.Why);
        Assert.Equal(OutputKind.Quantized, tuned.Output);
        Assert.Contains("conv2", report.FloatNodes);

        // The outputs' producers (the convs writing their bytes) stayed INT8 in every attempt, and the outputs ship as uint8 with their grids.
        var source = ModelLoader.Load(model).Graph;
        var writers = source.Output.Select(o => source.Node.Single(n => n.Output.Contains(o.Name)).Name).ToList();
        Assert.All(report.Attempts, a => Assert.DoesNotContain(a.FloatNodes, writers.Contains));
        var written = ModelLoader.Load(shipped);
        Assert.All(written.Graph.Output, o => Assert.Equal((int)TensorProto.Types.DataType.Uint8, o.Type.TensorType.ElemType));
        var metadata = written.MetadataProps.ToDictionary(p => p.Key, p => p.Value, StringComparer.Ordinal);
        Assert.All(written.Graph.Output, o => Assert.True(float.Parse(metadata[UInt8BackEnd.ScaleKey(o.Name)], CultureInfo.InvariantCulture) > 0));
        Assert.Contains(written.Graph.Node, n => report.FloatNodes.Contains(n.Name) && n.OpType == "Conv");
    }

    [Fact]
    public void When_only_the_output_writers_would_help_the_failed_search_says_they_stay_int8()
    {
        // The conv net's error is in its output convs' grids: no other float set reaches 10 dB above plain quantization.
        var (model, calibration, validation) = TunerTests.Prepare(_folder);
        var plain = new Quantizer(TunerTests.Options(validation, "sqnr>=0", null) with { UInt8Outputs = true }).Run(model, calibration, _folder.File("plain.onnx"));
        var check = FormattableString.Invariant($"sqnr>={plain.Validation!.Checks.Single().Value + 10:F1}");

        var options = TunerTests.Options(validation, check, new TuningOptions { Enabled = true, LockFile = _folder.File("model.quantization.json") }) with { UInt8Outputs = true };
        var e = Assert.Throws<QuantizeException>(() => new Quantizer(options).Run(model, calibration, _folder.File("tuned.onnx")));

        Assert.Equal(ErrorCodes.AccuracyCheckFailed, e.Code);
        Assert.Contains("with uint8 outputs the layers writing the outputs stay INT8", e.Message, StringComparison.Ordinal);
    }

    /// <summary>
    /// conv1 3→8 → Relu → conv2 8→8 → Relu → conv3 8→4 (output). conv1's channel 7 is dead (bias −100: Relu gives 0), and
    /// conv2 reads it with weights 100× its others: harmless in float, but each conv2 channel's 8-bit grid then spans the
    /// dead channel's weight and rounds the live ones to a few levels. So conv2 is the layer to keep float, not the
    /// output's conv3.
    /// </summary>
    private static TestNet OutlierNet()
    {
        var random = new Random(17);
        float[] Small(int count) => Enumerable.Range(0, count).Select(_ => (float)(random.NextDouble() - 0.5) * 0.3f).ToArray();
        var b = new TestModelBuilder(13, 17, false, "outlier");
        var x = b.Input(TestNets.ImageInput, TestNets.ImageShape);
        var bias1 = Small(8);
        bias1[7] = -100f;
        var conv1 = Conv(b, "conv1", x, b.Constant("conv1.weight", [8, 3, 3, 3], Small(8 * 3 * 9)), b.Constant("conv1.bias", [8], bias1));
        var weights2 = Small(8 * 8 * 9);
        for (var oc = 0; oc < 8; oc++)
        {
            weights2[(((oc * 8) + 7) * 9) + 4] = 15f;
        }

        var conv2 = Conv(b, "conv2", b.Relu("relu1", conv1), b.Constant("conv2.weight", [8, 8, 3, 3], weights2), b.Constant("conv2.bias", [8], Small(8)));
        Conv(b, "conv3", b.Relu("relu2", conv2), b.Constant("conv3.weight", [4, 8, 3, 3], Small(4 * 8 * 9)), b.Constant("conv3.bias", [4], Small(4)));
        b.Output("conv3", 1, 4, 16, 16);
        return new TestNet(b.Build(), TestNets.ImageInput, TestNets.ImageShape, ["conv1", "conv2", "conv3"]);
    }

    private static string Conv(TestModelBuilder b, string name, string x, string weight, string bias) =>
        b.Node("Conv", name, [x, weight, bias], TestModelBuilder.Ints("kernel_shape", 3, 3), TestModelBuilder.Ints("pads", 1, 1, 1, 1));
}
