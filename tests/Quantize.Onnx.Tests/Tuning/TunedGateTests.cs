using Quantize.Onnx.Model;
using Quantize.Onnx.Reporting;
using Quantize.Onnx.Tuning;
using Xunit.Abstractions;

namespace Quantize.Onnx.Tests.Tuning;

/// <summary>
/// The small conv net under a gate plain quantization misses by 6 dB, tuned once with a lock file, then quantized
/// again with that lock file: the two runs every <see cref="TunedGateTests"/> test reads.
/// </summary>
public sealed class TunedGateFixture : IDisposable
{
    private readonly TempFolder _folder = new();
    private readonly List<string> _log = [];

    public TunedGateFixture()
    {
        (Model, Calibration, Validation) = TunerTests.Prepare(_folder);
        var plain = new Quantizer(TunerTests.Options(Validation, "sqnr>=0", null)).Run(Model, Calibration, _folder.File("plain.onnx"));
        var sqnr = plain.Validation!.Checks.Single().Value;
        _log.Add($"plain SQNR {sqnr:F2} dB");
        Check = FormattableString.Invariant($"sqnr>={sqnr + 6:F1}");

        LockFile = _folder.File("model.quantization.json");
        var tuning = new TuningOptions { Enabled = true, LockFile = LockFile };
        TunedModel = _folder.File("tuned.onnx");
        Tuned = new Quantizer(TunerTests.Options(Validation, Check, tuning)).Run(Model, Calibration, TunedModel);
        foreach (var a in Tuned.Tuning?.Attempts ?? [])
        {
            _log.Add($"{a.Number} {a.Step}: {(a.Passed ? "pass" : "fail")} margin {a.Margin:F3} {string.Join("; ", a.Checks)}");
        }

        LockText = File.ReadAllText(LockFile);
        AgainModel = _folder.File("again.onnx");
        Again = new Quantizer(TunerTests.Options(Validation, Check, tuning)).Run(Model, Calibration, AgainModel);
        LockTextAfterAgain = File.ReadAllText(LockFile);
    }

    public string Model { get; }

    public string Calibration { get; }

    public string Validation { get; }

    /// <summary>The gate: 6 dB above the SQNR plain quantization reaches.</summary>
    public string Check { get; }

    public string LockFile { get; }

    /// <summary>The tuning run (no lock file yet: it searches and writes one).</summary>
    public QuantizeResult Tuned { get; }

    public string TunedModel { get; }

    /// <summary>The lock file as the tuning run wrote it.</summary>
    public string LockText { get; }

    /// <summary>The next run, with the lock file the tuning run wrote.</summary>
    public QuantizeResult Again { get; }

    public string AgainModel { get; }

    /// <summary>The lock file after the next run.</summary>
    public string LockTextAfterAgain { get; }

    /// <summary>The plain SQNR and every tuning attempt, for the output of a failing test.</summary>
    public string Log => string.Join(Environment.NewLine, _log);

    public void Dispose() => _folder.Dispose();
}

/// <summary>
/// A failing gate tuned to the cheapest float set with a margin, the lock file written, and the next run reusing it:
/// one behaviour a test, all read from the two runs of <see cref="TunedGateFixture"/>.
/// </summary>
public sealed class TunedGateTests : IClassFixture<TunedGateFixture>
{
    private readonly TunedGateFixture _fixture;

    public TunedGateTests(TunedGateFixture fixture, ITestOutputHelper output)
    {
        _fixture = fixture;
        output.WriteLine(fixture.Log);
    }

    private TuningReport Report => Assert.IsType<TuningReport>(_fixture.Tuned.Tuning);

    [Fact]
    public void A_gate_plain_quantization_fails_is_passed_by_searching_for_nodes_to_keep_float()
    {
        Assert.Equal("searched", Report.Source);
        Assert.True(Report.Succeeded);
        Assert.True(_fixture.Tuned.Validation!.Passed);
        Assert.Equal(OutputKind.Quantized, _fixture.Tuned.Output);
        Assert.NotEmpty(Report.FloatNodes);
    }

    [Fact]
    public void The_shipped_float_set_is_the_cheapest_that_passes_with_the_preferred_margin()
    {
        // The shipped set passes with the preferred margin (the check leaves room for it), and no set that did so is a
        // strict subset of it (that one would cost less float compute).
        var shipped = Report.Attempts.Last(a => a.Passed && a.FloatNodes.ToHashSet().SetEquals(Report.FloatNodes));
        Assert.True(shipped.Margin >= Tuner.PreferredMargin, $"shipped margin {shipped.Margin:F3}");
        Assert.DoesNotContain(Report.Attempts, a => a.Passed && a.Margin >= Tuner.PreferredMargin
            && a.FloatNodes.Count < Report.FloatNodes.Count && a.FloatNodes.All(Report.FloatNodes.Contains));
    }

    [Fact]
    public void The_written_model_is_int8_but_for_the_chosen_float_nodes()
    {
        var written = ModelLoader.Load(_fixture.TunedModel);

        Assert.NotEmpty(Report.FloatNodes); // or the next line checks nothing
        Assert.All(Report.FloatNodes, n => Assert.Contains(written.Graph.Node, x => x.Name == n));
        Assert.Contains(written.Graph.Node, n => n.OpType == "QuantizeLinear");
    }

    [Fact]
    public void The_html_report_shows_the_passed_tuning_with_every_attempt_the_chosen_one_highlighted()
    {
        var html = HtmlReport.Render(_fixture.Tuned);

        Assert.Contains("<h2>Tuning <span class=\"badge ok\">passed</span></h2>", html, StringComparison.Ordinal);
        Assert.Contains("(written by this build: commit it)", html, StringComparison.Ordinal);
        Assert.Contains("<tr class=\"checked\"><td class=\"num\">", html, StringComparison.Ordinal);
    }

    [Fact]
    public void The_tuning_run_writes_a_lock_file_naming_the_model_hash_with_the_check()
    {
        Assert.True(Report.LockFileWritten);
        Assert.Contains(LockFile.HashOf(_fixture.Model, []), _fixture.LockText, StringComparison.Ordinal);
        Assert.Contains(_fixture.Check, _fixture.LockText, StringComparison.Ordinal);
    }

    [Fact]
    public void The_next_run_takes_the_float_set_from_the_lock_file_without_searching()
    {
        Assert.Equal("lock-file", _fixture.Again.Tuning!.Source);
        Assert.Empty(_fixture.Again.Tuning.Attempts);
        Assert.Equal(Report.FloatNodes, _fixture.Again.Tuning.FloatNodes);
        Assert.True(_fixture.Again.Validation!.Passed);
    }

    [Fact]
    public void The_run_from_the_lock_file_writes_the_tuned_model_byte_for_byte()
    {
        Assert.Equal(File.ReadAllBytes(_fixture.TunedModel), File.ReadAllBytes(_fixture.AgainModel));
    }

    [Fact]
    public void The_run_from_the_lock_file_leaves_it_unchanged()
    {
        Assert.Equal(_fixture.LockText, _fixture.LockTextAfterAgain);
    }
}
