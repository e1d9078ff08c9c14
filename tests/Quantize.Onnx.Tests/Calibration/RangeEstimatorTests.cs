using Quantize.Onnx.Calibration;

namespace Quantize.Onnx.Tests.Calibration;

/// <summary>Percentile, entropy and MSE ranges against ranges computed by hand on known distributions.</summary>
public sealed class RangeEstimatorTests
{
    [Fact]
    public void Percentile_drops_half_of_the_rest_on_each_side()
    {
        // 1, 2, ..., 1000 once each; bins are 0.25 wide. 99 % keeps 990 values: 5 dropped per side.
        var h = Histogram(Enumerable.Range(1, 1000).Select(i => (float)i));

        var range = RangeEstimators.Percentile(h, 99);

        Assert.Equal(0.25, h.Width);
        Assert.Equal(6f, range.Min);       // lower edge of the bin of 6, the first value kept
        Assert.Equal(995.25f, range.Max);  // upper edge of the bin of 995, the last value kept
    }

    [Fact]
    public void Percentile_ignores_a_handful_of_outliers()
    {
        var values = HistogramTests.Values(0, 1, 100_000, 1).Concat(Enumerable.Repeat(1000f, 10)).ToArray();

        var range = RangeEstimators.Percentile(Histogram(values), 99.9);

        Assert.Equal(1000f, Histogram(values).Max);
        Assert.InRange(range.Max, 0.99f, 1.25f); // within one bin (0.25) of the bulk's end
        Assert.InRange(range.Min, 0f, 0.25f);
    }

    [Fact]
    public void Saturation_bounds_cut_every_method()
    {
        var h = Histogram(HistogramTests.Values(-223, 198, 50_000, 2));

        Assert.Equal(new TensorRange(-3f, 198f), RangeEstimators.MinMax(h, saturatesBelow: -3));
        Assert.Equal(-3f, RangeEstimators.Percentile(h, 99.999, saturatesBelow: -3).Min);
        Assert.InRange(RangeEstimators.Entropy(h, saturatesBelow: -3, saturatesAbove: double.PositiveInfinity).Min, -3f, 0f);
        // MSE through the hard-swish may cut further into [−3, 0], where the output is small anyway.
        Assert.InRange(RangeEstimators.Mse(h, [ConsumerResponse.HardSwish(3, 6)]).Min, -3f, 0f);
        Assert.Equal(-3f, RangeEstimators.Mse(h, [ConsumerResponse.Clip(-3, 200)]).Min);
    }

    [Fact]
    public void Mse_of_a_laplace_distribution_matches_the_analytic_optimum()
    {
        // Laplace(b = 1): clipping at ±a costs 2·b²·e^(−a/b); rounding inside costs Δ²/12 with Δ = 2a/255.
        var optimum = Enumerable.Range(1, 20000).Select(i => i / 1000.0)
            .MinBy(a => (Math.Pow(2 * a / 255, 2) / 12) + (2 * Math.Exp(-a)));
        var random = new Random(5);
        var values = Enumerable.Range(0, 400_000).Select(_ =>
        {
            var u = random.NextDouble() - 0.5;
            return (float)(-Math.Sign(u) * Math.Log(1 - (2 * Math.Abs(u))));
        }).ToArray();

        var range = RangeEstimators.Mse(Histogram(values), symmetric: true);

        Assert.InRange(optimum, 9.5, 10.5); // ≈ 9.89 b for 8 bits (Banner et al., ACIQ)
        Assert.InRange(range.Max, optimum * 0.9, optimum * 1.1);
        Assert.Equal(-range.Max, range.Min, 0.01f);
    }

    [Fact]
    public void Mse_keeps_the_full_range_of_a_uniform_distribution()
    {
        var range = RangeEstimators.Mse(Histogram(HistogramTests.Values(-1, 1, 100_000, 3)));

        Assert.InRange(range.Min, -1f, -0.98f);
        Assert.InRange(range.Max, 0.98f, 1f);
    }

    [Fact]
    public void Mse_through_a_relu_never_spends_levels_below_zero()
    {
        var range = RangeEstimators.Mse(Histogram(HistogramTests.Values(-40, 10, 100_000, 4)), [ConsumerResponse.Relu]);

        Assert.Equal(0f, range.Min);
        Assert.InRange(range.Max, 9f, 10f);
    }

    [Fact]
    public void Entropy_clips_gaussian_outliers_but_keeps_the_bulk()
    {
        var random = new Random(6);
        var values = Enumerable.Range(0, 200_000).Select(_ => (float)Gaussian(random)).Concat([60f, -60f, 55f]).ToArray();

        var range = RangeEstimators.Entropy(Histogram(values));

        Assert.InRange(range.Max, 2.5f, 12f);   // the bulk (|x| < 4.5σ) fits, the ±60 outliers do not
        Assert.InRange(range.Min, -12f, -2.5f);
        Assert.True(Math.Abs(range.Max + range.Min) < 0.5, "windows are centred on zero");
    }

    [Fact]
    public void Entropy_of_a_non_negative_tensor_starts_at_zero()
    {
        var random = new Random(7);
        var values = Enumerable.Range(0, 100_000).Select(_ => (float)Math.Abs(Gaussian(random))).Concat([80f]).ToArray();

        var range = RangeEstimators.Entropy(Histogram(values));

        Assert.Equal(0f, range.Min, 0.01f);
        Assert.InRange(range.Max, 2f, 20f);
    }

    [Fact]
    public void Entropy_keeps_the_full_range_of_a_tensor_with_too_few_values()
    {
        var random = new Random(8);
        var values = Enumerable.Range(0, 2_000).Select(_ => (float)Gaussian(random)).Concat([40f]).ToArray();

        Assert.Equal(40f, RangeEstimators.Entropy(Histogram(values)).Max);
    }

    private static double Gaussian(Random random) =>
        Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble());

    private static Histogram Histogram(IEnumerable<float> values)
    {
        var h = new Histogram();
        h.Add(values.ToArray());
        return h;
    }
}
