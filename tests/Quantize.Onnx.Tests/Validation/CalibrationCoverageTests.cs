using Quantize.Onnx.Tests.Samples;
using Quantize.Onnx.Tests.TestModels;
using Quantize.Onnx.Validation;
using Xunit.Abstractions;

namespace Quantize.Onnx.Tests.Validation;

/// <summary>Calibration coverage: the share of validation activations outside the calibrated ranges, and warning QNT2404.</summary>
public sealed class CalibrationCoverageTests(ITestOutputHelper output) : IDisposable
{
    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    /// <summary>Structured samples (<see cref="QuantizeTestKit.Structured"/>) scaled by <paramref name="amplitude"/>.</summary>
    private string Write(string name, TestNet net, IEnumerable<int> seeds, float amplitude)
    {
        var folder = Path.Combine(_folder.Path, name);
        var i = 0;
        foreach (var seed in seeds)
        {
            var sample = Directory.CreateDirectory(Path.Combine(folder, $"{name}_{i++:D3}")).FullName;
            Npy.WriteFloats(Path.Combine(sample, net.InputName + ".npy"), net.InputShape, [.. QuantizeTestKit.Structured(seed, net.InputShape).Select(v => v * amplitude)]);
        }

        return folder;
    }

    /// <summary>Like <see cref="Write"/>, with one input value of the first sample set to <paramref name="spike"/>: a rare outlier.</summary>
    private string WriteWithSpike(string name, TestNet net, float spike)
    {
        var folder = Write(name, net, QuantizeTestKit.CalibrationSeeds, 1f);
        var first = Path.Combine(folder, $"{name}_000", net.InputName + ".npy");
        var values = QuantizeTestKit.Structured(QuantizeTestKit.CalibrationSeeds[0], net.InputShape);
        values[values.Length / 2] = spike;
        Npy.WriteFloats(first, net.InputShape, values);
        return folder;
    }

    private QuantizeResult Run(TestNet net, string calibration, string validation, AccuracyFailureAction onFailure = AccuracyFailureAction.Error, QuantizationOptions? options = null)
    {
        var model = _folder.File("model.onnx");
        Quantize.Onnx.Model.ModelWriter.Save(net.Model, model);
        options = (options ?? QuantizeTestKit.Options()) with { Validation = new ValidationOptions { Folder = validation, LayerSamples = 1, OnFailure = onFailure } };
        var result = new Quantizer(options).Run(model, calibration, _folder.File("out.onnx"));
        foreach (var w in result.Warnings)
        {
            output.WriteLine($"{w.Code}: {w.Message}");
        }

        return result;
    }

    [Fact]
    public void Validation_data_larger_than_the_calibration_data_warns_QNT2404_naming_the_clipped_tensors_and_samples()
    {
        var net = TestNets.ConvNet();
        var calibration = Write("calib", net, QuantizeTestKit.CalibrationSeeds, 0.25f);
        var validation = Write("val", net, QuantizeTestKit.HeldOutSeeds, 1f);

        // Clipping this much also fails the default sqnr check: ship FP32 so every warning shows.
        var result = Run(net, calibration, validation, AccuracyFailureAction.ShipFp32);

        var coverage = Assert.IsType<CoverageReport>(result.Validation!.Coverage);
        Assert.Contains(result.Warnings, w => w.Code == ErrorCodes.AccuracyCheckFailedShippedFp32 && w.Message.Contains("(QNT2404)", StringComparison.Ordinal));
        var warning = Assert.Single(result.Warnings, w => w.Code == ErrorCodes.CalibrationNotRepresentative);
        var worst = coverage.WorstTensors[0];
        Assert.True(worst.Share > CalibrationCoverage.TensorThreshold, $"{worst}");
        Assert.True(coverage.Share > CalibrationCoverage.OverallThreshold);
        Assert.Contains($"'{worst.Tensor}' ", warning.Message, StringComparison.Ordinal);
        Assert.Matches(@"'[^']+' \d+(\.\d+)? % \(grid \[", warning.Message);
        Assert.Contains("add calibration samples like validation sample(s) 'val_00", warning.Message, StringComparison.Ordinal);
        Assert.Contains("does not represent the validation data", warning.Message, StringComparison.Ordinal);
        // The input is calibrated on [-0.25, 0.25]; the validation input spans [-1, 1], mostly outside.
        var input = Assert.Single(coverage.WorstTensors, t => t.Tensor == net.InputName);
        Assert.True(input.Share > 30, $"{input}");
        Assert.InRange(input.High, 0.2, 0.3);
        Assert.Equal(4 * net.InputShape.Aggregate(1L, (a, b) => a * b), input.Elements);
    }

