using System.Diagnostics;
using System.Globalization;
using Quantize.Onnx.Model;
using Quantize.Onnx.Quantization;
using Quantize.Onnx.Reporting;
using Quantize.Onnx.Validation;

namespace Quantize.Onnx.Tuning;

/// <summary>
/// Searches for a configuration that passes the accuracy gate when the plain one does not, in order of
/// cost: first whole-model choices that keep every node quantized (equalization, bias correction,
/// per-tensor weights, calibration methods), then units kept in float. Float candidates are quantized units
/// (an anchor such as Conv with the activation that only it feeds, or another quantized compute node), each
/// with its measured own damage and its multiply-accumulates (<see cref="Rank"/>). With a minimum speed-up a
/// <see cref="SpeedModel"/> keeps the search within it. Up to <see cref="FloatSetFrontier.MaxUnits"/> units, the
/// Pareto frontier of (predicted damage, cost) is binary-searched (<see cref="SearchFrontier"/>); beyond, the
/// shortest passing prefix of the ranking is pruned and swapped (<see cref="SearchPrefix"/>). The result is the
/// cheapest passing set with a margin. Every candidate is built from the session's calibration (one pass per
/// calibration method).
/// </summary>
internal sealed class Tuner(QuantizeSession session, QuantizationOptions baseOptions, TuningOptions tuning)
{
    /// <summary>At most this many float candidates are measured one by one.</summary>
    private const int MeasuredUnits = 16;

    /// <summary>Timed runs per model for a passing attempt's speed-up (an indication; the shipped model gets the full measurement).</summary>
    private const int AttemptLatencyRuns = 5;

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

    private readonly List<TuningAttempt> _attempts = [];
    private readonly Dictionary<string, (Candidate, ValidationReport)> _tried = new(StringComparer.Ordinal);
    private readonly Stopwatch _clock = Stopwatch.StartNew();

    /// <summary>Float sets that passed, with their measured speed-up: the result is chosen from them.</summary>
    private readonly List<PassingSet> _passing = [];

    /// <summary>Predicts a float set's speed-up (null without a minimum speed-up).</summary>
    private SpeedModel? _speed;

    /// <summary>Why the float-set search found nothing.</summary>
    private string _why = "";

    /// <summary>Multiply-accumulates per node of the configuration the float units are chosen on (<see cref="Costs"/>; set once, it runs ORT shape inference).</summary>
    private Dictionary<string, double> _costs = [];

