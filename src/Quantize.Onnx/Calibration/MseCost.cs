namespace Quantize.Onnx.Calibration;

/// <summary>
/// O(1) MSE of a window from prefix sums of c, c·f, c·f² and c·f'² per consumer. Values folded onto a
/// saturation bound sit exactly on the grid's end when the window reaches the bound (no rounding
/// error), and cost (f(bound) − f(edge))² each when it does not.
/// </summary>
internal sealed class MseCost
{
    private readonly FoldedHistogram _f;
    private readonly IReadOnlyList<ConsumerResponse> _consumers;
    private readonly double[] _count;
    private readonly double[][] _value;
    private readonly double[][] _square;
    private readonly double[][] _slope;

    public MseCost(FoldedHistogram f, IReadOnlyList<ConsumerResponse> consumers)
    {
        _f = f;
        _consumers = consumers;
        _count = f.Prefix(_ => 1, out _, withoutSpikes: true);
        _value = consumers.Select(c => f.Prefix(c.Apply, out _, withoutSpikes: true)).ToArray();
        _square = consumers.Select(c => f.Prefix(x => c.Apply(x) * c.Apply(x), out _, withoutSpikes: true)).ToArray();
        _slope = consumers.Select(c => f.Prefix(x => c.Slope(x) * c.Slope(x), out _, withoutSpikes: true)).ToArray();
    }

    public double Of(int a, int b) => Of(a, b, _f.Lower(a), _f.Upper(b));

    /// <summary>Cost of grid [lo, hi] (widened to hold 0) with bins a..b inside, the rest clipped.</summary>
    public double Of(int a, int b, double lo, double hi)
    {
        var step = (Math.Max(hi, 0) - Math.Min(lo, 0)) / RangeEstimators.Steps;
        double cost = 0;
        for (var r = 0; r < _consumers.Count; r++)
        {
            cost += Sum(_slope[r], a, b + 1) * step * step / 12;
            cost += Clipped(r, _f.First, a, lo) + Clipped(r, b + 1, _f.Last + 1, hi);
            var f = _consumers[r].Apply;
            cost += lo > _f.Min ? _f.LowSpike * Math.Pow(f(_f.Min) - f(lo), 2) : 0;
            cost += hi < _f.Max ? _f.HighSpike * Math.Pow(f(_f.Max) - f(hi), 2) : 0;
        }

        return cost;
    }

    /// <summary>Σ c·(f(x) − f(bound))² over bins [from, to).</summary>
    private double Clipped(int r, int from, int to, double bound)
    {
        if (to <= from)
        {
            return 0;
        }

        var fb = _consumers[r].Apply(bound);
        return Math.Max(0, Sum(_square[r], from, to) - (2 * fb * Sum(_value[r], from, to)) + (fb * fb * Sum(_count, from, to)));
    }

    private static double Sum(double[] prefix, int from, int to) => prefix[to] - prefix[from];
}
