using Quantize.Onnx.Model.Proto;
using Quantize.Onnx.Quantization;
using Quantize.Onnx.Tuning;
using Quantize.Onnx.Validation;

namespace Quantize.Onnx.Tests.Tuning;

/// <summary>
/// The tuner's search on made-up measurements (no model, no ONNX Runtime): each unit adds a known noise power, the
/// check is an SQNR floor, and a unit's float cost lowers a known speed-up. What it must find is computable by hand.
/// </summary>
public sealed class TunerSearchTests
{
    [Fact]
    public void A_whole_model_variant_that_passes_ships_with_every_node_quantized()
    {
        var source = new FakeSource([1e-2, 1e-3], [10, 10]) { PassesWhen = o => !o.Equalize };

        var outcome = Search(source, "sqnr>=30");

        Assert.True(outcome.Report.Succeeded);
        Assert.Empty(outcome.Report.FloatNodes);
        Assert.False(outcome.Candidate!.Options.Equalize);
        Assert.Contains("equalize=false passes every check", outcome.Report.Why);
        Assert.Equal(2, outcome.Report.Attempts.Count); // the plain configuration, then the first variant
    }

    [Fact]
    public void With_few_units_the_cheapest_float_set_that_passes_with_a_margin_ships()
    {
        // Noise powers: unit 0 dominates (SQNR 20 dB with everything quantized); without it 1.6e-4 → 38 dB ≥ 30 + 10 %.
        var source = new FakeSource([1e-2, 1e-4, 5e-5, 1e-5], [100, 10, 10, 10]);

        var outcome = Search(source, "sqnr>=30");

        Assert.True(outcome.Report.Succeeded, outcome.Report.Why);
        Assert.Equal(["n0"], outcome.Report.FloatNodes);
        Assert.Contains("the sets of the 4 units cheapest for their predicted damage were searched", outcome.Report.Why);
        Assert.True(CheckScores.Margin(outcome.Validation!) >= Tuner.PreferredMargin);
    }

    [Fact]
    public void With_many_units_the_shortest_passing_prefix_is_pruned_to_what_it_needs()
    {
        // 12 units (more than the frontier enumerates): units 3 and 7 carry the noise.
        var noise = Enumerable.Repeat(1e-6, 12).ToArray();
        noise[3] = 1e-2;
        noise[7] = 5e-3;
        var source = new FakeSource(noise, Enumerable.Repeat(10.0, 12).ToArray());

        var outcome = Search(source, "sqnr>=30");

        Assert.True(outcome.Report.Succeeded, outcome.Report.Why);
        Assert.Equal(["n3", "n7"], outcome.Report.FloatNodes.Order(StringComparer.Ordinal));
        Assert.Contains("prefixes of the units ranked by damage per compute", outcome.Report.Why);
    }

    [Fact]
    public void When_the_attempt_budget_runs_out_the_search_fails_and_says_so()
    {
        var source = new FakeSource([1e-2, 1e-2, 1e-2], [10, 10, 10]);

        var outcome = Search(source, "sqnr>=30", maxAttempts: 3);

        Assert.False(outcome.Report.Succeeded);
        Assert.Null(outcome.Candidate);
        Assert.Equal(3, outcome.Report.Attempts.Count);
        Assert.Contains("no configuration passed within 3 attempt(s)", outcome.Report.Why);
    }

    [Fact]
    public void When_only_float_sets_slower_than_the_minimum_speed_up_would_pass_the_search_fails_and_says_so()
    {
        // Keeping the dominant unit float costs almost all the compute (predicted ~1.0x < 1.5x), so the frontier within the
        // speed budget holds only the cheap unit, which does not pass.
        var source = new FakeSource([1e-2, 1e-5], [1000, 1]);

        var outcome = Search(source, "sqnr>=30", minSpeedup: 1.5);

        Assert.False(outcome.Report.Succeeded);
        Assert.Null(outcome.Candidate);
        Assert.Contains("even the most accurate float set within the speed budget fails", outcome.Report.Why);
        Assert.DoesNotContain(outcome.Report.Attempts, a => a.FloatNodes.Contains("n0") && a.PredictedSpeedup is not null); // never built
    }

