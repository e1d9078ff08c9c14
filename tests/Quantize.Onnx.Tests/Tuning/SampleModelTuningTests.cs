using Quantize.Onnx.Model;
using Quantize.Onnx.Model.Proto;
using Quantize.Onnx.Samples.Images;
using Quantize.Onnx.Tuning;
using Quantize.Onnx.Validation;
using Xunit.Abstractions;

namespace Quantize.Onnx.Tests.Tuning;

/// <summary>
/// Tuning on a real model: the SuperResolution sample's waifu2x (its 8 calibration photos and 4 validation pairs, in
/// the repository), with a PSNR gate plain quantization misses. Accuracy decisions only (no minimum speed-up, INT8
/// always shipped), so the outcome does not depend on the machine's load.
/// </summary>
public sealed class SampleModelTuningTests(ITestOutputHelper output) : IDisposable
{
    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    private QuantizationOptions Options(string check, TuningOptions? tuning) => new()
    {
        // As the sample's project sets them: 48×48 photos enlarged to 96×96 with nearest neighbour.
        Images = new ImageOptions { Size = (96, 96), Interpolation = ImageInterpolation.Nearest },
        Validation = new ValidationOptions { Folder = Path.Combine(Repository.SampleModels, "waifu2x.validation"), Checks = [AccuracyCheck.Parse(check)], LayerSamples = 2 },
        Tuning = tuning,
        KeepFloatIfSlower = false,
        LatencyRuns = 1,
    };

    [Fact]
    public void Waifu2x_that_misses_its_psnr_gate_is_tuned_to_a_few_float_convs_and_the_lock_file_reproduces_it()
    {
        var models = Repository.SampleModels;
        var model = Path.Combine(models, "waifu2x.onnx");
        var calibration = Path.Combine(models, "waifu2x.calibration");
        var before = File.ReadAllBytes(model);
        var gated = Options("drop:psnr<=0.15", null);
        var plain = new Quantizer(gated with { Validation = gated.Validation! with { OnFailure = AccuracyFailureAction.ShipFp32 } }).Run(model, calibration, _folder.File("plain.onnx"));
        var plainDrop = plain.Validation!.Checks.Single().Value;
        output.WriteLine($"plain drop {plainDrop:F3} dB");
        Assert.True(plainDrop > 0.15, $"plain quantization already passes ({plainDrop:F3} dB): the test needs a tighter gate");

        var lockFile = _folder.File("waifu2x.quantization.json");
        var tuning = new TuningOptions { Enabled = true, LockFile = lockFile };
        var tuned = new Quantizer(Options("drop:psnr<=0.15", tuning)).Run(model, calibration, _folder.File("tuned.onnx"));

        var report = Assert.IsType<TuningReport>(tuned.Tuning);
        foreach (var a in report.Attempts)
        {
            output.WriteLine($"{a.Number} {a.Step}: {(a.Passed ? "pass" : "fail")} margin {a.Margin:F3} [{string.Join(", ", a.FloatNodes)}] {string.Join("; ", a.Checks)}");
        }

        Assert.True(report.Succeeded, report.Why);
        Assert.True(tuned.Validation!.Passed);
        Assert.Equal(OutputKind.Quantized, tuned.Output);
        // Some of waifu2x's seven convs stay float (their weights are float initializers, not DequantizeLinear outputs).
        var graph = ModelLoader.Load(_folder.File("tuned.onnx")).Graph;
        var floatWeights = graph.Initializer.Where(t => t.DataType == (int)TensorProto.Types.DataType.Float).Select(t => t.Name).ToHashSet();
        var floatConvs = graph.Node.Where(n => n.OpType == "Conv" && floatWeights.Contains(n.Input[1])).Select(n => n.Name).Order().ToList();
        Assert.InRange(floatConvs.Count, 1, 6);
        Assert.Equal(report.FloatNodes.Where(n => n.StartsWith("Conv_", StringComparison.Ordinal)).Order(), floatConvs);
        Assert.Equal(before, File.ReadAllBytes(model));

        var again = new Quantizer(Options("drop:psnr<=0.15", tuning)).Run(model, calibration, _folder.File("again.onnx"));
        Assert.Equal("lock-file", again.Tuning!.Source);
        Assert.Equal(File.ReadAllBytes(_folder.File("tuned.onnx")), File.ReadAllBytes(_folder.File("again.onnx")));
    }
}
