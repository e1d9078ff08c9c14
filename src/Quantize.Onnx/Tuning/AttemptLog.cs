using System.Diagnostics;
using Quantize.Onnx.Quantization;
using Quantize.Onnx.Validation;

namespace Quantize.Onnx.Tuning;

/// <summary>
/// Every configuration one search built and validated, in order, within the attempt and time budget: a
/// configuration already tried (pruning can revisit one) is not built again, passing float sets are timed and kept
/// for the final choice. Tried candidates are held weakly: each holds its models (ISNet: 176 MB FP32 + 2 × 44 MB INT8), so
/// 48 attempts held strongly would pass 12 GB; one the GC took is rebuilt (builds are deterministic) if a search revisits it.
/// </summary>
internal sealed class AttemptLog(ITuningSource source, TuningOptions tuning, double? minSpeedup)
{
    /// <summary>Timed runs per model for a passing attempt's speed-up (an indication; the shipped model gets the full measurement).</summary>
    public const int AttemptLatencyRuns = 5;

    private readonly Dictionary<string, (WeakReference<Candidate> Candidate, ValidationReport Validation)> _tried = new(StringComparer.Ordinal);
    private readonly Stopwatch _clock = Stopwatch.StartNew();

    public List<TuningAttempt> Attempts { get; } = [];

    /// <summary>Float sets that passed, with their measured speed-up: the result is chosen from them.</summary>
    public List<PassingSet> Passing { get; } = [];

    /// <summary>Predicts a float set's speed-up (null without a minimum speed-up, and until the float search starts).</summary>
    public SpeedModel? Speed { get; set; }

    /// <summary>Multiply-accumulates per node of the configuration the float units are chosen on.</summary>
    public IReadOnlyDictionary<string, double> Costs { get; set; } = new Dictionary<string, double>();

    public TimeSpan Elapsed => _clock.Elapsed;

    public bool OutOfBudget => Attempts.Count >= tuning.MaxAttempts || _clock.Elapsed >= tuning.TimeBudget;

    /// <summary>Records the plain configuration the search starts from.</summary>
    public void Start(Candidate plain, ValidationReport validation)
    {
        Record("plain configuration", plain, validation, []);
        _tried[Key(plain.Options)] = (new WeakReference<Candidate>(plain), validation);
    }

    /// <summary>Builds and validates one configuration.</summary>
    /// <param name="probe">A measurement that is never shipped (a unit's own damage): its speed is not timed.</param>
    public (Candidate Candidate, ValidationReport Validation) Try(string step, QuantizationOptions options, IReadOnlyList<string> floatNodes, bool probe = false)
    {
        var key = Key(options);
        if (_tried.TryGetValue(key, out var known))
        {
            if (known.Candidate.TryGetTarget(out var kept))
            {
                return (kept, known.Validation);
            }

            var rebuilt = source.Evaluate(options).Candidate; // not a new attempt: the same configuration, built again
            known.Candidate.SetTarget(rebuilt);
            return (rebuilt, known.Validation);
        }

        var (candidate, validation) = source.Evaluate(options);
        Record(step, candidate, validation, floatNodes, probe);
        _tried[key] = (new WeakReference<Candidate>(candidate), validation);
        return (candidate, validation);
    }

    /// <summary>Builds and validates one float set; a passing one joins the sets the result is chosen from.</summary>
    public ValidationReport TrySet(string step, QuantizationOptions recipe, List<string> nodes)
    {
        var (candidate, validation) = Try(step, recipe.WithFloatNodes(nodes), nodes);
        if (validation.Passed && !Passing.Any(p => p.Nodes.ToHashSet(StringComparer.Ordinal).SetEquals(nodes)))
        {
            var speedup = Attempts.LastOrDefault(a => a.Passed && a.FloatNodes.ToHashSet(StringComparer.Ordinal).SetEquals(nodes))?.Speedup ?? AttemptSpeedup(candidate);
            Passing.Add(new PassingSet(candidate, validation, nodes, speedup));
        }

        return validation;
    }

    /// <summary>Multiply-accumulates of the nodes kept float.</summary>
    public double FloatCost(IEnumerable<string> nodes) => nodes.Sum(n => Costs.GetValueOrDefault(n, 1));

    /// <summary>A unit's multiply-accumulates (at least 1, so damage per cost stays finite).</summary>
    public double Cost(string[] unit) => Math.Max(1, unit.Sum(n => Costs.GetValueOrDefault(n, 1)));

    private void Record(string step, Candidate candidate, ValidationReport validation, IReadOnlyList<string> floatNodes, bool probe = false)
    {
        var speedup = validation.Passed && !probe ? AttemptSpeedup(candidate) : (double?)null;

        Attempts.Add(new TuningAttempt(Attempts.Count + 1, step, validation.Passed, CheckScores.Margin(validation),
            validation.Checks.Select(c => $"{c.Check}: {c.Describe()}").ToList(), floatNodes, candidate.ShippedBytes.LongLength, speedup)
        {
            Settings = candidate.Options.ToSettings(),
            PredictedSpeedup = Speed is null || probe ? null : Speed.Predict(FloatCost(floatNodes)),
        });
        source.Attempted(Attempts[^1]);
    }

    /// <summary>
    /// A passing attempt's speed-up: 5 runs, or 15 more when that lands below the minimum speed-up (a few slow runs on
    /// a busy machine must not reject a set the gate's 15 runs would accept; waifu2x's best set measured 1.79x and
    /// 2.25x at the same load, a tiny test model 0.18x once among ~1.9x). Only passing sets are timed, so this is rare.
    /// </summary>
    private double AttemptSpeedup(Candidate candidate)
    {
        var speedup = source.Speedup(candidate, AttemptLatencyRuns);
        return minSpeedup is double min && speedup < min ? source.Speedup(candidate, AttemptLatencyRuns * 3) : speedup;
    }

    /// <summary>A configuration's identity: its settings (exclusions included, sorted).</summary>
    private static string Key(QuantizationOptions options) => string.Join("\n", options.ToSettings().Select(kv => kv.Key + "=" + kv.Value));
}

/// <summary>A float set that passed the checks, and its measured speed-up.</summary>
internal sealed record PassingSet(Candidate Candidate, ValidationReport Validation, List<string> Nodes, double Speedup);
