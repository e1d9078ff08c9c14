using Quantize.Onnx.Model;
using Quantize.Onnx.Tests.TestModels;
using Quantize.Onnx.Tuning;
using Quantize.Onnx.Validation;

namespace Quantize.Onnx.Tests.Tuning;

/// <summary>
/// Accuracy tuning on the small conv net: the lock file (missing, recorded, stale, corrupt) and a budget nothing passes
/// within. The search itself (a check plain PTQ misses, passed by keeping some nodes float) is <see cref="TunedGateTests"/>.
/// </summary>
public sealed class TunerTests : IDisposable
{
    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    /// <summary>The conv net, its calibration samples and held-out validation samples, written to <paramref name="folder"/>.</summary>
    internal static (string Model, string Calibration, string Validation) Prepare(TempFolder folder)
    {
        var net = TestNets.ConvNet();
        var (model, calibration) = QuantizeTestKit.Prepare(net, folder.Path);
        var validation = QuantizeTestKit.WriteCalibration(Path.Combine(folder.Path, "validation"), net.InputName, net.InputShape, QuantizeTestKit.HeldOutSeeds);
        return (model, calibration, validation);
    }

    private (string Model, string Calibration, string Validation) Prepare() => Prepare(_folder);

    internal static QuantizationOptions Options(string validation, string check, TuningOptions? tuning) => QuantizeTestKit.Options() with
    {
        Validation = new ValidationOptions { Folder = validation, Checks = [AccuracyCheck.Parse(check)], LayerSamples = 2 },
        Tuning = tuning,
    };

    // A failing gate tuned to the cheapest float set with a margin, the lock file it writes and the next run that
    // reuses it: TunedGateTests, one behaviour a test over the runs of one fixture.

    /// <summary>The conv net with a lock file recorded for <paramref name="check"/> by a passing plain run with tuning on.</summary>
    private (string Model, string Calibration, string Validation, string LockFile, QuantizeResult Recording) Recorded(string check)
    {
        var (model, calibration, validation) = Prepare();
        var lockFile = _folder.File("model.quantization.json");
        var recording = new Quantizer(Options(validation, check, new TuningOptions { Enabled = true, LockFile = lockFile })).Run(model, calibration, _folder.File("out.onnx"));
        return (model, calibration, validation, lockFile, recording);
    }

    [Fact]
    public void Locked_mode_without_a_lock_file_is_QNT1403_naming_it()
    {
        var (model, calibration, validation) = Prepare();
        var lockFile = _folder.File("model.quantization.json");

        var missing = Assert.Throws<QuantizeException>(() => new Quantizer(Options(validation, "sqnr>=5", new TuningOptions { Locked = true, LockFile = lockFile }))
            .Run(model, calibration, _folder.File("out.onnx")));

        Assert.Equal(ErrorCodes.LockFileNotCurrent, missing.Code);
        Assert.Equal(lockFile, missing.File);
        Assert.Contains("it does not exist", missing.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_plain_run_that_passes_with_tuning_on_records_a_lock_file_that_locked_mode_accepts()
    {
        var (model, calibration, validation, lockFile, first) = Recorded("sqnr>=5");
        Assert.Equal("not-needed", first.Tuning!.Source);
        Assert.True(File.Exists(lockFile));

        var locked = new Quantizer(Options(validation, "sqnr>=5", new TuningOptions { Locked = true, LockFile = lockFile })).Run(model, calibration, _folder.File("out.onnx"));

        Assert.Equal("lock-file", locked.Tuning!.Source);
    }

    [Fact]
    public void Locked_mode_refuses_a_lock_file_tuned_for_other_checks_with_QNT1403_naming_both()
    {
        var (model, calibration, validation, lockFile, _) = Recorded("sqnr>=5");

        var stale = Assert.Throws<QuantizeException>(() => new Quantizer(Options(validation, "sqnr>=6", new TuningOptions { Locked = true, LockFile = lockFile }))
            .Run(model, calibration, _folder.File("out.onnx")));

        Assert.Equal(ErrorCodes.LockFileNotCurrent, stale.Code);
        Assert.Contains("the accuracy checks changed (locked: sqnr>=5; now: sqnr>=6)", stale.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Outside_locked_mode_a_lock_file_tuned_for_other_checks_is_left_unapplied_with_warning_QNT2405()
    {
        var (model, calibration, validation, lockFile, _) = Recorded("sqnr>=5");

        var warned = new Quantizer(Options(validation, "sqnr>=6", new TuningOptions { LockFile = lockFile })).Run(model, calibration, _folder.File("out.onnx"));

        Assert.Contains(warned.Warnings, w => w.Code == ErrorCodes.LockFileStale && w.Message.Contains("accuracy checks changed", StringComparison.Ordinal));
        Assert.Null(warned.Tuning);
    }

    [Fact]
    public void Locked_mode_refuses_a_lock_file_tuned_with_other_settings_naming_them()
    {
        var (model, calibration, validation, lockFile, _) = Recorded("sqnr>=5");

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
