using Quantize.Onnx.Model;
using Quantize.Onnx.Reporting;
using Quantize.Onnx.Tests.TestModels;
using Quantize.Onnx.Tuning;
using Quantize.Onnx.Validation;
using Xunit.Abstractions;

namespace Quantize.Onnx.Tests.Tuning;

/// <summary>
/// Accuracy tuning on the small conv net: the check is set between what plain quantization reaches and what the
/// FP32 model reaches, so plain PTQ fails and only keeping some nodes float passes.
/// </summary>
public sealed class TunerTests(ITestOutputHelper output) : IDisposable
{
    private readonly Model.TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    private (string Model, string Calibration, string Validation) Prepare()
    {
        var net = TestNets.ConvNet();
        var (model, calibration) = QuantizeTestKit.Prepare(net, _folder.Path);
        var validation = QuantizeTestKit.WriteCalibration(Path.Combine(_folder.Path, "validation"), net.InputName, net.InputShape, QuantizeTestKit.HeldOutSeeds);
        return (model, calibration, validation);
    }

    private static QuantizationOptions Options(string validation, string check, TuningOptions? tuning) => QuantizeTestKit.Options() with
    {
        Validation = new ValidationOptions { Folder = validation, Checks = [AccuracyCheck.Parse(check)], LayerSamples = 2 },
        Tuning = tuning,
    };

    /// <summary>A check plain quantization fails by a few dB.</summary>
    private string UnreachableByPlainCheck(string model, string calibration, string validation)
    {
        var plain = new Quantizer(Options(validation, "sqnr>=0", null)).Run(model, calibration, _folder.File("plain.onnx"));
        var sqnr = plain.Validation!.Checks.Single().Value;
        output.WriteLine($"plain SQNR {sqnr:F2} dB");
        return FormattableString.Invariant($"sqnr>={sqnr + 6:F1}");
    }

    [Fact]
    public void A_failing_gate_is_tuned_to_the_cheapest_float_set_with_a_margin_the_lock_file_is_written_and_the_next_run_reuses_it()
    {
        var (model, calibration, validation) = Prepare();
        var check = UnreachableByPlainCheck(model, calibration, validation);
        var lockFile = _folder.File("model.quantization.json");
        var tuning = new TuningOptions { Enabled = true, LockFile = lockFile };

        var tuned = new Quantizer(Options(validation, check, tuning)).Run(model, calibration, _folder.File("tuned.onnx"));

        var report = Assert.IsType<TuningReport>(tuned.Tuning);
        foreach (var a in report.Attempts)
        {
            output.WriteLine($"{a.Number} {a.Step}: {(a.Passed ? "pass" : "fail")} margin {a.Margin:F3} {string.Join("; ", a.Checks)}");
        }

        Assert.Equal("searched", report.Source);
        Assert.True(report.Succeeded);
        Assert.True(tuned.Validation!.Passed);
        Assert.Equal(OutputKind.Quantized, tuned.Output);
        Assert.NotEmpty(report.FloatNodes);
        Assert.True(report.LockFileWritten);

        // Cheapest with a margin: the shipped set passes with the preferred margin (the check leaves room for it), and no
        // set that did so is a strict subset of it (that one would cost less float compute).
        var shipped = report.Attempts.Last(a => a.Passed && a.FloatNodes.ToHashSet().SetEquals(report.FloatNodes));
        Assert.True(shipped.Margin >= Tuner.PreferredMargin, $"shipped margin {shipped.Margin:F3}");
        Assert.DoesNotContain(report.Attempts, a => a.Passed && a.Margin >= Tuner.PreferredMargin
            && a.FloatNodes.Count < report.FloatNodes.Count && a.FloatNodes.All(report.FloatNodes.Contains));
        var written = ModelLoader.Load(_folder.File("tuned.onnx"));
        Assert.All(report.FloatNodes, n => Assert.Contains(written.Graph.Node, x => x.Name == n));
        Assert.Contains(written.Graph.Node, n => n.OpType == "QuantizeLinear");

        // The HTML report says what was chosen and lists every attempt, the chosen one highlighted.
        var html = HtmlReport.Render(tuned);
        Assert.Contains("<h2>Tuning <span class=\"badge ok\">passed</span></h2>", html, StringComparison.Ordinal);
        Assert.Contains("(written by this build: commit it)", html, StringComparison.Ordinal);
        Assert.Contains("<tr class=\"checked\"><td class=\"num\">", html, StringComparison.Ordinal);

        // The lock file names the model, the check and the float nodes; the next run uses it without searching.
        var text = File.ReadAllText(lockFile);
        Assert.Contains(LockFile.HashOf(model, []), text, StringComparison.Ordinal);
        Assert.Contains(check, text, StringComparison.Ordinal);
        var again = new Quantizer(Options(validation, check, tuning)).Run(model, calibration, _folder.File("again.onnx"));
        Assert.Equal("lock-file", again.Tuning!.Source);
        Assert.Empty(again.Tuning.Attempts);
        Assert.Equal(report.FloatNodes, again.Tuning.FloatNodes);
        Assert.True(again.Validation!.Passed);
        Assert.Equal(File.ReadAllBytes(_folder.File("tuned.onnx")), File.ReadAllBytes(_folder.File("again.onnx")));
        Assert.Equal(text, File.ReadAllText(lockFile));
    }

