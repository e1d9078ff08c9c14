using Quantize.Onnx.Validation;

namespace Quantize.Onnx.Tests.Validation;

/// <summary>Bootstrap intervals on hand-made per-sample values, and how they show in the summary and the failure message.</summary>
public sealed class BootstrapTests
{
    /// <summary>Per-sample PSNR-like values: a mean of 30 with a spread of ±2 (deterministic).</summary>
    private static double[] Values(int n) => [.. Enumerable.Range(0, n).Select(i => 30 + (2 * Math.Sin(i * 1.7)))];

    private static ConfidenceInterval MeanInterval(double[] values) =>
        Bootstrap.Interval(values.Length, idx => idx.Average(i => values[i]))!;

    [Fact]
    public void The_interval_is_deterministic()
    {
        var small = Values(8);

        Assert.Equal(MeanInterval(small), MeanInterval(small));
    }

    [Theory]
    [InlineData(8)]
    [InlineData(128)]
    public void The_interval_contains_the_point_estimate(int samples)
    {
        var values = Values(samples);

        var interval = MeanInterval(values);

        Assert.True(interval.Contains(values.Average()), $"{interval} vs {values.Average()}");
    }

    [Fact]
    public void The_interval_shrinks_with_more_samples()
    {
        var small = MeanInterval(Values(8));
        var large = MeanInterval(Values(128));
        var wide = small.High - small.Low;
        var narrow = large.High - large.Low;

        Assert.True(wide > 0);
        Assert.True(narrow < wide / 2, $"{narrow} vs {wide}"); // ~1/sqrt(16) of the width in theory
    }

    [Fact]
    public void One_sample_or_identical_samples_give_a_point_interval()
    {
        Assert.Equal(new ConfidenceInterval(5, 5), Bootstrap.Interval(1, idx => 5.0));
        double[] same = [2, 2, 2, 2];
        Assert.Equal(new ConfidenceInterval(2, 2), MeanInterval(same));
        Assert.Null(Bootstrap.Interval(0, idx => 1.0));
    }

    [Fact]
    public void Percentiles_interpolate_between_order_statistics()
    {
        var values = Enumerable.Range(0, 1001).Select(i => (double)i).ToArray();

        var i = Bootstrap.Percentile(values)!;

        Assert.Equal(25, i.Low, 9);
        Assert.Equal(975, i.High, 9);
    }

    [Fact]
    public void Percentiles_ignore_NaN()
    {
        var values = Enumerable.Range(0, 1001).Select(i => (double)i).Append(double.NaN).ToArray();

        var i = Bootstrap.Percentile(values)!;

        Assert.Equal(25, i.Low, 9);
        Assert.Equal(975, i.High, 9);
    }

    [Fact]
    public void Fidelity_metrics_recompute_from_per_sample_contributions()
    {
        var f = new FidelityMetrics();
        f.Add([1, 2, 3, 4], [1, 2, 3, 5], 1);
        f.Add([2, 2, 2, 2], [2, 2, 2, 2], 1);

        // sample 0 alone: signal 30, noise 1 -> 10·log10(30); twice sample 1: no noise.
        Assert.Equal(10 * Math.Log10(30), f.Values([0])["sqnr"], 9);
        Assert.Equal(10 * Math.Log10(30), f.Values([0, 0])["sqnr"], 9);
        Assert.Equal(double.PositiveInfinity, f.Values([1, 1])["sqnr"]);
        Assert.Equal(10 * Math.Log10(46.0), f.Sqnr, 9); // both: signal 30 + 16, noise 1
        Assert.Equal(1, f.Values([0])["max-abs-error"]);
        Assert.Equal(1, f.MaxAbsError);
        Assert.Equal(0, f.Values([1])["max-abs-error"]);
    }

    [Fact]
    public void Task_drop_intervals_resample_fp32_and_int8_in_pairs()
    {
        // FP32 and INT8 MSE move together from sample to sample; the INT8 one is always 0.01 worse,
        // so the paired drop is exactly 0.01 on every resample even though each MSE varies a lot.
        var fp32 = new TaskMetrics();
        var int8 = new TaskMetrics();
        for (var s = 0; s < 16; s++)
        {
            var e = 0.1f * (s % 5);
            fp32.Add([e], [0], 1, labels: false);
            int8.Add([MathF.Sqrt((e * e) + 0.01f)], [0], 1, labels: false);
        }

        var drop = AccuracyGate.Intervals(16, idx => new Dictionary<string, double> { ["mse"] = AccuracyGate.Drop("mse", fp32.Values(idx)["mse"], int8.Values(idx)["mse"]) })["mse"]!;
        var mse = AccuracyGate.Intervals(16, idx => int8.Values(idx))["mse"]!;

        Assert.Equal(0.01, drop.Low, 5);
        Assert.Equal(0.01, drop.High, 5);
        Assert.True(mse.High - mse.Low > 0.02, mse.ToString());
    }

    private static CheckResult Check(double value, double threshold, double low, double high) =>
        new("drop:psnr<=0.5", "psnr", "out", true, 36.57, 36.57 - value, value, "<=", threshold, value <= threshold, " dB")
        {
            Interval = new ConfidenceInterval(low, high),
        };

    [Fact]
    public void The_summary_shows_the_interval_of_the_checked_value()
    {
        Assert.Equal("psnr 36.57 -> 34.13 dB (drop 2.44 [2.1, 2.8] <= 3: ok)", Check(2.44, 3, 2.1, 2.8).Describe());
        var sqnr = new CheckResult("sqnr>=10", "sqnr", "out", false, null, 35.1, 35.1, ">=", 10, true, " dB") { Interval = new ConfidenceInterval(34.2, 36) };
        Assert.Equal("sqnr 35.1 [34.2, 36] dB (>= 10: ok)", sqnr.Describe());
    }

    private static ValidationReport Report(params CheckResult[] checks) => new()
    {
        Folder = "/data/val",
        Samples = 4,
        SameAsCalibration = false,
        Metrics = [],
        Checks = checks,
        WorstLayers = [],
        LayerSamples = 0,
    };

    [Fact]
    public void A_failure_whose_threshold_lies_inside_the_interval_is_called_within_noise()
    {
        var noisy = Check(0.62, 0.5, 0.31, 0.95);

        var message = AccuracyGate.FailureMessage("sr.onnx", Report(noisy), new HashSet<string>(), 3);

        Assert.True(noisy.WithinNoise);
        Assert.Contains("drop 0.62 dB > threshold 0.5 dB: failed (95 % bootstrap interval of the drop: [0.31, 0.95] dB)", message, StringComparison.Ordinal);
        Assert.Contains("The verdict of 'drop:psnr<=0.5' is within noise", message, StringComparison.Ordinal);
        Assert.Contains("more validation samples", message, StringComparison.Ordinal);
        Assert.Contains("within noise)", noisy.Describe(), StringComparison.Ordinal);
    }

    [Fact]
    public void A_clear_failure_is_not_called_within_noise()
    {
        var clear = Check(2.44, 0.5, 2.1, 2.8);

        var message = AccuracyGate.FailureMessage("sr.onnx", Report(clear), new HashSet<string>(), 3);

        Assert.False(clear.WithinNoise);
        Assert.DoesNotContain("within noise", message, StringComparison.Ordinal);
        Assert.Contains("[2.1, 2.8]", message, StringComparison.Ordinal);
    }
}
