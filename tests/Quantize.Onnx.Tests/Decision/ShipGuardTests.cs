using Quantize.Onnx.Model;
using Quantize.Onnx.Tests.Samples;
using Quantize.Onnx.Tests.TestModels;
using Quantize.Onnx.Validation;
using Xunit.Abstractions;

namespace Quantize.Onnx.Tests.Decision;

/// <summary>
/// What keeps an INT8 model from shipping when nobody set a threshold: the 10 dB fidelity floor without validation data
/// (QNT1405, or QNT2406 and FP32 under ship-fp32), and a quantized model larger than its source (QNT2007).
/// </summary>
public sealed class ShipGuardTests(ITestOutputHelper output) : IDisposable
{
    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    [Fact]
    public void Noise_without_validation_data_is_QNT1405_naming_the_output_and_nothing_is_written()
    {
        var (net, model, calibration) = ConvNetWithUnscaledSample();
        var outputPath = _folder.File("noise.int8.onnx");

        var e = Assert.Throws<QuantizeException>(() => new Quantizer(QuantizeTestKit.Options()).Run(model, calibration, outputPath));

        output.WriteLine(e.Message);
        Assert.Equal(ErrorCodes.FidelityTooLow, e.Code);
        Assert.Equal(model, e.File);
        Assert.Equal(OutputKind.NotWritten, e.Result?.Output);
        var worst = e.Result!.Fidelity.MinBy(f => f.SqnrDb)!;
        Assert.True(worst.SqnrDb < Quantizer.FidelityFloorDb, $"{worst.Output}: {worst.SqnrDb:F1} dB");
        Assert.Contains($"INT8 output '{worst.Output}'", e.Message, StringComparison.Ordinal);
        Assert.Contains(worst.Output, net.Model.Graph.Output.Select(o => o.Name));
        Assert.Contains("10 dB", e.Message, StringComparison.Ordinal);
        Assert.Contains("ship-fp32", e.Message, StringComparison.Ordinal);
        Assert.False(File.Exists(outputPath));
        Assert.Empty(Directory.GetFiles(_folder.Path, "noise*"));
    }

    [Fact]
    public void Noise_under_ship_fp32_is_QNT2406_and_the_FP32_graph_ships()
    {
        var (net, model, calibration) = ConvNetWithUnscaledSample();
        var outputPath = _folder.File("noise.kept.onnx");
        var options = QuantizeTestKit.Options() with { Validation = new ValidationOptions { OnFailure = AccuracyFailureAction.ShipFp32 } };

        var result = new Quantizer(options).Run(model, calibration, outputPath);

        Assert.Equal(OutputKind.KeptFloatFailedCheck, result.Output);
        var warning = Assert.Single(result.Warnings, w => w.Code == ErrorCodes.FidelityTooLowShippedFp32);
        Assert.Contains("FP32 model is shipped unchanged", warning.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(result.Warnings, w => w.Code == ErrorCodes.FidelityTooLow);
        Assert.Equal(net.Model.Graph, ModelLoader.Load(outputPath).Graph);
    }

    [Fact]
    public void A_quantized_model_larger_than_its_source_keeps_FP32_with_QNT2007()
    {
        var (net, model, calibration) = TinyConv();
        var outputPath = _folder.File("tiny.kept.onnx");

        var result = new Quantizer(QuantizeTestKit.Options() with { KeepFloatIfSlower = true }).Run(model, calibration, outputPath);

        output.WriteLine($"FP32 {result.Fp32Bytes} bytes, INT8 {result.Int8Bytes} bytes; fused {result.Fusion.FusedCount}");
        Assert.True(result.Int8Bytes > result.Fp32Bytes);
        Assert.True(result.Fusion.FusedCount > 0, "the Conv runs on an integer kernel, so QNT2006 does not apply");
        Assert.Equal(OutputKind.KeptFloat, result.Output);
        var warning = Assert.Single(result.Warnings, w => w.Code == ErrorCodes.LargerThanSource);
        Assert.Equal(model, warning.File);
        Assert.Contains("larger than its FP32 source", warning.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(result.Warnings, w => w.Code is ErrorCodes.NoIntegerKernels or ErrorCodes.KeptFloatNotFaster);
        var shipped = ModelLoader.Load(outputPath);
        Assert.Equal(net.Model.Graph, shipped.Graph);
        Assert.Contains(shipped.MetadataProps, p => p.Value.Contains("kept-fp32-larger", StringComparison.Ordinal));
    }

    [Fact]
    public void Without_keep_float_if_slower_the_larger_INT8_model_ships()
    {
        var (_, model, calibration) = TinyConv();
        var outputPath = _folder.File("tiny.int8.onnx");

        var result = new Quantizer(QuantizeTestKit.Options()).Run(model, calibration, outputPath);

        Assert.True(result.Int8Bytes > result.Fp32Bytes);
        Assert.Equal(OutputKind.Quantized, result.Output);
        Assert.DoesNotContain(result.Warnings, w => w.Code == ErrorCodes.LargerThanSource);
        Assert.Equal(result.Int8Bytes, new FileInfo(outputPath).Length);
        Assert.Contains(ModelLoader.Load(outputPath).Graph.Node, n => n.OpType == "QuantizeLinear");
    }

    /// <summary>
    /// The conv net, calibrated on six samples and one left in 0–255 pixels (255 times the others): the input grid is
    /// stretched 255-fold, so INT8 computes noise on the ordinary samples the fidelity is measured on.
    /// </summary>
    private (TestNet Net, string Model, string Calibration) ConvNetWithUnscaledSample()
    {
        var net = TestNets.ConvNet();
        var (model, _) = QuantizeTestKit.Prepare(net, Path.Combine(_folder.Path, "convnet"));
        var calibration = QuantizeTestKit.WriteCalibration(Path.Combine(_folder.Path, "cal"), net.InputName, net.InputShape, QuantizeTestKit.CalibrationSeeds.Take(6));
        var raw = Directory.CreateDirectory(Path.Combine(calibration, "sample_zzz")).FullName;
        Npy.WriteFloats(Path.Combine(raw, net.InputName + ".npy"), net.InputShape, QuantizeTestKit.Structured(7, net.InputShape).Select(v => (v + 1) * 127.5f).ToArray());
        return (net, model, calibration);
    }

    /// <summary>input 1×3×16×16 → one 1×1 Conv 3→2: 32 bytes of weights and bias, less than its QDQ parameters and nodes.</summary>
    private (TestNet Net, string Model, string Calibration) TinyConv()
    {
        var b = new TestModelBuilder(13, 3, false, "tiny");
        var x = b.Input("input", 1, 3, 16, 16);
        b.Conv("conv", x, 3, 2, kernel: 1);
        b.Output("conv", 1, 2, 16, 16);
        var net = new TestNet(b.Build(), "input", [1, 3, 16, 16], b.ConvNodes);
        var (model, calibration) = QuantizeTestKit.Prepare(net, Path.Combine(_folder.Path, "tiny"));
        return (net, model, calibration);
    }
}
