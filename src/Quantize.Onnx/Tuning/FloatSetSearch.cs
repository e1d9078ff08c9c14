using System.Globalization;

namespace Quantize.Onnx.Tuning;

/// <summary>How a float-set search went: how the sets were chosen, or (<see cref="How"/> null) why nothing passed.</summary>
internal sealed record SetSearchOutcome(string? How, string WhyNot);

/// <summary>
/// The float-set searches over ranked units: with few units the Pareto frontier of (predicted damage, cost) is
/// binary-searched (<see cref="Frontier"/>); with many, the shortest passing prefix of the ranking is pruned and
/// swapped (<see cref="Prefix"/>). Passing sets land in the <see cref="AttemptLog"/>, where the result is chosen.
/// </summary>
internal sealed class FloatSetSearch(AttemptLog log, QuantizationOptions recipe, List<string[]> ranked, double? minSpeedup)
{
    /// <summary>
    /// Few units: validate the Pareto frontier of (predicted damage, float cost) within the speed budget, from its most
    /// accurate set, then binary-search for the cheapest set that passes with the preferred margin. The budget is first
    /// the minimum speed-up plus a margin, then, when nothing passes within it, the minimum less half that margin (the
    /// prediction errs by ~5 %; the measured speed-up decides in the end).
    /// </summary>
    public SetSearchOutcome Frontier(Dictionary<string[], double> damage)
    {
        double?[] budgets = minSpeedup is double m ? [m * (1 + Tuner.SpeedMargin), m * (1 - (Tuner.SpeedMargin / 2))] : [null];
        var costs = ranked.Select(log.Cost).ToList();
        var damages = ranked.Select(u => damage[u]).ToList();
        List<int[]>? previous = null;
        foreach (var budget in budgets)
        {
            var frontier = FloatSetFrontier.Build(damages, costs, c => budget is not double b || log.Speed!.Predict(c) >= b);
            if (frontier.Count == 0 || (previous is not null && frontier[0].SequenceEqual(previous[0])))
            {
                continue;
            }

            previous = frontier;
            var first = log.TrySet($"float: the most accurate of {frontier.Count} frontier set(s){Within(budget)}", recipe, Nodes(frontier[0]));
            if (!first.Passed || Validation.CheckScores.Margin(first) < Tuner.PreferredMargin || log.OutOfBudget)
            {
                continue;
            }

            // Binary search for the last frontier set (cheapest) that passes with the preferred margin; index 0 does.
            int lo = 0, hi = frontier.Count - 1;
            while (lo < hi && !log.OutOfBudget)
            {
                var mid = (lo + hi + 1) / 2;
                var v = log.TrySet($"float: frontier set {mid + 1} of {frontier.Count}{Within(budget)}", recipe, Nodes(frontier[mid]));
                if (v.Passed && Validation.CheckScores.Margin(v) >= Tuner.PreferredMargin)
                {
                    lo = mid;
                }
                else
                {
                    hi = mid - 1;
                }
            }

            break;
        }

        if (log.Passing.Count == 0)
        {
            return new SetSearchOutcome(null, previous is null
                ? string.Create(CultureInfo.InvariantCulture, $"no float set is predicted to reach the minimum speed-up {minSpeedup:0.##}x (every unit INT8: {log.Speed?.Int8Speedup:F2}x)")
                : minSpeedup is null ? $"even with all {ranked.Count} quantized units float the checks fail" : "even the most accurate float set within the speed budget fails");
        }

        return new SetSearchOutcome($"the sets of the {ranked.Count} units cheapest for their predicted damage were searched{(minSpeedup is null ? "" : " within the speed budget")}", "");

        List<string> Nodes(int[] set) => set.SelectMany(i => ranked[i]).ToList();
    }

    /// <summary>
    /// Many units: the shortest prefix of the ranking that passes (binary search), no longer than the speed budget
    /// allows, pruned of members it does not need (most expensive first) and with expensive members swapped for cheaper
    /// units outside it.
    /// </summary>
    public SetSearchOutcome Prefix()
    {
        // The longest prefix predicted fast enough.
        var longest = ranked.Count;
        while (longest > 0 && minSpeedup is double m && log.Speed!.Predict(ranked.Take(longest).Sum(log.Cost)) < m)
        {
            longest--;
        }

        if (longest == 0)
        {
            return new SetSearchOutcome(null, string.Create(CultureInfo.InvariantCulture,
                $"no float unit is predicted to keep the minimum speed-up {minSpeedup:0.##}x (every unit INT8: {log.Speed?.Int8Speedup:F2}x)"));
        }

        var all = ranked.Take(longest).SelectMany(u => u).ToList();
        var top = log.TrySet(longest == ranked.Count ? $"float: all {ranked.Count} ranked units" : $"float: the {longest} most sensitive units the speed budget allows", recipe, all);
        if (!top.Passed)
        {
            return new SetSearchOutcome(null, longest == ranked.Count
                ? $"even with all {ranked.Count} quantized units float the checks fail"
                : $"even the {longest} most sensitive units float (all the speed budget allows) fail");
        }

        // Binary search for the shortest passing prefix (the margin grows, roughly, with the prefix).
        int lo = 1, hi = longest;
        while (lo < hi && !log.OutOfBudget)
        {
            var mid = (lo + hi) / 2;
            if (log.TrySet($"float: {mid} most sensitive unit(s)", recipe, ranked.Take(mid).SelectMany(u => u).ToList()).Passed)
            {
                hi = mid;
            }
            else
            {
                lo = mid + 1;
            }
        }

        var kept = Prune(ranked.Take(hi).ToList());
        Swap(kept);
        return new SetSearchOutcome("prefixes of the units ranked by damage per compute (binary search), pruned and swapped for cheaper units", "");
    }

    private static string Within(double? budget) =>
        budget is double b ? string.Create(CultureInfo.InvariantCulture, $" predicted >= {b:0.##}x") : "";

    /// <summary>Drops units the passing set does not need, the most expensive first (float compute is what costs speed).</summary>
    private List<string[]> Prune(List<string[]> kept)
    {
        foreach (var unit in kept.OrderByDescending(log.Cost).ToList())
        {
            if (kept.Count <= 1 || log.OutOfBudget)
            {
                break;
            }

            var without = kept.Where(u => u != unit).SelectMany(u => u).ToList();
            if (log.TrySet($"float without {string.Join("+", unit)}", recipe, without).Passed)
            {
                kept.Remove(unit);
            }
        }

        return kept;
    }

    /// <summary>
    /// An expensive member may be replaceable by a cheaper unit outside the set (the ranking is per compute, so a
    /// costly unit can enter the prefix before a cheap one that would do).
    /// </summary>
    private void Swap(List<string[]> kept)
    {
        foreach (var unit in kept.OrderByDescending(log.Cost).ToList())
        {
            foreach (var cheaper in ranked.Except(kept).Where(u => log.Cost(u) < log.Cost(unit)).OrderBy(log.Cost).Take(2))
            {
                if (log.OutOfBudget)
                {
                    break;
                }

                var swapped = kept.Select(u => u == unit ? cheaper : u).ToList();
                if (log.TrySet($"float {string.Join("+", cheaper)} instead of {string.Join("+", unit)}", recipe, swapped.SelectMany(u => u).ToList()).Passed)
                {
                    kept.Clear();
                    kept.AddRange(swapped);
                    break;
                }
            }
        }
    }
}