    /// <summary>The winning candidate and its validation (null when nothing passed), and the report of the search.</summary>
    public (Candidate? Candidate, ValidationReport? Validation, TuningReport Report) Search(Candidate plain, ValidationReport plainValidation)
    {
        Record("plain configuration", plain, plainValidation, []);
        _tried[Key(plain.Options)] = (plain, plainValidation);
        Candidate best = plain;
        ValidationReport bestValidation = plainValidation;
        var bestMargin = Margin(plainValidation);

        // 1. Whole-model choices, cheapest first (no recalibration, then one pass per method).
        foreach (var (step, options) in WholeModelVariants())
        {
            if (OutOfBudget())
            {
                break;
            }

            var (candidate, validation) = Try(step, options, []);
            if (validation.Passed)
            {
                return Done(candidate, validation, [], $"plain quantization failed {FailedChecks(plainValidation)}; {step} passes every check with every node quantized");
            }

            // A variant becomes the base of the float search only when it clearly beats the plain configuration: a
            // smaller gain with every node quantized does not carry over to the float sets (waifu2x: percentile 99.999
            // beat MinMax by 0.007 dB fully quantized, then lost 0.1–0.2 dB on every float set).
            if (Margin(validation) > bestMargin && Damage(validation) <= (1 - MinVariantGain) * Damage(plainValidation))
            {
                (best, bestValidation, bestMargin) = (candidate, validation, Margin(validation));
            }
        }

        // 2. Float units on top of the best whole-model configuration, within the speed budget when there is one.
        var recipe = best.Options;
        var units = FloatUnits(best);
        _costs = Costs(best);
        var (ranked, damage) = Rank(recipe, units, best, bestValidation);
        if (ranked.Count == 0 || OutOfBudget())
        {
            return Failed(best, bestValidation, ranked.Count == 0 ? "the model has no quantized unit to keep float" : "the budget ran out while measuring sensitivities");
        }

        var min = recipe.Validation?.MinSpeedup;
        // The configuration the units are added to, timed once: the all-INT8 end of the speed model.
        _speed = min is null ? null : new SpeedModel(Speedup(best, AttemptLatencyRuns * 2), ranked.Sum(Cost));
        var how = ranked.Count <= FloatSetFrontier.MaxUnits && ranked.All(damage.ContainsKey)
            ? SearchFrontier(recipe, ranked, damage, min)
            : SearchPrefix(recipe, ranked, min);
        if (how is null)
        {
            return Failed(best, bestValidation, _why);
        }

        var eligible = _passing.Where(p => min is not double m || p.Speedup >= m).ToList();
        if (eligible.Count == 0)
        {
            var fastest = _passing.OrderByDescending(p => p.Speedup).First();
            return Failed(fastest.Candidate, fastest.Validation, string.Create(CultureInfo.InvariantCulture,
                $"the passing float sets are too slow: the fastest ({string.Join(", ", fastest.Nodes)}) leaves INT8 only {fastest.Speedup:F2}x as fast as FP32, below the minimum speed-up {min:0.##}x"));
        }

        var (index, bothMargins) = SetChoice.Choose(eligible.Select(p => (Margin(p.Validation), p.Speedup, FloatCost(p.Nodes))).ToList(), min);
        var pick = eligible[index];
        var marginNote = bothMargins
            ? string.Create(CultureInfo.InvariantCulture, $"the cheapest set that passes with a margin of at least {PreferredMargin:0.##} of the threshold{(min is null ? "" : " and of the minimum speed-up")}")
            : min is double floor
                ? string.Create(CultureInfo.InvariantCulture,
                    $"no set passed with both preferred margins, so the one with the best balance of them (accuracy margin {Margin(pick.Validation):0.###} of the threshold, {(pick.Speedup / floor) - 1:P0} above the minimum speed-up)")
                : "no set passed with the preferred margin, so the one with the best margin";
        var speedNote = min is double need ? string.Create(CultureInfo.InvariantCulture, $", {pick.Speedup:F2}x as fast as FP32 (minimum {need:0.##}x)") : "";
        return Done(pick.Candidate, pick.Validation, pick.Nodes,
            $"plain quantization failed {FailedChecks(plainValidation)}; keeping {pick.Nodes.Count} node(s) float ({string.Join(", ", pick.Nodes)}){speedNote}: " +
            $"{how}, {marginNote}{(recipe == baseOptions ? "" : ", with " + Describe(recipe))}");
    }

