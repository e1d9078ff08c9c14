namespace Quantize.Onnx.Tuning;

/// <summary>
/// The float sets worth validating when there are few units: every subset within the speed budget, keeping only
/// those no other subset beats on both predicted damage and cost (the Pareto frontier), ordered from the most
/// accurate (most float compute) to the cheapest. Predicted damage is the sum of the quantized units' own damages
/// (noise powers add); cost is the float units' multiply-accumulates. Along the frontier damage rises while cost
/// falls, so passing the checks is (roughly) monotone in the position and a binary search finds the cheapest set
/// that still passes. A cheap set that leaves out an expensive unit ranked early is on the frontier too, unlike a
/// prefix of the ranking.
/// </summary>
internal static class FloatSetFrontier
{
    /// <summary>Enumerating subsets is exhaustive up to this many units (1,023 subsets).</summary>
    public const int MaxUnits = 10;

    /// <param name="damage">Each unit's own damage (measured with only it quantized).</param>
    /// <param name="cost">Each unit's multiply-accumulates.</param>
    /// <param name="withinBudget">Whether a set of this float cost is predicted fast enough.</param>
    /// <returns>Frontier sets as unit indices, damage ascending and cost descending.</returns>
    public static List<int[]> Build(IReadOnlyList<double> damage, IReadOnlyList<double> cost, Func<double, bool> withinBudget)
    {
        if (damage.Count != cost.Count || damage.Count is 0 or > MaxUnits)
        {
            throw new ArgumentException($"Between 1 and {MaxUnits} units, with one damage and one cost each.", nameof(damage));
        }

        var n = damage.Count;
        var totalDamage = damage.Sum();
        var sets = new List<(int Mask, double Damage, double Cost)>();
        for (var mask = 1; mask < 1 << n; mask++)
        {
            double floatCost = 0, removed = 0;
            for (var i = 0; i < n; i++)
            {
                if ((mask >> i & 1) == 1)
                {
                    floatCost += cost[i];
                    removed += damage[i];
                }
            }

            if (withinBudget(floatCost))
            {
                sets.Add((mask, Math.Max(0, totalDamage - removed), floatCost));
            }
        }

        // Damage ascending (ties: cheaper first); keep a set only when it is cheaper than every more accurate one.
        var frontier = new List<int[]>();
        var cheapest = double.PositiveInfinity;
        foreach (var (mask, _, floatCost) in sets.OrderBy(s => s.Damage).ThenBy(s => s.Cost).ThenBy(s => s.Mask))
        {
            if (floatCost < cheapest)
            {
                cheapest = floatCost;
                frontier.Add([.. Enumerable.Range(0, n).Where(i => (mask >> i & 1) == 1)]);
            }
        }

        return frontier;
    }
}
