using System.Globalization;
using Quantize.Onnx.Tests.TestModels;
using Quantize.Onnx.Tuning;
using Quantize.Onnx.Validation;
using Xunit.Abstractions;

namespace Quantize.Onnx.Tests.Tuning;

/// <summary>
/// Tuning under a minimum speed-up, on a conv net whose one expensive convolution carries ~90 % of the MACs: keeping
/// it float would leave INT8 hardly faster than FP32, so the search must find a passing set among the cheap units.
/// </summary>
public sealed class SpeedBudgetTests(ITestOutputHelper output) : IDisposable
{
    private const string Input = "input";
    private static readonly long[] Shape = [1, 3, 32, 32];
    private static readonly string[] Expensive = ["big", "big.relu"];

    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    /// <summary>
    /// stem 3→16 3×3 → Relu → widen 16→64 1×1 → Relu → big 64→64 3×3 → Relu → head 64→3 3×3 (output). MACs per pixel:
    /// 432, 1,024, 36,864, 1,728: big is 92 %. Its weights have one outlier per output channel (8× the others), so its
    /// per-channel grids are coarse and it does a lot of damage, but per MAC less than the stem and the head.
    /// </summary>
    private static TestNet Net()
    {
        var b = new TestModelBuilder(opset: 13, seed: 23, name: "budget");
        var x = b.Input(Input, Shape);
        var s = b.Relu("stem.relu", b.Conv("stem", x, 3, 16));
        var w = b.Relu("widen.relu", b.Conv("widen", s, 16, 64, kernel: 1));
        var big = b.Relu("big.relu", b.Conv("big", w, 64, 64));
        b.Conv("head", big, 64, 3);
        b.Output("head", 1, 3, 32, 32);
        var model = b.Build();
        var weight = model.Graph.Initializer.Single(t => t.Name == "big.weight");
        var values = Quantize.Onnx.Model.TensorValues.ReadFloats(weight);
        var perChannel = values.Length / 64;
        for (var c = 0; c < 64; c++)
        {
            values[c * perChannel] = 8 * MathF.Sqrt(2f / (64 * 9)) * (c % 2 == 0 ? 1 : -1);
        }

        model.Graph.Initializer[model.Graph.Initializer.IndexOf(weight)] = Quantize.Onnx.Model.TensorValues.FromFloats("big.weight", [64, 64, 3, 3], values);
        return new TestNet(model, Input, Shape, b.ConvNodes);
    }

    [Fact]
    public void Under_a_minimum_speedup_tuning_never_floats_the_expensive_conv_finds_a_cheap_passing_set_and_the_lock_file_reproduces_it()
    {
        var net = Net();
        var (model, calibration) = QuantizeTestKit.Prepare(net, _folder.Path);
        var validation = QuantizeTestKit.WriteCalibration(Path.Combine(_folder.Path, "validation"), Input, Shape, QuantizeTestKit.HeldOutSeeds);

        // The check sits between what plain INT8 reaches and what every cheap unit float reaches (measured, so exact).
        var plain = Sqnr(model, calibration, validation, []);
        var cheap = Sqnr(model, calibration, validation, ["stem", "stem.relu", "widen", "widen.relu", "head"]);
        output.WriteLine($"plain {plain:F2} dB, cheap units float {cheap:F2} dB");
        Assert.True(cheap > plain + 0.5, "floating the cheap units must help for the check to be placed between");
        var check = string.Create(CultureInfo.InvariantCulture, $"sqnr>={(plain + cheap) / 2:F2}");

        var lockFile = _folder.File("model.quantization.json");
        var tuning = new TuningOptions { Enabled = true, LockFile = lockFile };
        var tuned = new Quantizer(Options(validation, check, tuning)).Run(model, calibration, _folder.File("tuned.onnx"));

        var report = Assert.IsType<TuningReport>(tuned.Tuning);
        foreach (var a in report.Attempts)
        {
            output.WriteLine($"{a.Number} {a.Step}: {(a.Passed ? "pass" : "fail")} margin {a.Margin:F3} {string.Join("; ", a.Checks)} float [{string.Join(",", a.FloatNodes)}] predicted {a.PredictedSpeedup:F2} measured {a.Speedup:F2}");
        }

        output.WriteLine(report.Why);
        Assert.True(report.Succeeded);
        Assert.True(tuned.Validation!.Passed);
        Assert.Equal(OutputKind.Quantized, tuned.Output);
        Assert.DoesNotContain(report.FloatNodes, n => Expensive.Contains(n));
        Assert.NotEmpty(report.FloatNodes);

        // The budget is respected during the search: every float set it built was predicted fast enough (a set the
        // probes built already is reused, not built again), so the expensive conv was float only in the probes that
        // measure one unit's damage (every other unit float, never shipped).
        Assert.All(report.Attempts.Where(a => a.PredictedSpeedup is not null), a => Assert.True(a.PredictedSpeedup >= MinSpeedup * (1 - (Tuner.SpeedMargin / 2)), $"{a.Step} predicted {a.PredictedSpeedup:F2}x"));
        Assert.All(report.Attempts.Where(a => a.FloatNodes.Intersect(Expensive).Any()), a => Assert.StartsWith("damage of ", a.Step, StringComparison.Ordinal));

        // The lock file reproduces the result without searching: same float nodes, same bytes.
        var again = new Quantizer(Options(validation, check, tuning)).Run(model, calibration, _folder.File("again.onnx"));
        Assert.Equal("lock-file", again.Tuning!.Source);
        Assert.Equal(report.FloatNodes, again.Tuning.FloatNodes);
        Assert.Equal(File.ReadAllBytes(_folder.File("tuned.onnx")), File.ReadAllBytes(_folder.File("again.onnx")));
    }

    private const double MinSpeedup = 1.15;

    // 15 latency runs (the engine's default) rather than the test kit's 3: the gate decides the minimum speed-up, and a
    // median of 3 on a busy machine can be one slow run (0.18x once, for a model that runs ~1.9x).
    // One app thread: this tiny model's integer kernels gain at 1 thread (~1.9x) but not at ORT's default on 2 vCPUs (0.86x,
    // thread start-up dominates), and the budget logic, not the thread count, is under test.
    private static QuantizationOptions Options(string validation, string check, TuningOptions? tuning) => QuantizeTestKit.Options() with
    {
        LatencyRuns = 15,
        AppThreads = 1,
        Validation = new ValidationOptions { Folder = validation, Checks = [AccuracyCheck.Parse(check)], LayerSamples = 2, MinSpeedup = tuning is null ? null : MinSpeedup },
        Tuning = tuning,
    };

    private double Sqnr(string model, string calibration, string validation, string[] exclude) =>
        new Quantizer(Options(validation, "sqnr>=0", null) with { ExcludedNodes = exclude.ToHashSet(StringComparer.Ordinal) })
            .Run(model, calibration, _folder.File($"probe{exclude.Length}.onnx")).Validation!.Checks.Single().Value;
}
