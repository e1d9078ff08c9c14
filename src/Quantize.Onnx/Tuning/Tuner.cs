using System.Globalization;
using Quantize.Onnx.Quantization;
using Quantize.Onnx.Validation;

namespace Quantize.Onnx.Tuning;

/// <summary>What a search found: the winning candidate and its validation (both null when nothing passed), and its report.</summary>
internal sealed record TuningOutcome(Candidate? Candidate, ValidationReport? Validation, TuningReport Report);

/// <summary>
/// Searches for a configuration that passes the accuracy gate when the plain one does not, in order of
/// cost: first whole-model choices that keep every node quantized (<see cref="WholeModelVariants"/>), then units kept
/// in float. Float candidates are quantized units (an anchor such as Conv with the activation that only it feeds, or
/// another quantized compute node), each with its measured own damage and its multiply-accumulates
/// (<see cref="UnitRanking"/>). With a minimum speed-up a <see cref="SpeedModel"/> keeps the search within it. Up to
/// <see cref="FloatSetFrontier.MaxUnits"/> units the Pareto frontier is searched, beyond that prefixes of the ranking
/// (<see cref="FloatSetSearch"/>). The result is the cheapest passing set with a margin (<see cref="SetChoice"/>).
/// </summary>
internal sealed class Tuner(ITuningSource source, QuantizationOptions baseOptions, TuningOptions tuning)
{
    /// <summary>
    /// A set should pass with this much room, as a share of the threshold (at least 1): the validation metric is a mean
    /// over few samples (waifu2x's 32-sample PSNR moves by ±0.5 dB), so a set that passes by a hair may not pass on
    /// other data. drop:psnr&lt;=1 → 0.9 dB; sqnr&gt;=20 → 22 dB. Preferred, not required.
    /// </summary>
    internal const double PreferredMargin = 0.1;

    /// <summary>Share of the plain configuration's damage a whole-model variant must remove to become the base of the float search.</summary>
    internal const double MinVariantGain = 0.1;

    /// <summary>The speed budget first asks this much more than the minimum speed-up (predictions and 5-run timings are noisy).</summary>
    internal const double SpeedMargin = 0.1;

    private readonly AttemptLog _log = new(source, tuning, baseOptions.Validation?.MinSpeedup);

    public TuningOutcome Search(Candidate plain, ValidationReport plainValidation)
    {
        _log.Start(plain, plainValidation);
        var (best, bestValidation) = (plain, plainValidation);
        var bestMargin = CheckScores.Margin(plainValidation);

        // 1. Whole-model choices, cheapest first (no recalibration, then one pass per method).
        foreach (var (step, options) in WholeModelVariants.Of(baseOptions, source.HasEqualizationPairs, source.PerChannelPossible))
        {
            if (_log.OutOfBudget)
            {
                break;
            }

            var (candidate, validation) = _log.Try(step, options, []);
            if (validation.Passed)
            {
                return Done(candidate, validation, [], $"plain quantization failed {FailedChecks(plainValidation)}; {step} passes every check with every node quantized");
            }

            // A variant becomes the base of the float search only when it clearly beats the plain configuration: a
            // smaller gain with every node quantized does not carry over to the float sets (waifu2x: percentile 99.999
            // beat MinMax by 0.007 dB fully quantized, then lost 0.1–0.2 dB on every float set).
            if (CheckScores.Margin(validation) > bestMargin && CheckScores.Damage(validation) <= (1 - MinVariantGain) * CheckScores.Damage(plainValidation))
            {
                (best, bestValidation, bestMargin) = (candidate, validation, CheckScores.Margin(validation));
            }
        }

        // 2. Float units on top of the best whole-model configuration, within the speed budget when there is one.
        var recipe = best.Options;
        var units = source.FloatUnits(best);
        _log.Costs = source.NodeCosts(best);
        var (ranked, damage) = UnitRanking.Rank(source, _log, recipe, units, best, bestValidation);
        if (ranked.Count == 0 || _log.OutOfBudget)
        {
            return Failed(best, bestValidation, ranked.Count == 0 ? "the model has no quantized unit to keep float" : "the budget ran out while measuring sensitivities");
        }

        var min = recipe.Validation?.MinSpeedup;
        // The configuration the units are added to, timed once: the all-INT8 end of the speed model.
        _log.Speed = min is null ? null : new SpeedModel(source.Speedup(best, AttemptLog.AttemptLatencyRuns * 2), ranked.Sum(_log.Cost));
        var search = new FloatSetSearch(_log, recipe, ranked, min);
        var outcome = ranked.Count <= FloatSetFrontier.MaxUnits && ranked.All(damage.ContainsKey) ? search.Frontier(damage) : search.Prefix();
        if (outcome.How is not { } how)
        {
            return Failed(best, bestValidation, outcome.WhyNot);
        }

        return Choose(plainValidation, recipe, how, min);
    }

