using Quantize.Onnx.Tests.TestModels;
using Quantize.Onnx.Validation;
using Xunit.Abstractions;

namespace Quantize.Onnx.Tests.Validation;

/// <summary>Bootstrap intervals through the quantizer: in the report, and a failure within noise said so in QNT1401.</summary>
public sealed class VerdictNoiseTests(ITestOutputHelper output) : IDisposable
{
    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    private static QuantizationOptions Options(string validation, params string[] checks) =>
        QuantizeTestKit.Options() with
        {
            Validation = new ValidationOptions { Folder = validation, Checks = checks.Select(AccuracyCheck.Parse).ToList(), LayerSamples = 1 },
        };

    [Fact]
    public void A_threshold_inside_the_interval_fails_within_noise_and_one_beyond_it_does_not()
    {
        var net = TestNets.ConvNet();
        var (model, calibration) = QuantizeTestKit.Prepare(net, _folder.Path);
        var validation = QuantizeTestKit.WriteCalibration(Path.Combine(_folder.Path, "validation"), net.InputName, net.InputShape, QuantizeTestKit.HeldOutSeeds);

        var report = new Quantizer(Options(validation, "sqnr>=0")).Run(model, calibration, _folder.File("a.onnx")).Validation!;
        var check = Assert.Single(report.Checks);
        var interval = Assert.IsType<ConfidenceInterval>(check.Interval);
        output.WriteLine(check.Describe());
        Assert.True(interval.Contains(check.Value), $"{check.Value} {interval}");
        Assert.True(interval.High > interval.Low);
        Assert.All(report.Metrics, m => Assert.NotNull(m.Int8Interval));
        // Reproducible: the same samples give the same interval.
        var again = new Quantizer(Options(validation, "sqnr>=0")).Run(model, calibration, _folder.File("b.onnx")).Validation!;
        Assert.Equal(interval, again.Checks[0].Interval);

        var inside = Math.Round((check.Value + interval.High) / 2, 2);
        var noisy = Assert.Throws<QuantizeException>(() =>
            new Quantizer(Options(validation, $"sqnr>={inside.ToString(System.Globalization.CultureInfo.InvariantCulture)}")).Run(model, calibration, _folder.File("c.onnx")));
        output.WriteLine(noisy.Message);
        Assert.Equal(ErrorCodes.AccuracyCheckFailed, noisy.Code);
        Assert.Contains("is within noise", noisy.Message, StringComparison.Ordinal);
        Assert.Contains("more validation samples", noisy.Message, StringComparison.Ordinal);

        var beyond = Math.Ceiling(interval.High + 5);
        var clear = Assert.Throws<QuantizeException>(() =>
            new Quantizer(Options(validation, $"sqnr>={beyond.ToString(System.Globalization.CultureInfo.InvariantCulture)}")).Run(model, calibration, _folder.File("d.onnx")));
        Assert.DoesNotContain("within noise", clear.Message, StringComparison.Ordinal);
        Assert.Contains("95 % bootstrap interval of the value", clear.Message, StringComparison.Ordinal);
    }
}
