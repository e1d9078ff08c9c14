namespace Quantize.Onnx.Tuning;

/// <summary>
/// Which of the float sets that passed the checks (and meet the minimum speed-up) ships: one with margin on both
/// accuracy and speed. Among the sets with the preferred accuracy margin (<see cref="Tuner.PreferredMargin"/> of the
/// threshold) and speed margin (<see cref="Tuner.SpeedMargin"/> above the minimum) the cheapest; else the set whose
/// smaller margin, each as a share of its preferred one, is largest. waifu2x: 0.91 dB at 2.39x (0.9 and 2.0 of the
/// preferred margins) ships rather than 0.70 dB at 2.02x (3.0 and 0.1), which a busy machine times below 2x.
/// </summary>
internal static class SetChoice
{
    /// <param name="sets">Accuracy margin (a share of the threshold, <see cref="Validation.CheckScores.Margin"/>), measured speed-up and float cost of each set.</param>
    /// <returns>The index of the set to ship, and whether it has both preferred margins.</returns>
    public static (int Index, bool BothMargins) Choose(IReadOnlyList<(double Margin, double Speedup, double Cost)> sets, double? minSpeedup)
    {
        if (sets.Count == 0)
        {
            throw new ArgumentException("No set to choose from.", nameof(sets));
        }

        double SpeedRoom(int i) => minSpeedup is double m ? (sets[i].Speedup / m) - 1 : double.PositiveInfinity;
        var indices = Enumerable.Range(0, sets.Count).ToList();
        var both = indices.Where(i => sets[i].Margin >= Tuner.PreferredMargin && SpeedRoom(i) >= Tuner.SpeedMargin).ToList();
        return both.Count > 0
            ? (both.OrderBy(i => sets[i].Cost).First(), true)
            : (indices.OrderByDescending(i => Math.Min(sets[i].Margin / Tuner.PreferredMargin, SpeedRoom(i) / Tuner.SpeedMargin)).First(), false);
    }
}