    [Fact]
    public void Locked_mode_needs_a_current_lock_file_and_a_stale_one_is_named_with_the_reason()
    {
        var (model, calibration, validation) = Prepare();
        var lockFile = _folder.File("model.quantization.json");

        var missing = Assert.Throws<QuantizeException>(() => new Quantizer(Options(validation, "sqnr>=5", new TuningOptions { Locked = true, LockFile = lockFile }))
            .Run(model, calibration, _folder.File("out.onnx")));
        Assert.Equal(ErrorCodes.LockFileNotCurrent, missing.Code);
        Assert.Equal(lockFile, missing.File);
        Assert.Contains("it does not exist", missing.Message, StringComparison.Ordinal);

        // A passing plain run with tuning on records the plain configuration.
        var first = new Quantizer(Options(validation, "sqnr>=5", new TuningOptions { Enabled = true, LockFile = lockFile })).Run(model, calibration, _folder.File("out.onnx"));
        Assert.Equal("not-needed", first.Tuning!.Source);
        Assert.True(File.Exists(lockFile));
        var locked = new Quantizer(Options(validation, "sqnr>=5", new TuningOptions { Locked = true, LockFile = lockFile })).Run(model, calibration, _folder.File("out.onnx"));
        Assert.Equal("lock-file", locked.Tuning!.Source);

        // Another check makes it stale: an error in locked mode, a warning otherwise.
        var stale = Assert.Throws<QuantizeException>(() => new Quantizer(Options(validation, "sqnr>=6", new TuningOptions { Locked = true, LockFile = lockFile }))
            .Run(model, calibration, _folder.File("out.onnx")));
        Assert.Equal(ErrorCodes.LockFileNotCurrent, stale.Code);
        Assert.Contains("the accuracy checks changed (locked: sqnr>=5; now: sqnr>=6)", stale.Message, StringComparison.Ordinal);
        var warned = new Quantizer(Options(validation, "sqnr>=6", new TuningOptions { LockFile = lockFile })).Run(model, calibration, _folder.File("out.onnx"));
        Assert.Contains(warned.Warnings, w => w.Code == ErrorCodes.LockFileStale && w.Message.Contains("accuracy checks changed", StringComparison.Ordinal));
        Assert.Null(warned.Tuning);

        // So does another setting the tuner does not choose.
        var settings = Assert.Throws<QuantizeException>(() => new Quantizer(Options(validation, "sqnr>=5", new TuningOptions { Locked = true, LockFile = lockFile }) with { FastKernelsOnly = false })
            .Run(model, calibration, _folder.File("out.onnx")));
        Assert.Contains("settings changed since it was tuned: fast-kernels-only", settings.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void The_lock_file_goes_stale_when_the_weights_in_an_external_data_file_change()
    {
        var net = TestNets.ConvNet();
        var (_, calibration, validation) = Prepare();
        var model = _folder.File("external.onnx");
        ModelWriter.Save(net.Model, model, inlineSizeLimit: net.Model.CalculateSize() - 1); // weights of 1 KB or more in external.onnx.data
        var lockFile = _folder.File("external.quantization.json");
        new Quantizer(Options(validation, "sqnr>=5", new TuningOptions { Enabled = true, LockFile = lockFile })).Run(model, calibration, _folder.File("out.onnx"));
        var locked = new Quantizer(Options(validation, "sqnr>=5", new TuningOptions { Locked = true, LockFile = lockFile })).Run(model, calibration, _folder.File("out.onnx"));
        Assert.Equal("lock-file", locked.Tuning!.Source);

        // Retrained weights, same .onnx file: the lock no longer describes this model.
        var data = File.ReadAllBytes(model + ".data");
        data[^8] ^= 0x01;
        File.WriteAllBytes(model + ".data", data);
        var stale = Assert.Throws<QuantizeException>(() => new Quantizer(Options(validation, "sqnr>=5", new TuningOptions { Locked = true, LockFile = lockFile }))
            .Run(model, calibration, _folder.File("out.onnx")));
        Assert.Equal(ErrorCodes.LockFileNotCurrent, stale.Code);
        Assert.Contains("the model changed since it was tuned", stale.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_corrupt_lock_file_is_QNT1404_naming_it()
    {
        var (model, calibration, validation) = Prepare();
        var lockFile = _folder.File("model.quantization.json");
        File.WriteAllText(lockFile, "{ \"schema\": \"quantize-lock/1\", \"recipe\": ");

        var e = Assert.Throws<QuantizeException>(() => new Quantizer(Options(validation, "sqnr>=5", new TuningOptions { Enabled = true, LockFile = lockFile }))
            .Run(model, calibration, _folder.File("out.onnx")));

        Assert.Equal(ErrorCodes.LockFileUnreadable, e.Code);
        Assert.Equal(lockFile, e.File);
        Assert.Contains("Delete it and build with tuning enabled", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void When_nothing_passes_within_the_budget_the_gate_error_says_what_tuning_tried()
    {
        var (model, calibration, validation) = Prepare();
        var lockFile = _folder.File("model.quantization.json");

        var e = Assert.Throws<QuantizeException>(() => new Quantizer(Options(validation, "sqnr>=500", new TuningOptions { Enabled = true, LockFile = lockFile, MaxAttempts = 3 }))
            .Run(model, calibration, _folder.File("out.onnx")));

        Assert.Equal(ErrorCodes.AccuracyCheckFailed, e.Code);
        Assert.Contains("Tuning tried 3 configuration(s)", e.Message, StringComparison.Ordinal);
        Assert.False(File.Exists(lockFile));
        Assert.Equal(3, e.Result!.Tuning!.Attempts.Count);
    }
}
