using System.Globalization;
using System.Text.Json.Nodes;
using Quantize.Onnx.Hardware;
using Quantize.Onnx.Model;
using Quantize.Onnx.Tests.TestModels;
using Quantize.Onnx.Tuning;
using Quantize.Onnx.Validation;
using Xunit.Abstractions;

namespace Quantize.Onnx.Tests.Tuning;

/// <summary>
/// The lock file's recorded run (<c>recorded</c>: the planner's activation ranges, equalization's channel ranges, bias
/// shifts, INT8 vs FP32): written by a recording run, replayed by every later run while the lock is current, so that the
/// bytes written do not depend on the machine's float kernels or timing. Engine level, on the small conv net.
/// </summary>
public sealed class LockReplayTests(ITestOutputHelper output) : IDisposable
{
    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    private static QuantizationOptions Options(string lockFile, bool record) => QuantizeTestKit.Options() with
    {
        Tuning = new TuningOptions { LockFile = lockFile, Record = record },
    };

    /// <summary>The conv net and its calibration set, and a first run that records the lock file: (model, calibration, lock file, first output, its result).</summary>
    private (string Model, string Calibration, string LockFile, string First, QuantizeResult Result) Record()
    {
        var (model, calibration) = QuantizeTestKit.Prepare(TestNets.ConvNet(), _folder.Path);
        var lockFile = TuningOptions.DefaultLockFile(model);
        var first = _folder.File("first.onnx");
        var result = new Quantizer(Options(lockFile, record: true)).Run(model, calibration, first);
        output.WriteLine($"recording run: {result.Output}, calibration {result.CalibrationTime.TotalMilliseconds:F0} ms, total {result.TotalTime.TotalMilliseconds:F0} ms, " +
            $"decided here: {string.Join(", ", result.DecidedHere)}");
        return (model, calibration, lockFile, first, result);
    }

    private static JsonObject Recorded(string lockFile) => JsonNode.Parse(File.ReadAllText(lockFile))!["recorded"]!.AsObject();