    [Fact]
    public void Validation_data_like_the_calibration_data_does_not_warn()
    {
        var net = TestNets.ConvNet();
        var calibration = Write("calib", net, QuantizeTestKit.CalibrationSeeds, 1f);
        var validation = Write("val", net, QuantizeTestKit.HeldOutSeeds, 1f);

        var result = Run(net, calibration, validation);

        var coverage = Assert.IsType<CoverageReport>(result.Validation!.Coverage);
        output.WriteLine($"{coverage.Share:0.####} % of {coverage.Elements} over {coverage.Tensors} tensors; worst {string.Join(", ", coverage.WorstTensors.Take(3))}");
        Assert.DoesNotContain(result.Warnings, w => w.Code == ErrorCodes.CalibrationNotRepresentative);
        Assert.True(coverage.Tensors >= 4);
        Assert.True(coverage.Share < CalibrationCoverage.OverallThreshold);
        Assert.Equal(0, coverage.OutlierGridCount);
    }

    [Fact]
    public void Grids_a_rare_outlier_set_are_named_in_the_failure_message_with_the_calibration_method_that_cuts_tails()
    {
        // One calibration value of 400 among values within ±1 (the ISNet-class failure: decoder maxima of 95 over bulks under 5).
        var net = TestNets.ConvNet();
        var calibration = WriteWithSpike("calib", net, 400f);
        var validation = Write("val", net, QuantizeTestKit.HeldOutSeeds, 1f);

        var minMax = Run(net, calibration, validation, AccuracyFailureAction.ShipFp32);

        var coverage = Assert.IsType<CoverageReport>(minMax.Validation!.Coverage);
        Assert.True(coverage.OutlierGridCount >= 1, $"{coverage.OutlierGridCount}");
        var widest = coverage.OutlierGrids[0];
        Assert.True(100.0 * widest.Wide / widest.NonZero < CalibrationCoverage.OutlierShare, $"{widest}");
        var failure = Assert.Single(minMax.Warnings, w => w.Code == ErrorCodes.AccuracyCheckFailedShippedFp32);
        Assert.Contains("Rare outliers set the grids of", failure.Message, StringComparison.Ordinal);
        Assert.Contains($"'{widest.Tensor}' (grid [", failure.Message, StringComparison.Ordinal);
        Assert.Contains("QuantizeCalibrationMethod=\"percentile\"", failure.Message, StringComparison.Ordinal);

        // The same data without the outlier: no grid is flagged, and the message says nothing of outliers.
        var clean = Run(net, Write("clean", net, QuantizeTestKit.CalibrationSeeds, 1f), validation);
        output.WriteLine($"with the outlier: {minMax.Validation.Checks[0].Value:F1} dB, {coverage.OutlierGridCount} outlier grid(s); without: {clean.Validation!.Checks[0].Value:F1} dB");
        Assert.Equal(0, clean.Validation.Coverage!.OutlierGridCount);
        Assert.Null(CalibrationCoverage.OutlierMessage(clean.Validation.Coverage));
    }

    [Fact]
    public void The_calibration_samples_themselves_never_clip_so_the_measured_grids_are_the_ones_used()
    {
        // Equalization rescales ranges and weights together: on its own calibration data nothing may fall outside.
        var net = TestNets.ConvNet();
        var calibration = Write("calib", net, QuantizeTestKit.CalibrationSeeds, 1f);

        var result = Run(net, calibration, calibration);

        var coverage = Assert.IsType<CoverageReport>(result.Validation!.Coverage);
        Assert.Equal(0, coverage.Clipped);
        Assert.Empty(coverage.WorstTensors);
        Assert.True(coverage.Elements > 0);
    }
}