    /// <summary>The float set that ships, among those that passed and meet the minimum speed-up, and the sentence saying why.</summary>
    private TuningOutcome Choose(ValidationReport plainValidation, QuantizationOptions recipe, string how, double? min)
    {
        var eligible = _log.Passing.Where(p => min is not double m || p.Speedup >= m).ToList();
        if (eligible.Count == 0)
        {
            var fastest = _log.Passing.OrderByDescending(p => p.Speedup).First();
            return Failed(fastest.Candidate, fastest.Validation, string.Create(CultureInfo.InvariantCulture,
                $"the passing float sets are too slow: the fastest ({string.Join(", ", fastest.Nodes)}) leaves INT8 only {fastest.Speedup:F2}x as fast as FP32, below the minimum speed-up {min:0.##}x"));
        }

        var (index, bothMargins) = SetChoice.Choose(eligible.Select(p => (CheckScores.Margin(p.Validation), p.Speedup, _log.FloatCost(p.Nodes))).ToList(), min);
        var pick = eligible[index];
        var marginNote = bothMargins
            ? string.Create(CultureInfo.InvariantCulture, $"the cheapest set that passes with a margin of at least {PreferredMargin:0.##} of the threshold{(min is null ? "" : " and of the minimum speed-up")}")
            : min is double floor
                ? string.Create(CultureInfo.InvariantCulture,
                    $"no set passed with both preferred margins, so the one with the best balance of them (accuracy margin {CheckScores.Margin(pick.Validation):0.###} of the threshold, {(pick.Speedup / floor) - 1:P0} above the minimum speed-up)")
                : "no set passed with the preferred margin, so the one with the best margin";
        var speedNote = min is double need ? string.Create(CultureInfo.InvariantCulture, $", {pick.Speedup:F2}x as fast as FP32 (minimum {need:0.##}x)") : "";
        return Done(pick.Candidate, pick.Validation, pick.Nodes,
            $"plain quantization failed {FailedChecks(plainValidation)}; keeping {pick.Nodes.Count} node(s) float ({string.Join(", ", pick.Nodes)}){speedNote}: " +
            $"{how}, {marginNote}{(recipe == baseOptions ? "" : ", with " + Describe(recipe))}");
    }

    private TuningOutcome Done(Candidate candidate, ValidationReport validation, IReadOnlyList<string> floatNodes, string why) =>
        new(candidate, validation, Report(candidate.Options, floatNodes, succeeded: true, why));

    /// <param name="best">The best configuration tried (reported as chosen) and its validation, named in the reason when it fails.</param>
    private TuningOutcome Failed(Candidate best, ValidationReport validation, string reason) =>
        new(null, null, Report(best.Options, [], succeeded: false,
            $"no configuration passed within {_log.Attempts.Count} attempt(s): {reason}{(validation.Passed ? "" : $" (best: {FailedChecks(validation)})")}" +
            (baseOptions.UInt8Outputs ? "; with uint8 outputs the layers writing the outputs stay INT8 (their bytes are what ships)" : "")));

    private TuningReport Report(QuantizationOptions chosen, IReadOnlyList<string> floatNodes, bool succeeded, string why) => new()
    {
        Source = "searched",
        Succeeded = succeeded,
        Attempts = _log.Attempts,
        Chosen = chosen.ToSettings(),
        FloatNodes = floatNodes,
        Why = why,
        LockFile = tuning.LockFile,
        Elapsed = _log.Elapsed,
    };

    private static string FailedChecks(ValidationReport report) =>
        string.Join("; ", report.Checks.Where(c => !c.Passed).Select(c => c.Describe()).DefaultIfEmpty("no check"));

    private string Describe(QuantizationOptions recipe)
    {
        var before = baseOptions.ToSettings();
        return string.Join(", ", recipe.ToSettings().Where(kv => kv.Key != "exclude-nodes" && before.GetValueOrDefault(kv.Key) != kv.Value)
            .Select(kv => string.Create(CultureInfo.InvariantCulture, $"{kv.Key}={kv.Value}")));
    }
}
