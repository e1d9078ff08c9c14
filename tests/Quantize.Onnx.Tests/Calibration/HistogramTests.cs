using Quantize.Onnx.Calibration;

namespace Quantize.Onnx.Tests.Calibration;

/// <summary>The streaming histogram: exact counts, power-of-two bins, exact re-binning when later samples exceed the range.</summary>
public sealed class HistogramTests
{
    [Fact]
    public void Counts_every_finite_value_once_and_keeps_the_exact_extremes()
    {
        var h = new Histogram(64);
        h.Add([1f, 2f, float.NaN, 3f, float.PositiveInfinity, -0.5f]);

        Assert.Equal(4, h.Count);
        Assert.Equal(-0.5f, h.Min);
        Assert.Equal(3f, h.Max);
        Assert.Equal(4, Enumerable.Range(0, h.Bins).Sum(i => h[i]));
        Assert.Equal(0, Math.Log2(h.Width) % 1); // a power of two
        Assert.Equal(0.0, h.Lower(h.BinOf(0)));  // 0 is a bin edge
    }

    [Fact]
    public void A_later_sample_beyond_the_range_widens_the_bins_and_keeps_every_count()
    {
        var h = new Histogram(128);
        h.Add(Values(0, 1, 1000, seed: 1));
        var narrow = h.Width;

        h.Add(Values(-50, 200, 1000, seed: 2)); // 200× wider

        Assert.True(h.Width >= narrow * 128, $"width {h.Width} after {narrow}");
        Assert.Equal(2000, h.Count);
        Assert.Equal(2000, Enumerable.Range(0, h.Bins).Sum(i => h[i]));
        Assert.True(h.Lower(0) <= h.Min && h.Upper(h.Bins - 1) >= h.Max);
    }

    [Fact]
    public void Streaming_samples_of_growing_range_gives_the_same_bins_as_all_values_at_once()
    {
        var samples = new[] { Values(-1, 1, 5000, 3), Values(-3, 2, 5000, 4), Values(-0.5, 40, 5000, 5), Values(-90, 10, 5000, 6) };
        var streamed = new Histogram(256);
        foreach (var sample in samples)
        {
            streamed.Add(sample);
        }

        var once = new Histogram(256);
        once.Add(samples.SelectMany(s => s).ToArray());

        Assert.Equal(once.Width, streamed.Width);
        Assert.Equal(once.Lower(0), streamed.Lower(0));
        Assert.Equal(Enumerable.Range(0, 256).Select(i => once[i]), Enumerable.Range(0, 256).Select(i => streamed[i]));
    }

    [Fact]
    public void Every_value_lands_in_the_bin_whose_edges_hold_it()
    {
        var values = Values(-7, 13, 20000, 9);
        var h = new Histogram(512);
        h.Add(values.Take(10).ToArray()); // a narrow first sample forces re-binning below
        h.Add(values.Skip(10).ToArray());

        var expected = new long[h.Bins];
        foreach (var v in values)
        {
            var bin = Enumerable.Range(0, h.Bins).Single(i => h.Lower(i) <= v && v < h.Upper(i));
            expected[bin]++;
        }

        Assert.Equal(expected, Enumerable.Range(0, h.Bins).Select(i => h[i]));
    }

    [Fact]
    public void A_constant_first_sample_still_adapts_to_later_values()
    {
        var h = new Histogram(64);
        h.Add(new float[100]); // all zeros
        h.Add([5f, -5f]);

        Assert.Equal(102, h.Count);
        Assert.Equal(100, h[h.BinOf(0)]);
        Assert.Equal(-5f, h.Min);
        Assert.Equal(5f, h.Max);
    }

    internal static float[] Values(double min, double max, int count, int seed)
    {
        var random = new Random(seed);
        var values = new float[count];
        for (var i = 0; i < count; i++)
        {
            values[i] = (float)(min + (random.NextDouble() * (max - min)));
        }

        values[0] = (float)min;
        values[^1] = (float)max;
        return values;
    }
}