    /// <summary>
    /// Few units: validate the Pareto frontier of (predicted damage, float cost) within the speed budget, from its most
    /// accurate set, then binary-search for the cheapest set that passes with the preferred margin. The budget is first
    /// the minimum speed-up plus a margin, then, when nothing passes within it, the minimum less half that margin (the
    /// prediction errs by ~5 %; the measured speed-up decides in the end).
    /// </summary>
    /// <returns>How the sets were chosen, or null (with <see cref="_why"/>) when nothing passed.</returns>
    private string? SearchFrontier(QuantizationOptions recipe, List<string[]> ranked, Dictionary<string[], double> damage, double? min)
    {
        double?[] budgets = min is double m ? [m * (1 + SpeedMargin), m * (1 - SpeedMargin / 2)] : [null];
        var costs = ranked.Select(Cost).ToList();
        var damages = ranked.Select(u => damage[u]).ToList();
        List<int[]>? previous = null;
        foreach (var budget in budgets)
        {
            var frontier = FloatSetFrontier.Build(damages, costs, c => budget is not double b || _speed!.Predict(c) >= b);
            if (frontier.Count == 0 || (previous is not null && frontier[0].SequenceEqual(previous[0])))
            {
                continue;
            }

            previous = frontier;
            var nodes = Nodes(frontier[0]);
            var first = TrySet($"float: the most accurate of {frontier.Count} frontier set(s){Within(budget)}", recipe, nodes);
            if (!first.Passed || Margin(first) < PreferredMargin || OutOfBudget())
            {
                continue;
            }

            // Binary search for the last frontier set (cheapest) that passes with the preferred margin; index 0 does.
            int lo = 0, hi = frontier.Count - 1;
            while (lo < hi && !OutOfBudget())
            {
                var mid = (lo + hi + 1) / 2;
                var v = TrySet($"float: frontier set {mid + 1} of {frontier.Count}{Within(budget)}", recipe, Nodes(frontier[mid]));
                if (v.Passed && Margin(v) >= PreferredMargin)
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

        if (_passing.Count == 0)
        {
            _why = previous is null
                ? string.Create(CultureInfo.InvariantCulture, $"no float set is predicted to reach the minimum speed-up {min:0.##}x (every unit INT8: {_speed?.Int8Speedup:F2}x)")
                : min is null ? $"even with all {ranked.Count} quantized units float the checks fail" : "even the most accurate float set within the speed budget fails";
            return null;
        }

        return $"the sets of the {ranked.Count} units cheapest for their predicted damage were searched{(min is null ? "" : " within the speed budget")}";

        List<string> Nodes(int[] set) => set.SelectMany(i => ranked[i]).ToList();
    }

    /// <summary>
    /// Many units: the shortest prefix of the ranking that passes (binary search), no longer than the speed budget
    /// allows, pruned of members it does not need (most expensive first) and with expensive members swapped for cheaper
    /// units outside it.
    /// </summary>
    private string? SearchPrefix(QuantizationOptions recipe, List<string[]> ranked, double? min)
    {
        // The longest prefix predicted fast enough.
        var longest = ranked.Count;
        while (longest > 0 && min is double m && _speed!.Predict(ranked.Take(longest).Sum(Cost)) < m)
        {
            longest--;
        }

        if (longest == 0)
        {
            _why = string.Create(CultureInfo.InvariantCulture, $"no float unit is predicted to keep the minimum speed-up {min:0.##}x (every unit INT8: {_speed?.Int8Speedup:F2}x)");
            return null;
        }

        var all = ranked.Take(longest).SelectMany(u => u).ToList();
        var top = TrySet(longest == ranked.Count ? $"float: all {ranked.Count} ranked units" : $"float: the {longest} most sensitive units the speed budget allows", recipe, all);
        if (!top.Passed)
        {
            _why = longest == ranked.Count ? $"even with all {ranked.Count} quantized units float the checks fail" : $"even the {longest} most sensitive units float (all the speed budget allows) fail";
            return null;
        }

        // Binary search for the shortest passing prefix (the margin grows, roughly, with the prefix).
        int lo = 1, hi = longest;
        while (lo < hi && !OutOfBudget())
        {
            var mid = (lo + hi) / 2;
            if (TrySet($"float: {mid} most sensitive unit(s)", recipe, ranked.Take(mid).SelectMany(u => u).ToList()).Passed)
            {
                hi = mid;
            }
            else
            {
                lo = mid + 1;
            }
        }

        // Prune: drop units the passing set does not need, the most expensive first (float compute is what costs speed).
        var kept = ranked.Take(hi).ToList();
        foreach (var unit in kept.OrderByDescending(Cost).ToList())
        {
            if (kept.Count <= 1 || OutOfBudget())
            {
                break;
            }

            var without = kept.Where(u => u != unit).SelectMany(u => u).ToList();
            if (TrySet($"float without {string.Join("+", unit)}", recipe, without).Passed)
            {
                kept.Remove(unit);
            }
        }

        // Swap: an expensive member may be replaceable by a cheaper unit outside the set (the ranking is per compute,
        // so a costly unit can enter the prefix before a cheap one that would do).
        foreach (var unit in kept.OrderByDescending(Cost).ToList())
        {
            foreach (var cheaper in ranked.Except(kept).Where(u => Cost(u) < Cost(unit)).OrderBy(Cost).Take(2))
            {
                if (OutOfBudget())
                {
                    break;
                }

                var swapped = kept.Select(u => u == unit ? cheaper : u).ToList();
                if (TrySet($"float {string.Join("+", cheaper)} instead of {string.Join("+", unit)}", recipe, swapped.SelectMany(u => u).ToList()).Passed)
                {
                    kept = swapped;
                    break;
                }
            }
        }

        return "prefixes of the units ranked by damage per compute (binary search), pruned and swapped for cheaper units";
    }

    private static string Within(double? budget) =>
        budget is double b ? string.Create(CultureInfo.InvariantCulture, $" predicted >= {b:0.##}x") : "";

    /// <summary>Builds and validates one float set; a passing one joins the sets the result is chosen from.</summary>
    private ValidationReport TrySet(string step, QuantizationOptions recipe, List<string> nodes)
    {
        var (candidate, validation) = Try(step, Exclude(recipe, nodes), nodes);
        if (validation.Passed && !_passing.Any(p => p.Nodes.ToHashSet(StringComparer.Ordinal).SetEquals(nodes)))
        {
            var speedup = _attempts.LastOrDefault(a => a.Passed && a.FloatNodes.ToHashSet(StringComparer.Ordinal).SetEquals(nodes))?.Speedup ?? AttemptSpeedup(candidate);
            _passing.Add(new PassingSet(candidate, validation, nodes, speedup));
        }

        return validation;
    }

    private double FloatCost(IEnumerable<string> nodes) => nodes.Sum(n => _costs.GetValueOrDefault(n, 1));

    /// <summary>
    /// Whole-model variants in order of cost, each changing one thing from the user's configuration: first those
    /// that reuse the MinMax ranges, then the histogram methods (one histogram pass serves every percentile).
    /// </summary>
    private IEnumerable<(string Step, QuantizationOptions Options)> WholeModelVariants()
    {
        if (CrossLayerEqualizer.FindPairs(session.Prepared.Graph).Count > 0)
        {
            yield return ($"equalize={!baseOptions.Equalize}".ToLowerInvariant(), baseOptions with { Equalize = !baseOptions.Equalize });
        }

        yield return ($"bias-correction={!baseOptions.BiasCorrection}".ToLowerInvariant(), baseOptions with { BiasCorrection = !baseOptions.BiasCorrection });
        yield return ($"symmetric-activations={!baseOptions.SymmetricActivations}".ToLowerInvariant(), baseOptions with { SymmetricActivations = !baseOptions.SymmetricActivations });
        if (baseOptions.PerChannel && session.PerChannel)
        {
            yield return ("per-channel=false", baseOptions with { PerChannel = false });
        }

        foreach (var method in Enum.GetValues<CalibrationMethod>().Where(m => m != baseOptions.CalibrationMethod))
        {
            yield return ($"calibration-method={method}".ToLowerInvariant(), baseOptions with { CalibrationMethod = method });
        }

        // Outliers: a percentile that cuts more than the default.
        foreach (var percentile in new[] { 99.99, 99.9 }.Where(p => p < baseOptions.CalibrationPercentile))
        {
            yield return (string.Create(CultureInfo.InvariantCulture, $"calibration-method=percentile, calibration-percentile={percentile}"),
                baseOptions with { CalibrationMethod = CalibrationMethod.Percentile, CalibrationPercentile = percentile });
        }
    }

    /// <summary>Quantized units that can be kept float: an anchor with the elementwise activation only it feeds, or a quantized elementwise node.</summary>
    private static List<string[]> FloatUnits(Candidate candidate)
    {
        var graph = new GraphView(candidate.Fp32.Graph);
        var quantized = candidate.QuantizedNodeNames;
        var units = new List<string[]>();
        var taken = new HashSet<string>(StringComparer.Ordinal);
        foreach (var node in candidate.Fp32.Graph.Node)
        {
            if (!quantized.Contains(node.Name) || taken.Contains(node.Name) || OpRules.Find(node) is not { Kind: OpKind.Anchor or OpKind.Elementwise } rule)
            {
                continue;
            }

            var unit = new List<string> { node.Name };
            if (rule.Kind == OpKind.Anchor && graph.Consumers(node.Output[0]) is [var (next, _)] && quantized.Contains(next.Name)
                && OpRules.Find(next) is { Kind: OpKind.Elementwise } && next.Input.Count == 1)
            {
                unit.Add(next.Name);
            }

            taken.UnionWith(unit);
            units.Add([.. unit]);
        }

        return units;
    }

    /// <summary>
    /// Every unit, ranked by the damage it does on its own per unit of compute keeping it float takes back from the
    /// integer kernels, most damage per cost first. A unit's own damage is measured with only that unit quantized
    /// (all other units float): quantization noise of the units roughly adds up at the output, and measured this way
    /// a unit's share is not masked by the others' (keeping one unit float among many noisy ones hardly moves the
    /// metric). Cheap sensitive layers (a model's stem and head) come first, so the float set costs little speed.
    /// On big models only the units the per-layer analysis ranks worst are measured; the others follow, cheapest first.
    /// </summary>
    private (List<string[]> Ranked, Dictionary<string[], double> Damage) Rank(QuantizationOptions recipe, List<string[]> units, Candidate reference, ValidationReport referenceValidation)
    {
        var shortlist = units;
        if (units.Count > MeasuredUnits)
        {
            // Too many to measure: the per-layer analysis (dB each layer loses) picks the ones worth measuring.
            var gate = recipe.Validation!;
            var layers = AccuracyGate.WithLayers(referenceValidation, reference.Fp32, reference.Quantized, reference.QuantizedNodeNames,
                session.InputNames, session.Validation!, gate with { LayerSamples = Math.Max(gate.LayerSamples, 4) }).WorstLayers;
            var loss = layers.GroupBy(l => l.Node, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.Max(l => l.LossDb), StringComparer.Ordinal);
            shortlist = [.. units.OrderByDescending(u => u.Max(n => loss.GetValueOrDefault(n, double.NegativeInfinity))).Take(MeasuredUnits)];
        }

        var everyNode = units.SelectMany(u => u).ToList();
        var damage = new Dictionary<string[], double>(ReferenceEqualityComparer.Instance);
        foreach (var unit in shortlist)
        {
            if (OutOfBudget())
            {
                break;
            }

            var others = everyNode.Except(unit, StringComparer.Ordinal).ToList();
            var (_, validation) = Try($"damage of {string.Join("+", unit)} alone", Exclude(recipe, others), others, probe: true);
            damage[unit] = Damage(validation);
        }

        return ([.. units.OrderByDescending(u => damage.TryGetValue(u, out var d) ? d / Cost(u) : double.NegativeInfinity).ThenBy(Cost)], damage);
    }

    /// <summary>
    /// How much error quantization adds, summed over the checks, in a form that adds up over independent noise sources:
    /// the noise power 10^(−dB/10) for sqnr/psnr, the shortfall for scores (%, cosine), the error itself for errors.
    /// Against ground truth the FP32 model's own error is subtracted: it is the same for every candidate and would
    /// otherwise swamp the differences between units (waifu2x vs the HR photo: FP32's error is ~3× what any layer adds).
    /// </summary>
    internal static double Damage(ValidationReport report) => report.Checks.Sum(c => Math.Max(0, Error(c.Metric, c.Int8) - (c.Fp32 is double f ? Error(c.Metric, f) : 0)));

    private static double Error(string metric, double value) => metric switch
    {
        "sqnr" or "psnr" => Math.Pow(10, -value / 10),
        "cosine" => 1 - value,
        "mse" or "mae" or "max-abs-error" => value,
        _ => Math.Max(0, 100 - value) / 100,
    };

    private double Cost(string[] unit) => Math.Max(1, unit.Sum(n => _costs.GetValueOrDefault(n, 1)));

    /// <summary>Multiply-accumulates of each node on the first calibration sample: weight elements × output elements ÷ output channels; other nodes, their output elements.</summary>
    private Dictionary<string, double> Costs(Candidate candidate)
    {
        var bytes = LayerSensitivity.Sizes(candidate.Fp32, session.Data.ReadSample(0));
        var graph = new GraphView(candidate.Fp32.Graph);
        var costs = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var node in candidate.Fp32.Graph.Node)
        {
            var outputs = bytes.GetValueOrDefault(node.Output[0], 4) / 4.0;
            costs[node.Name] = OpRules.Find(node) is { Kind: OpKind.Anchor, WeightInput: var w } && w < node.Input.Count
                && graph.Initializers.TryGetValue(node.Input[w], out var weight) && weight.Dims.Count >= 2
                ? weight.Dims.Aggregate(1.0, (a, d) => a * d) * outputs / Math.Max(1, node.OpType is "MatMul" ? weight.Dims[^1] : weight.Dims[0])
                : outputs;
        }

        return costs;
    }

    /// <summary>Builds and validates one configuration; a configuration already tried (pruning can revisit one) is not built again.</summary>
    /// <param name="probe">A measurement that is never shipped (a unit's own damage): its speed is not timed.</param>
    private (Candidate Candidate, ValidationReport Validation) Try(string step, QuantizationOptions options, IReadOnlyList<string> floatNodes, bool probe = false)
    {
        var key = Key(options);
        if (_tried.TryGetValue(key, out var known))
        {
            return known;
        }

        var candidate = session.Build(options);
        var validation = session.Validate(candidate);
        Record(step, candidate, validation, floatNodes, probe);
        return _tried[key] = (candidate, validation);
    }

    /// <summary>A configuration's identity: its settings (exclusions included, sorted).</summary>
    private static string Key(QuantizationOptions options) => string.Join("\n", options.ToSettings().Select(kv => kv.Key + "=" + kv.Value));

    private void Record(string step, Candidate candidate, ValidationReport validation, IReadOnlyList<string> floatNodes, bool probe = false)
    {
        var speedup = validation.Passed && !probe ? AttemptSpeedup(candidate) : (double?)null;

        _attempts.Add(new TuningAttempt(_attempts.Count + 1, step, validation.Passed, Margin(validation),
            validation.Checks.Select(c => $"{c.Check}: {c.Describe()}").ToList(), floatNodes, candidate.Int8Bytes.LongLength, speedup)
        {
            Settings = candidate.Options.ToSettings(),
            PredictedSpeedup = _speed is null || probe ? null : _speed.Predict(FloatCost(floatNodes)),
        });
    }

    /// <summary>
    /// A passing attempt's speed-up: 5 runs, or 15 more when that lands below the minimum speed-up (a few slow runs on
    /// a busy machine must not reject a set the gate's 15 runs would accept; waifu2x's best set measured 1.79x and
    /// 2.25x at the same load, a tiny test model 0.18x once among ~1.9x). Only passing sets are timed, so this is rare.
    /// </summary>
    private double AttemptSpeedup(Candidate candidate)
    {
        var speedup = Speedup(candidate);
        return baseOptions.Validation?.MinSpeedup is double min && speedup < min ? Speedup(candidate, AttemptLatencyRuns * 3) : speedup;
    }

    private double Speedup(Candidate candidate, int runs = AttemptLatencyRuns)
    {
        using var feeds = new Feeds(session.InputNames, session.Data.ReadSample(0));
        // At the app's thread count, where the final gate decides: a set fast at 1 thread may not be at 2.
        return LatencyComparison.Measure(session.Fp32Bytes, candidate.Int8Bytes, feeds.Values, runs, warmup: 2, threads: baseOptions.AppThreads, singleThreadToo: false).Speedup;
    }

    private (Candidate?, ValidationReport?, TuningReport) Done(Candidate candidate, ValidationReport validation, IReadOnlyList<string> floatNodes, string why) =>
        (candidate, validation, Report(candidate, floatNodes, succeeded: true, why));

    private (Candidate?, ValidationReport?, TuningReport) Failed(Candidate best, ValidationReport validation, string reason) =>
        (null, null, Report(best, [], succeeded: false,
            $"no configuration passed within {_attempts.Count} attempt(s): {reason}{(validation.Passed ? "" : $" (best: {FailedChecks(validation)})")}"));

    private TuningReport Report(Candidate chosen, IReadOnlyList<string> floatNodes, bool succeeded, string why) => new()
    {
        Source = "searched",
        Succeeded = succeeded,
        Attempts = _attempts,
        Chosen = chosen.Options.ToSettings(),
        FloatNodes = floatNodes,
        Why = why,
        LockFile = tuning.LockFile,
        Elapsed = _clock.Elapsed,
    };

    private bool OutOfBudget() => _attempts.Count >= tuning.MaxAttempts || _clock.Elapsed >= tuning.TimeBudget;

    private static QuantizationOptions Exclude(QuantizationOptions recipe, IEnumerable<string> nodes) =>
        recipe with { ExcludedNodes = recipe.ExcludedNodes.Union(nodes, StringComparer.Ordinal).ToHashSet(StringComparer.Ordinal) };

    /// <summary>The worst check's distance from its threshold, relative to the threshold (at least 1 in magnitude); ≥ 0 passes.</summary>
    internal static double Margin(ValidationReport report) => report.Checks.Count == 0 ? 0 : report.Checks.Min(c =>
    {
        var slack = c.Comparison == ">=" ? c.Value - c.Threshold : c.Threshold - c.Value;
        return double.IsNaN(slack) ? double.NegativeInfinity : slack / Math.Max(1, Math.Abs(c.Threshold));
    });

    private static string FailedChecks(ValidationReport report) =>
        string.Join("; ", report.Checks.Where(c => !c.Passed).Select(c => c.Describe()).DefaultIfEmpty("no check"));

    private string Describe(QuantizationOptions recipe)
    {
        var before = baseOptions.ToSettings();
        return string.Join(", ", recipe.ToSettings().Where(kv => kv.Key != "exclude-nodes" && before.GetValueOrDefault(kv.Key) != kv.Value)
            .Select(kv => string.Create(CultureInfo.InvariantCulture, $"{kv.Key}={kv.Value}")));
    }

    /// <summary>A float set that passed the checks, and its measured speed-up.</summary>
    private sealed record PassingSet(Candidate Candidate, ValidationReport Validation, List<string> Nodes, double Speedup);
}
