namespace Quantize.Onnx.Calibration;

/// <summary>
/// Streaming histogram of one tensor's values over all calibration samples, in bounded memory.
/// Bins have a power-of-two width and edges on multiples of it (so 0 is always an edge). When a later
/// sample exceeds the covered range, the width doubles and pairs of bins merge until everything
/// fits: exact re-binning (every old bin lies inside one new bin), no interpolation, and the result
/// does not depend on how the values were split into samples beyond the final width.
/// </summary>
public sealed class Histogram
{
    public const int DefaultBins = 4096;

    private readonly long[] _counts;
    private long _first; // absolute index (value / width) of bin 0
    private double _width;

    public Histogram(int bins = DefaultBins)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(bins, 2);
        _counts = new long[bins];
    }

    /// <summary>Number of bins.</summary>
    public int Bins => _counts.Length;

    /// <summary>Values counted so far (non-finite values are skipped).</summary>
    public long Count { get; private set; }

    /// <summary>Exact smallest value seen.</summary>
    public float Min { get; private set; } = float.PositiveInfinity;

    /// <summary>Exact largest value seen.</summary>
    public float Max { get; private set; } = float.NegativeInfinity;

    /// <summary>Bin width (a power of two); 0 before the first value.</summary>
    public double Width => _width;

    public long this[int bin] => _counts[bin];

    /// <summary>Lower edge of bin <paramref name="bin"/>.</summary>
    public double Lower(int bin) => (_first + bin) * _width;

    /// <summary>Upper edge of bin <paramref name="bin"/>.</summary>
    public double Upper(int bin) => (_first + bin + 1) * _width;

    /// <summary>Centre of bin <paramref name="bin"/>.</summary>
    public double Center(int bin) => (_first + bin + 0.5) * _width;

    /// <summary>Index of the bin holding <paramref name="value"/>, clamped to the covered bins.</summary>
    public int BinOf(double value) => (int)Math.Clamp((long)Math.Floor(value / _width) - _first, 0, _counts.Length - 1);

    public void Add(ReadOnlySpan<float> values)
    {
        float min = float.PositiveInfinity, max = float.NegativeInfinity;
        foreach (var v in values)
        {
            if (!float.IsFinite(v))
            {
                continue;
            }

            if (v < min)
            {
                min = v;
            }

            if (v > max)
            {
                max = v;
            }
        }

        if (min > max)
        {
            return; // empty or nothing finite
        }

        Cover(Math.Min(min, Min), Math.Max(max, Max));
        var inverse = 1.0 / _width;
        var counts = _counts;
        var last = counts.Length - 1;
        long added = 0;
        foreach (var v in values)
        {
            if (!float.IsFinite(v))
            {
                continue;
            }

            var bin = (long)Math.Floor(v * inverse) - _first;
            counts[bin < 0 ? 0 : bin > last ? last : bin]++;
            added++;
        }

        Count += added;
        Min = Math.Min(Min, min);
        Max = Math.Max(Max, max);
    }

    /// <summary>Makes the bins cover [<paramref name="min"/>, <paramref name="max"/>], doubling the width as needed.</summary>
    private void Cover(float min, float max)
    {
        if (_width == 0)
        {
            _width = InitialWidth(min, max);
            while (Span(min, max, _width) > _counts.Length)
            {
                _width *= 2;
            }

            _first = (long)Math.Floor(min / _width);
            return;
        }

        var width = _width;
        while (Span(min, max, width) > _counts.Length)
        {
            width *= 2;
        }

        if (width != _width || (long)Math.Floor(min / width) != _first)
        {
            Rebin(width, min);
        }
    }

    /// <summary>Moves the counts onto bins of <paramref name="width"/> (a power-of-two multiple of the current one, so old bins nest) starting at <paramref name="min"/>'s bin.</summary>
    private void Rebin(double width, float min)
    {
        var shift = (int)Math.Round(Math.Log2(width / _width));
        var first = (long)Math.Floor(min / width); // min is at most the smallest value counted so far
        var moved = new long[_counts.Length];
        for (var i = 0; i < _counts.Length; i++)
        {
            if (_counts[i] != 0)
            {
                moved[(int)Math.Clamp(((_first + i) >> shift) - first, 0, moved.Length - 1)] += _counts[i];
            }
        }

        moved.CopyTo(_counts, 0);
        _width = width;
        _first = first;
    }

    private static long Span(float min, float max, double width) => (long)Math.Floor(max / width) - (long)Math.Floor(min / width) + 1;

    /// <summary>The smallest power of two that spreads the first range over all bins (tiny for a constant tensor).</summary>
    private double InitialWidth(float min, float max)
    {
        var extent = (double)max - min;
        if (extent <= 0)
        {
            extent = Math.Max(Math.Abs((double)min), 1e-6) * 1e-3;
        }

        return Math.Pow(2, Math.Floor(Math.Log2(extent / _counts.Length)));
    }
}