    [Fact]
    public void A_revisited_configuration_whose_candidate_the_GC_took_is_rebuilt_without_a_new_attempt()
    {
        var source = new FakeSource([1e-2], [10]);
        var options = Options("sqnr>=30");
        var log = new AttemptLog(source, new TuningOptions { Enabled = true }, minSpeedup: null);
        var first = TryAndDrop(log, options);
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        var evaluations = source.Evaluations;

        var (again, validation) = log.Try("again", options, []);
        log.Try("third", options, []);

        Assert.Same(first, validation);
        Assert.Equal(evaluations + 1, source.Evaluations); // rebuilt once, then held while in use
        Assert.Single(log.Attempts);
        GC.KeepAlive(again);
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static ValidationReport TryAndDrop(AttemptLog log, QuantizationOptions options) => log.Try("first", options, []).Validation;

    private static QuantizationOptions Options(string check, double? minSpeedup = null) => new()
    {
        Validation = new ValidationOptions { Folder = "val", Checks = [AccuracyCheck.Parse(check)], MinSpeedup = minSpeedup },
    };

    private static TuningOutcome Search(FakeSource source, string check, int maxAttempts = 48, double? minSpeedup = null)
    {
        var options = Options(check, minSpeedup);
        var plain = source.Evaluate(options);
        return new Tuner(source, options, new TuningOptions { Enabled = true, MaxAttempts = maxAttempts }).Search(plain.Candidate, plain.Validation);
    }

    /// <summary>Unit i is node "n{i}" with noise power noise[i] and cost cost[i]; SQNR = −10·log10(Σ noise of quantized units).</summary>
    private sealed class FakeSource(double[] noise, double[] cost) : ITuningSource
    {
        /// <summary>Whole-model options that pass whatever is quantized.</summary>
        public Func<QuantizationOptions, bool> PassesWhen { get; init; } = _ => false;

        public bool HasEqualizationPairs => true;

        public bool PerChannelPossible => true;

        private double TotalCost => cost.Sum();

        /// <summary>Configurations built so far.</summary>
        public int Evaluations { get; private set; }

        public (Candidate Candidate, ValidationReport Validation) Evaluate(QuantizationOptions options)
        {
            Evaluations++;
            var check = options.Validation!.Checks[0];
            var power = Enumerable.Range(0, noise.Length).Where(i => !options.ExcludedNodes.Contains(Node(i))).Sum(i => noise[i]);
            var sqnr = power == 0 ? 100 : -10 * Math.Log10(power);
            var passed = PassesWhen(options) || sqnr >= check.Threshold;
            var value = PassesWhen(options) ? check.Threshold + 10 : sqnr;
            var plan = new QuantizationPlan();
            for (var i = 0; i < noise.Length; i++)
            {
                if (!options.ExcludedNodes.Contains(Node(i)))
                {
                    plan.QuantizedNodes.Add(new NodeProto { Name = Node(i), OpType = "Conv" });
                }
            }

            var report = new ValidationReport
            {
                Folder = "val",
                Samples = 8,
                SameAsCalibration = false,
                Metrics = [],
                Checks = [new CheckResult(check.Spec, "sqnr", "out", false, null, value, value, ">=", check.Threshold, passed, " dB")],
                WorstLayers = [],
                LayerSamples = 0,
            };
            return (new Candidate(options, new ModelProto(), new ModelProto(), new byte[16], plan), report);
        }

        public IReadOnlyList<string[]> FloatUnits(Candidate candidate) =>
            [.. Enumerable.Range(0, noise.Length).Select(Node).Where(candidate.QuantizedNodeNames.Contains).Select(n => new[] { n })];

        public IReadOnlyDictionary<string, double> NodeCosts(Candidate candidate) =>
            Enumerable.Range(0, noise.Length).ToDictionary(Node, i => cost[i]);

        public IReadOnlyDictionary<string, double> LayerLoss(Candidate candidate, ValidationReport validation) =>
            Enumerable.Range(0, noise.Length).ToDictionary(Node, i => 10 * Math.Log10(1 + (noise[i] * 1e6)));

        /// <summary>INT8 alone is 3x; float compute brings the time back towards FP32's in proportion to its cost.</summary>
        public double Speedup(Candidate candidate, int runs)
        {
            var floatShare = Enumerable.Range(0, noise.Length).Where(i => !candidate.QuantizedNodeNames.Contains(Node(i))).Sum(i => cost[i]) / TotalCost;
            return 1 / ((1.0 / 3) + (floatShare * (1 - (1.0 / 3))));
        }

        private static string Node(int i) => $"n{i}";
    }
}