    private static void Edit(string lockFile, Action<JsonObject> edit)
    {
        var root = JsonNode.Parse(File.ReadAllText(lockFile))!.AsObject();
        edit(root);
        File.WriteAllText(lockFile, root.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }));
    }

    /// <summary>
    /// The activations the written model quantizes: the inputs of its QuantizeLinear nodes that no initializer holds, by their
    /// FP32 names (a graph output's producer writes "&lt;output&gt;_before_quantize", quantized back into the output).
    /// </summary>
    private static List<string> QuantizedActivations(string path)
    {
        var graph = ModelLoader.Load(path).Graph;
        var initializers = graph.Initializer.Select(t => t.Name).ToHashSet(StringComparer.Ordinal);
        return graph.Node.Where(n => n.OpType == "QuantizeLinear" && !initializers.Contains(n.Input[0]))
            .Select(n => n.Input[0].EndsWith(BeforeQuantize, StringComparison.Ordinal) ? n.Input[0][..^BeforeQuantize.Length] : n.Input[0])
            .Distinct(StringComparer.Ordinal)
            .ToList();
    }

    private const string BeforeQuantize = "_before_quantize";

    private static bool HasQdq(string path) => ModelLoader.Load(path).Graph.Node.Any(n => n.OpType is "QuantizeLinear" or "DequantizeLinear");

    [Fact]
    public void A_recording_run_writes_the_measured_ranges_the_ship_decision_and_the_machine_into_the_lock_file()
    {
        var (_, _, lockFile, first, result) = Record();

        Assert.Equal(OutputKind.Quantized, result.Output);
        Assert.True(File.Exists(lockFile));
        Assert.Equal("recorded", result.Tuning!.Source);
        Assert.True(result.Tuning.LockFileWritten);
        Assert.Contains("calibrated activation ranges", result.DecidedHere);
        Assert.Contains("bias correction", result.DecidedHere);
        Assert.True(result.CalibrationTime > TimeSpan.Zero);

        var recorded = Recorded(lockFile);
        output.WriteLine(recorded.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }));
        Assert.Equal(RecordedRun.ShipInt8, (string?)recorded["ship"]);
        Assert.Equal(BuildMachine.Current.ClassLabel, (string?)recorded["measuredOn"]);
        Assert.Equal(result.Latency.Speedup, double.Parse((string)recorded["speedup"]!, CultureInfo.InvariantCulture), 0.0051);

        // A [min, max] pair for every activation the written model quantizes (the planner's grids come from these).
        var ranges = recorded["ranges"]!.AsObject();
        var activations = QuantizedActivations(first);
        Assert.NotEmpty(activations);
        Assert.All(activations, a =>
        {
            Assert.True(ranges.ContainsKey(a), $"no recorded range for the quantized activation '{a}'");
            var range = ranges[a]!.AsArray();
            Assert.Equal(2, range.Count);
            Assert.True((float)range[0]! <= (float)range[1]!, $"{a}: {range.ToJsonString()}");
        });

        // Bias correction's shifts (conv4 and head write graph outputs), one per output channel. The conv net has no
        // Conv → Relu → Conv pair for equalization (relu1 also feeds the residual Add): no channel ranges.
        var shifts = recorded["biasShifts"]!.AsObject();
        Assert.Equal(["conv4.bias_quantized", "head.bias_quantized"], shifts.Select(kv => kv.Key).Order(StringComparer.Ordinal));
        Assert.Equal(4, shifts["conv4.bias_quantized"]!.AsArray().Count);
        Assert.Equal(5, shifts["head.bias_quantized"]!.AsArray().Count);
        Assert.Empty(recorded["channelRanges"]!.AsObject());
    }

    /// <summary>conv1 3→8 → relu1 → conv2 8→8 → relu2 → conv3 8→4 (output): two Conv → Relu → Conv pairs for equalization.</summary>
    private static TestNet ChainNet()
    {
        var b = new TestModelBuilder(13, 23, false, "chain");
        var x = b.Input(TestNets.ImageInput, TestNets.ImageShape);
        var a = b.Relu("relu1", b.Conv("conv1", x, 3, 8));
        var c = b.Relu("relu2", b.Conv("conv2", a, 8, 8));
        b.Conv("conv3", c, 8, 4);
        b.Output("conv3", 1, 4, 16, 16);
        return new TestNet(b.Build(), TestNets.ImageInput, TestNets.ImageShape, b.ConvNodes);
    }

    [Fact]
    public void Equalization_is_replayed_from_the_recorded_channel_ranges()
    {
        var (model, calibration) = QuantizeTestKit.Prepare(ChainNet(), _folder.Path);
        var lockFile = TuningOptions.DefaultLockFile(model);
        var first = _folder.File("first.onnx");
        var recording = new Quantizer(Options(lockFile, record: true)).Run(model, calibration, first);
        Assert.Equal(OutputKind.Quantized, recording.Output);

        // Per-channel ranges of the tensors between the pairs, one [min] and one [max] per channel.
        var channels = Recorded(lockFile)["channelRanges"]!.AsObject();
        output.WriteLine($"channel ranges recorded for: {string.Join(", ", channels.Select(c => c.Key))}");
        Assert.NotEmpty(channels);
        Assert.All(channels, c =>
        {
            Assert.Equal(8, c.Value!["min"]!.AsArray().Count);
            Assert.Equal(8, c.Value!["max"]!.AsArray().Count);
        });

        var replayed = new Quantizer(Options(lockFile, record: false)).Run(model, calibration, _folder.File("replayed.onnx"));
        Assert.Empty(replayed.DecidedHere);
        Assert.Equal(TimeSpan.Zero, replayed.CalibrationTime);
        Assert.Equal(File.ReadAllBytes(first), File.ReadAllBytes(_folder.File("replayed.onnx")));

        // Another recorded channel maximum steers equalization to other factors: other weights, other bytes.
        var tensor = channels.First().Key;
        Edit(lockFile, root =>
        {
            var max = root["recorded"]!["channelRanges"]![tensor]!["max"]!.AsArray();
            max[0] = 4 * ((float)max[0]! + 0.25f);
        });
        var edited = new Quantizer(Options(lockFile, record: false)).Run(model, calibration, _folder.File("edited.onnx"));
        Assert.Empty(edited.DecidedHere);
        var weights = ModelLoader.Load(first).Graph.Initializer.ToDictionary(t => t.Name, t => t.RawData, StringComparer.Ordinal);
        var changed = ModelLoader.Load(_folder.File("edited.onnx")).Graph.Initializer.Where(t => !weights.TryGetValue(t.Name, out var w) || !w.Equals(t.RawData)).Select(t => t.Name).ToList();
        output.WriteLine($"edited the max of channel 0 of '{tensor}': initializers changed: {string.Join(", ", changed)}");
        Assert.NotEmpty(changed);
    }

    [Fact]
    public void A_current_lock_is_replayed_without_calibrating_and_writes_the_same_bytes_and_the_lock_stays_as_it_was()
    {
        var (model, calibration, lockFile, first, _) = Record();
        var lockBytes = File.ReadAllBytes(lockFile);
        var lockTime = File.GetLastWriteTimeUtc(lockFile);

        var replayed = new Quantizer(Options(lockFile, record: false)).Run(model, calibration, _folder.File("replayed.onnx"));
        output.WriteLine($"replayed run: {replayed.Output}, calibration {replayed.CalibrationTime.TotalMilliseconds:F0} ms, total {replayed.TotalTime.TotalMilliseconds:F0} ms");

        Assert.Equal(OutputKind.Quantized, replayed.Output);
        Assert.Equal(File.ReadAllBytes(first), File.ReadAllBytes(_folder.File("replayed.onnx")));
        Assert.Empty(replayed.DecidedHere);
        Assert.Equal(TimeSpan.Zero, replayed.CalibrationTime);
        Assert.Equal("lock-file", replayed.Tuning!.Source);
        Assert.False(replayed.Tuning.LockFileWritten);
        Assert.DoesNotContain(replayed.Warnings, w => w.Code == ErrorCodes.LockFileStale);
        Assert.Equal(lockBytes, File.ReadAllBytes(lockFile));

        // Recording again over a current lock replays it too, and does not rewrite it.
        var again = new Quantizer(Options(lockFile, record: true)).Run(model, calibration, _folder.File("again.onnx"));
        Assert.Empty(again.DecidedHere);
        Assert.Equal(TimeSpan.Zero, again.CalibrationTime);
        Assert.False(again.Tuning!.LockFileWritten);
        Assert.Equal(File.ReadAllBytes(first), File.ReadAllBytes(_folder.File("again.onnx")));
        Assert.Equal(lockBytes, File.ReadAllBytes(lockFile));
        Assert.Equal(lockTime, File.GetLastWriteTimeUtc(lockFile));
    }

    [Fact]
    public void Replay_builds_from_the_recorded_numbers_so_an_edited_range_changes_the_output()
    {
        var (model, calibration, lockFile, first, _) = Record();

        // Widen one quantized activation's recorded max ×2 (one that a QuantizeLinear reads by that name, with a range from 0):
        // its grid's scale doubles in the replayed model.
        var ranges = Recorded(lockFile)["ranges"]!.AsObject();
        var activation = QuantizedActivations(first).First(a => ranges.ContainsKey(a) && (float)ranges[a]![0]! == 0 && (float)ranges[a]![1]! > 0
            && ModelLoader.Load(first).Graph.Node.Any(n => n.OpType == "QuantizeLinear" && n.Input[0] == a));
        var original = ranges[activation]!.ToJsonString();
        Edit(lockFile, root =>
        {
            var range = root["recorded"]!["ranges"]![activation]!.AsArray();
            range[1] = 2 * (float)range[1]!;
        });
        output.WriteLine($"edited '{activation}': {original} -> {Recorded(lockFile)["ranges"]![activation]!.ToJsonString()}");

        var edited = new Quantizer(Options(lockFile, record: false)).Run(model, calibration, _folder.File("edited.onnx"));
        Assert.Empty(edited.DecidedHere);
        Assert.Equal(TimeSpan.Zero, edited.CalibrationTime);
        Assert.NotEqual(File.ReadAllBytes(first), File.ReadAllBytes(_folder.File("edited.onnx")));

        // The scale of that activation's grid in the edited model is twice the first one's.
        var (before, after) = (ScaleOf(first, activation), ScaleOf(_folder.File("edited.onnx"), activation));
        output.WriteLine($"scale of '{activation}': {before} -> {after}");
        Assert.Equal(2 * before, after, 2 * before * 1e-5);

        // Calibrating afresh on this machine (no lock) gives the first output again: the difference came from the lock.
        var fresh = new Quantizer(QuantizeTestKit.Options()).Run(model, calibration, _folder.File("fresh.onnx"));
        Assert.NotEmpty(fresh.DecidedHere);
        Assert.Equal(File.ReadAllBytes(first), File.ReadAllBytes(_folder.File("fresh.onnx")));
    }

    /// <summary>
    /// conv1 3→8 → Relu → conv2 8→4 (output), and conv1 → Clip [0, 6] → conv3 8→4 (output): conv1's output is quantized and
    /// read only by activations that both saturate below 0 but that it cannot absorb (two readers), so its range is cut at 0
    /// and its negative values are saturation, not clipping.
    /// </summary>
    private static TestNet TwoActivationsNet()
    {
        var b = new TestModelBuilder(13, 29, false, "two-activations");
        var x = b.Input(TestNets.ImageInput, TestNets.ImageShape);
        var c = b.Conv("conv1", x, 3, 8);
        b.Conv("conv2", b.Relu("relu", c), 8, 4);
        b.Conv("conv3", b.Node("Clip", "clip", [c, b.Constant("clip.min", [], [0f]), b.Constant("clip.max", [], [6f])]), 8, 4);
        b.Output("conv2", 1, 4, 16, 16);
        b.Output("conv3", 1, 4, 16, 16);
        return new TestNet(b.Build(), TestNets.ImageInput, TestNets.ImageShape, b.ConvNodes);
    }

    [Fact]
    public void A_replayed_run_reports_the_same_accuracy_and_calibration_coverage_as_the_recording_run()
    {
        var net = TwoActivationsNet();
        var (model, calibration) = QuantizeTestKit.Prepare(net, _folder.Path);
        var validation = QuantizeTestKit.WriteCalibration(_folder.File("validation"), net.InputName, net.InputShape, QuantizeTestKit.HeldOutSeeds);
        var lockFile = TuningOptions.DefaultLockFile(model);
        QuantizationOptions Gated(bool record) => Options(lockFile, record) with
        {
            Validation = new ValidationOptions { Folder = validation, Checks = [AccuracyCheck.Parse("sqnr>=0")], LayerSamples = 2 },
        };

        var recording = new Quantizer(Gated(record: true)).Run(model, calibration, _folder.File("first.onnx"));
        var replayed = new Quantizer(Gated(record: false)).Run(model, calibration, _folder.File("replayed.onnx"));
        string Coverage(QuantizeResult r) => r.Validation?.Coverage is { } c
            ? $"{c.Tensors} tensors, {c.Clipped} of {c.Elements} clipped ({string.Join(", ", c.WorstTensors.Select(t => $"{t.Tensor} {t.Clipped} [{t.Low:G4}, {t.High:G4}]"))})"
            : "none";
        output.WriteLine($"recording: coverage {Coverage(recording)}; warnings {string.Join(", ", recording.Warnings.Select(w => w.Code))}");
        output.WriteLine($"replayed:  coverage {Coverage(replayed)}; warnings {string.Join(", ", replayed.Warnings.Select(w => w.Code))}");

        Assert.Empty(replayed.DecidedHere);
        Assert.Equal(File.ReadAllBytes(_folder.File("first.onnx")), File.ReadAllBytes(_folder.File("replayed.onnx")));
        Assert.Contains("conv1", QuantizedActivations(_folder.File("first.onnx")));
        Assert.Equal(0f, (float)Recorded(lockFile)["ranges"]!["conv1"]![0]!); // cut where both readers saturate
        Assert.Equal(recording.Validation!.Checks.Single().Value, replayed.Validation!.Checks.Single().Value);

        // Coverage excuses conv1's negative values on both runs (both its readers saturate there): the replayed candidate must
        // know its consumers' saturation bounds like the calibrated one, not only for the tensors with recorded channel ranges.
        Assert.True(Coverage(recording) == Coverage(replayed),
            $"calibration coverage differs when the lock is replayed:\nrecording: {Coverage(recording)}\nreplayed:  {Coverage(replayed)}");
        Assert.Equal(recording.Warnings.Select(w => w.Code), replayed.Warnings.Select(w => w.Code));
    }

    [Theory]
    [InlineData(CalibrationMethod.MinMax)]
    [InlineData(CalibrationMethod.Percentile)]
    [InlineData(CalibrationMethod.Entropy)]
    [InlineData(CalibrationMethod.Mse)]
    public void Replay_writes_the_recorded_bytes_for_every_calibration_method(CalibrationMethod method)
    {
        var (model, calibration) = QuantizeTestKit.Prepare(TestNets.ConvNet(), _folder.Path);
        var lockFile = TuningOptions.DefaultLockFile(model);
        var recording = new Quantizer(Options(lockFile, record: true) with { CalibrationMethod = method }).Run(model, calibration, _folder.File("first.onnx"));
        var replayed = new Quantizer(Options(lockFile, record: false) with { CalibrationMethod = method }).Run(model, calibration, _folder.File("replayed.onnx"));
        output.WriteLine($"{method}: recording {recording.CalibrationTime.TotalMilliseconds:F0} ms calibrating, replay {replayed.CalibrationTime.TotalMilliseconds:F0} ms");

        Assert.Equal(method.ToString().ToLowerInvariant(), Lock(lockFile).Recipe["calibration-method"]);
        Assert.Equal(OutputKind.Quantized, replayed.Output);
        Assert.Empty(replayed.DecidedHere);
        Assert.Equal(TimeSpan.Zero, replayed.CalibrationTime);
        Assert.Equal(File.ReadAllBytes(_folder.File("first.onnx")), File.ReadAllBytes(_folder.File("replayed.onnx")));
    }

    /// <summary>The scale of the QuantizeLinear that quantizes <paramref name="tensor"/>.</summary>
    private static float ScaleOf(string path, string tensor)
    {
        var graph = ModelLoader.Load(path).Graph;
        var quantize = graph.Node.First(n => n.OpType == "QuantizeLinear" && n.Input[0] == tensor);
        return TensorValues.ReadFloats(graph.Initializer.Single(t => t.Name == quantize.Input[1])).Single();
    }

    [Theory]
    [InlineData("kept-fp32-int8-not-faster", OutputKind.KeptFloat, ErrorCodes.KeptFloatNotFaster)]
    [InlineData("kept-fp32-below-min-speedup", OutputKind.KeptFloatFailedCheck, ErrorCodes.SpeedupTooLowShippedFp32)]
    public void A_recorded_FP32_decision_ships_FP32_whatever_this_machine_measures(string ship, OutputKind kind, string code)
    {
        var (model, calibration, lockFile, _, _) = Record();
        Edit(lockFile, root => root["recorded"]!["ship"] = ship);

        // KeepFloatIfSlower = false (QuantizeTestKit.Options): this run alone would ship INT8 whatever its timing.
        var result = new Quantizer(Options(lockFile, record: false)).Run(model, calibration, _folder.File("kept.onnx"));
        output.WriteLine($"{result.Output}; measured speed-up here {result.Latency.Speedup:F2}x; " + string.Join(" | ", result.Warnings.Select(w => $"{w.Code}: {w.Message}")));

        Assert.Equal(kind, result.Output);
        var warning = Assert.Single(result.Warnings, w => w.Code == code);
        Assert.Contains("lock file", warning.Message, StringComparison.Ordinal);
        Assert.Contains(ship, warning.Message, StringComparison.Ordinal);
        Assert.Contains(BuildMachine.Current.ClassLabel, warning.Message, StringComparison.Ordinal);
        Assert.Empty(result.DecidedHere);

        // The FP32 graph shipped: no Q/DQ, the source's nodes, and the provenance names the recorded decision.
        var written = _folder.File("kept.onnx");
        Assert.False(HasQdq(written));
        Assert.Equal(ModelLoader.Load(model).Graph.Node.Select(n => n.Name), ModelLoader.Load(written).Graph.Node.Select(n => n.Name));
        var settings = ModelLoader.Load(written).MetadataProps.Single(p => p.Key == Provenance.SettingsKey).Value;
        Assert.Contains($"\"result\":\"{ship}\"", settings, StringComparison.Ordinal);
    }

    [Fact]
    public void A_stale_lock_for_another_model_at_the_same_path_is_not_replayed()
    {
        var (model, calibration, lockFile, first, _) = Record();
        var lockBytes = File.ReadAllBytes(lockFile);
        ModelWriter.Save(TestNets.ConvNet(seed: 8).Model, model); // retrained: other weights, same file name

        var result = new Quantizer(Options(lockFile, record: false)).Run(model, calibration, _folder.File("other.onnx"));

        var stale = Assert.Single(result.Warnings, w => w.Code == ErrorCodes.LockFileStale);
        output.WriteLine(stale.Message);
        Assert.Contains("the model changed since it was tuned", stale.Message, StringComparison.Ordinal);
        Assert.Null(result.Tuning);
        Assert.Contains("calibrated activation ranges", result.DecidedHere);
        Assert.True(result.CalibrationTime > TimeSpan.Zero);
        Assert.Equal(OutputKind.Quantized, result.Output);
        Assert.NotEqual(File.ReadAllBytes(first), File.ReadAllBytes(_folder.File("other.onnx")));
        Assert.Equal(lockBytes, File.ReadAllBytes(lockFile)); // not recording: the stale lock is left for the user to refresh
    }

    [Fact]
    public void A_lock_without_a_recorded_run_still_applies_its_recipe_and_calibrates_here()
    {
        var (model, calibration, lockFile, _, _) = Record();
        // As written before the recorded run existed: the recipe (here without bias correction) and nothing measured.
        Edit(lockFile, root =>
        {
            root.Remove("recorded");
            root["recipe"]!["bias-correction"] = "false";
        });

        var result = new Quantizer(Options(lockFile, record: false)).Run(model, calibration, _folder.File("old-lock.onnx"));
        output.WriteLine($"{result.Output}; decided here: {string.Join(", ", result.DecidedHere)}; tuning: {result.Tuning?.Why}");

        Assert.Equal("lock-file", result.Tuning!.Source);
        Assert.Equal("false", result.Settings["bias-correction"]);
        Assert.DoesNotContain(result.Warnings, w => w.Code is ErrorCodes.LockFileStale or ErrorCodes.LockFileUnreadable);
        Assert.Equal(["calibrated activation ranges"], result.DecidedHere);
        Assert.True(result.CalibrationTime > TimeSpan.Zero);
        Assert.Equal(OutputKind.Quantized, result.Output);

        // The same bytes as a run with that recipe as its own settings and no lock.
        new Quantizer(QuantizeTestKit.Options() with { BiasCorrection = false }).Run(model, calibration, _folder.File("no-bias-correction.onnx"));
        Assert.Equal(File.ReadAllBytes(_folder.File("no-bias-correction.onnx")), File.ReadAllBytes(_folder.File("old-lock.onnx")));
        Assert.Null(Lock(lockFile).Recorded);
    }

    private static LockFile Lock(string path) => LockFile.Read(path);
}
