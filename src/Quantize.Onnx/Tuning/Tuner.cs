using System.Diagnostics;
using System.Globalization;
using Quantize.Onnx.Model;
using Quantize.Onnx.Quantization;
using Quantize.Onnx.Validation;

namespace Quantize.Onnx.Tuning;

/// <summary>
/// Searches for a configuration that passes the accuracy gate when the plain one does not, in order of
/// cost: first whole-model choices that keep every node quantized (equalization, bias correction,
/// per-tensor weights, calibration methods), then the fewest nodes kept in float. Float candidates are
/// quantized units (an anchor such as Conv with the activation that only it feeds, or another quantized
/// compute node), ranked by measured damage per compute (<see cref="Rank"/>). The set is then the
/// shortest prefix of that ranking that passes (binary search), pruned of members it does not need (most
/// expensive first) and with expensive members swapped for cheaper units outside it where that still passes. Every candidate is built from the session's calibration (one pass per calibration method).
/// </summary>
internal sealed class Tuner(QuantizeSession session, QuantizationOptions baseOptions, TuningOptions tuning)
{
    /// <summary>At most this many float candidates are measured one by one.</summary>
    private const int MeasuredUnits = 16;

    /// <summary>Timed runs per model for a passing attempt's speed-up (an indication; the shipped model gets the full measurement).</summary>
    private const int AttemptLatencyRuns = 5;

    private readonly List<TuningAttempt> _attempts = [];
    private readonly Dictionary<string, (Candidate, ValidationReport)> _tried = new(StringComparer.Ordinal);
    private readonly Stopwatch _clock = Stopwatch.StartNew();

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

            if (Margin(validation) > bestMargin)
            {
                (best, bestValidation, bestMargin) = (candidate, validation, Margin(validation));
            }
        }

        // 2. The fewest float units on top of the best whole-model configuration.
        var recipe = best.Options;
        var units = FloatUnits(best);
        _costs = Costs(best);
        var ranked = Rank(recipe, units, best, bestValidation);
        if (ranked.Count == 0 || OutOfBudget())
        {
            return Failed(best, bestValidation, ranked.Count == 0 ? "the model has no quantized unit to keep float" : "the budget ran out while measuring sensitivities");
        }

        // Binary search for the shortest passing prefix (the margin grows, roughly, with the prefix).
        int lo = 1, hi = ranked.Count;
        (Candidate Candidate, ValidationReport Validation, List<string> Nodes)? found = null;
        var all = ranked.SelectMany(u => u).ToList();
        var (allCandidate, allValidation) = Try($"float: all {ranked.Count} ranked units", Exclude(recipe, all), all);
        if (!allValidation.Passed)
        {
            return Failed(allCandidate, allValidation, $"even with all {ranked.Count} quantized units float the checks fail");
        }

        found = (allCandidate, allValidation, all);
        while (lo < hi && !OutOfBudget())
        {
            var mid = (lo + hi) / 2;
            var nodes = ranked.Take(mid).SelectMany(u => u).ToList();
            var (candidate, validation) = Try($"float: {mid} most sensitive unit(s)", Exclude(recipe, nodes), nodes);
            if (validation.Passed)
            {
                found = (candidate, validation, nodes);
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
            var (candidate, validation) = Try($"float without {string.Join("+", unit)}", Exclude(recipe, without), without);
            if (validation.Passed)
            {
                found = (candidate, validation, without);
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
                var nodes = swapped.SelectMany(u => u).ToList();
                var (candidate, validation) = Try($"float {string.Join("+", cheaper)} instead of {string.Join("+", unit)}", Exclude(recipe, nodes), nodes);
                if (validation.Passed)
                {
                    found = (candidate, validation, nodes);
                    kept = swapped;
                    break;
                }
            }
        }

        var (c, v, floatNodes) = found.Value;
        // The set may have been built before in another order (a cached attempt records no new line): compare as sets.
        var speedup = _attempts.LastOrDefault(a => a.Passed && a.FloatNodes.ToHashSet(StringComparer.Ordinal).SetEquals(floatNodes))?.Speedup ?? Speedup(c);
        if (recipe.Validation?.MinSpeedup is double min && speedup < min)
        {
            return Failed(c, v, string.Create(CultureInfo.InvariantCulture,
                $"the fewest float nodes that pass ({string.Join(", ", floatNodes)}) leave INT8 only {speedup:F2}x as fast as FP32, below the minimum speed-up {min:0.##}x"));
        }

        return Done(c, v, floatNodes,
            $"plain quantization failed {FailedChecks(plainValidation)}; keeping {floatNodes.Count} node(s) float ({string.Join(", ", floatNodes)}), " +
            $"the shortest passing prefix of the units ranked by damage per compute, pruned and swapped for cheaper units, passes{(recipe == baseOptions ? "" : " with " + Describe(recipe))}");
    }

    /// <summary>
    /// Whole-model variants in order of cost, each changing one thing from the user's configuration: first those
    /// that reuse the MinMax ranges, then the histogram methods (one histogram pass serves every percentile).
    /// </summary>
    private IEnumerable<(string Step, QuantizationOptions Options)> WholeModelVariants()
    {
        if (Preparation.CrossLayerEqualizer.FindPairs(session.Prepared.Graph).Count > 0)
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
    private List<string[]> Rank(QuantizationOptions recipe, List<string[]> units, Candidate reference, ValidationReport referenceValidation)
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

        return [.. units.OrderByDescending(u => damage.TryGetValue(u, out var d) ? d / Cost(u) : double.NegativeInfinity).ThenBy(Cost)];
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
        Record(step, candidate, validation, floatNodes, timeIt: !probe);
        return _tried[key] = (candidate, validation);
    }

    /// <summary>A configuration's identity: its settings (exclusions included, sorted).</summary>
    private static string Key(QuantizationOptions options) => string.Join("\n", options.ToSettings().Select(kv => kv.Key + "=" + kv.Value));

    private void Record(string step, Candidate candidate, ValidationReport validation, IReadOnlyList<string> floatNodes, bool timeIt = true)
    {
        var speedup = validation.Passed && timeIt ? Speedup(candidate) : (double?)null;

        _attempts.Add(new TuningAttempt(_attempts.Count + 1, step, validation.Passed, Margin(validation),
            validation.Checks.Select(c => $"{c.Check}: {c.Describe()}").ToList(), floatNodes, candidate.Int8Bytes.LongLength, speedup)
        {
            Settings = candidate.Options.ToSettings(),
        });
    }

    private double Speedup(Candidate candidate)
    {
        using var feeds = new Feeds(session.InputNames, session.Data.ReadSample(0));
        return LatencyComparison.Measure(session.Fp32Bytes, candidate.Int8Bytes, feeds.Values, AttemptLatencyRuns, warmup: 2).Speedup;
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
}
