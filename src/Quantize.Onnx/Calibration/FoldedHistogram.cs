namespace Quantize.Onnx.Calibration;

/// <summary>A histogram with the values beyond the saturation bounds folded onto the bounds' bins.</summary>
internal sealed class FoldedHistogram
{
    private readonly Histogram _h;

    public FoldedHistogram(Histogram h, double below, double above)
    {
        _h = h;
        Counts = new double[h.Bins];
        if (h.Count == 0)
        {
            Empty = true;
            Range = new TensorRange(0, 0);
            return;
        }

        Min = Math.Clamp(h.Min, below, Math.Max(below, above));
        Max = Math.Clamp(h.Max, Min, above);
        First = h.BinOf(Min);
        Last = h.BinOf(Max);
        for (var i = 0; i < h.Bins; i++)
        {
            Counts[Math.Clamp(i, First, Last)] += h[i];
            Total += h[i];
            if (h[i] != 0 && h.Upper(i) <= below)
            {
                LowSpike += h[i];
            }
            else if (h[i] != 0 && h.Lower(i) >= above)
            {
                HighSpike += h[i];
            }
        }

        Range = new TensorRange((float)Min, (float)Max);
    }

    public double[] Counts { get; }

    public bool Empty { get; }

    public int First { get; }

    public int Last { get; }

    public double Min { get; }

    public double Max { get; }

    public double Total { get; }

    /// <summary>Values folded onto <see cref="Min"/> (beyond the lower saturation bound; they sit exactly there).</summary>
    public double LowSpike { get; }

    /// <summary>Values folded onto <see cref="Max"/>.</summary>
    public double HighSpike { get; }

    public TensorRange Range { get; }

    /// <summary>The bin whose lower edge is 0 (may lie just outside [First, Last + 1]).</summary>
    public int ZeroBin => Math.Clamp(_h.BinOf(0) + (_h.Lower(_h.BinOf(0)) < 0 ? 1 : 0), First, Last + 1);

    public double Lower(int bin) => bin <= First ? Min : _h.Lower(bin);

    public double Upper(int bin) => bin >= Last ? Max : _h.Upper(bin);

    public double Center(int bin) => Math.Clamp(_h.Center(bin), Min, Max);

    public TensorRange Window(int low, int high) => new((float)Lower(low), (float)Upper(high));

    /// <summary>Prefix sums of count·g(centre); index i holds bins [0, i). <paramref name="withoutSpikes"/>: leave out the folded values.</summary>
    public double[] Prefix(Func<double, double> g, out double total, bool withoutSpikes = false)
    {
        var prefix = new double[Counts.Length + 1];
        for (var i = 0; i < Counts.Length; i++)
        {
            var count = Counts[i] - (withoutSpikes && i == First ? LowSpike : 0) - (withoutSpikes && i == Last ? HighSpike : 0);
            prefix[i + 1] = prefix[i] + (count <= 0 ? 0 : count * g(Center(i)));
        }

        total = prefix[^1];
        return prefix;
    }
}
