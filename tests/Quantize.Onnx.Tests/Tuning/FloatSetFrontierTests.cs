using Quantize.Onnx.Tuning;

namespace Quantize.Onnx.Tests.Tuning;

public sealed class FloatSetFrontierTests
{
    // waifu2x-like: seven units, MACs 96 … 16384, own damages in arbitrary units (the stem and head hurt most per MAC).
    private static readonly double[] Costs = [96, 1024, 2048, 4096, 8192, 16384, 384];
    private static readonly double[] Damages = [3, 5, 5, 2, 30, 8, 12];

    [Fact]
    public void The_frontier_runs_from_every_unit_float_to_the_cheapest_set_with_damage_rising_and_cost_falling()
    {
        var frontier = FloatSetFrontier.Build(Damages, Costs, _ => true);

        Assert.Equal([0, 1, 2, 3, 4, 5, 6], frontier[0]);
        Assert.Equal([0], frontier[^1]); // the cheapest single unit
        var damage = frontier.Select(Remaining).ToList();
        var cost = frontier.Select(Cost).ToList();
        Assert.All(Enumerable.Range(1, frontier.Count - 1), i =>
        {
            Assert.True(damage[i] >= damage[i - 1]);
            Assert.True(cost[i] < cost[i - 1]);
        });

        // Pareto: no subset at all is both cheaper and less damaging than a frontier set.
        foreach (var set in frontier)
        {
            for (var mask = 1; mask < 1 << Costs.Length; mask++)
            {
                var other = Enumerable.Range(0, Costs.Length).Where(i => (mask >> i & 1) == 1).ToArray();
                Assert.False(Cost(other) < Cost(set) && Remaining(other) < Remaining(set), $"{string.Join(",", other)} beats {string.Join(",", set)}");
            }
        }
    }

    [Fact]
    public void A_speed_budget_leaves_out_every_set_over_it_and_keeps_cheap_sets_that_are_no_prefix_of_the_ranking()
    {
        // A budget of 20 % of the MACs: unit 4 (25 %) and unit 5 (50 %) can never be float.
        var budget = 0.2 * Costs.Sum();
        var frontier = FloatSetFrontier.Build(Damages, Costs, c => c <= budget);

        Assert.All(frontier, set => Assert.True(Cost(set) <= budget));
        Assert.All(frontier, set => Assert.DoesNotContain(4, set));
        Assert.All(frontier, set => Assert.DoesNotContain(5, set));

        // By damage per MAC the ranking is 0, 6, 1, 4, 2, 5, 3: every prefix longer than three holds the forbidden unit 4.
        // The most accurate set within the budget, {0, 1, 2, 6}, is no prefix (unit 3 on top would exceed the budget).
        Assert.Equal([0, 1, 2, 6], frontier[0]);
        Assert.Contains(frontier, set => set.SequenceEqual([0, 6]));
    }

    [Fact]
    public void Nothing_within_the_budget_gives_an_empty_frontier()
    {
        Assert.Empty(FloatSetFrontier.Build(Damages, Costs, c => c < 50));
    }

    [Fact]
    public void More_units_than_the_frontier_enumerates_are_refused()
    {
        Assert.Throws<ArgumentException>(() => FloatSetFrontier.Build(new double[FloatSetFrontier.MaxUnits + 1], new double[FloatSetFrontier.MaxUnits + 1], _ => true));
    }

    [Fact]
    public void Damages_and_costs_of_different_counts_are_refused()
    {
        Assert.Throws<ArgumentException>(() => FloatSetFrontier.Build([1, 2], [1], _ => true));
    }

    [Fact]
    public void The_speed_model_runs_from_the_int8_speedup_to_fp32_with_the_float_share_of_the_MACs()
    {
        var model = new SpeedModel(3, 100);

        Assert.Equal(3, model.Predict(0), 6);
        Assert.Equal(1, model.Predict(100), 6);
        Assert.Equal(1 / ((1 / 3.0) + (0.25 * (2 / 3.0))), model.Predict(25), 6); // 2.0x
        Assert.True(model.Predict(10) > model.Predict(20));
        Assert.Equal(1, model.Predict(1000), 6); // clamped: never slower than FP32 by the model
    }

    private static double Cost(int[] set) => set.Sum(i => Costs[i]);

    private static double Remaining(int[] set) => Damages.Sum() - set.Sum(i => Damages[i]);
}
