using Quantize.Onnx.Tuning;

namespace Quantize.Onnx.Tests.Tuning;

public sealed class SetChoiceTests
{
    [Fact]
    public void With_both_margins_available_the_cheapest_such_set_ships()
    {
        // (accuracy margin, speed-up, float cost); minimum speed-up 2x.
        (double, double, double)[] sets = [(0.30, 2.30, 50), (0.12, 2.25, 20), (0.50, 2.01, 10), (0.05, 2.60, 5)];

        var (index, both) = SetChoice.Choose(sets, 2);

        Assert.True(both);
        Assert.Equal(1, index); // sets 2 and 3 are cheaper but lack the speed or the accuracy margin
    }

    [Fact]
    public void Without_a_set_with_both_margins_the_best_balanced_one_ships_not_the_most_accurate()
    {
        // waifu2x, drop <= 1 dB at >= 2x: {0,1,2,6} 0.91 dB at 2.39x against {0,1,2,3,6} 0.70 dB at 2.02x.
        (double, double, double)[] sets = [(0.30, 2.02, 68_832), (0.09, 2.39, 31_968), (0.02, 2.45, 28_512)];

        var (index, both) = SetChoice.Choose(sets, 2);

        Assert.False(both);
        Assert.Equal(1, index);
    }

    [Fact]
    public void Without_a_minimum_speedup_only_the_accuracy_margin_counts()
    {
        (double, double, double)[] sets = [(0.05, 1.1, 5), (0.08, 0.9, 9), (0.20, 1.0, 30), (0.15, 3.0, 20)];

        Assert.Equal((3, true), SetChoice.Choose(sets, null)); // the cheapest of the two with the accuracy margin
        Assert.Equal((1, false), SetChoice.Choose(sets.Take(2).ToList(), null)); // none has it: the best margin
    }
}
