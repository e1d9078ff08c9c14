using Microsoft.Build.Utilities;
using Quantize.Common;
using Quantize.Onnx;
using Quantize.Onnx.Validation;

namespace Quantize.MSBuild.Tests;

/// <summary>
/// The accuracy-check grammar on both sides of the process boundary (src/Common/AccuracyCheckSyntax.cs): what the task
/// accepts when the build starts is exactly what the worker accepts after calibration, and means the same check.
/// </summary>
public sealed class SharedRulesTests
{
    /// <summary>A check as a user writes it, and the text the task passes to the worker (null: rejected).</summary>
    public static TheoryData<string, string?> Checks => new()
    {
        { "sqnr>=20", "sqnr>=20" },
        { " SQNR >= 20 ", "sqnr>=20" },
        { "top1-agreement@prob>=99.5", "top1-agreement@prob>=99.5" },
        { "max-abs-error<=0.05", "max-abs-error<=0.05" },
        { "DROP:PSNR@Output_1 <= 0.5", "drop:psnr@Output_1<=0.5" },
        { "MSE@out<=1e-3", "mse@out<=1e-3" },
        { "drop:top5<=+0.5", "drop:top5<=+0.5" },
        { "cosine>=.99", "cosine>=.99" },
        { "sqnr@my output>=10", "sqnr@my output>=10" },
        // The task used to reject these four, which the worker accepted: a space after drop: or before @, a comparison in an output name.
        { "drop: psnr<=0.5", "drop:psnr<=0.5" },
        { "sqnr @out>=10", "sqnr@out>=10" },
        { "sqnr@a>=b>=1", "sqnr@a>=b>=1" },
        { "sqnr@a<=b>=1", "sqnr@a<=b>=1" },
        { "sqnr", null },
        { "sqnr>20", null },
        { "sqnr=>10", null },
        { ">=3", null },
        { "sqnr>=ten", null },
        { "sqnr>=1,000", null },
        { "cosine>=NaN", null },
        { "sqnr>=1e400", null },
        { "sqnr@>=10", null },
        { "accuracy>=90", null },
        { "top0>=1", null },
        { "top05>=1", null },
        { "x-agreement>=1", null }, // the engine's own top-k parser threw ArgumentOutOfRangeException on it
        { "drop:sqnr<=1", null },
        { "drop:top5-agreement<=1", null },
        { "drop:psnr>=1", null },
        { "sqnr<=1>=2", null },
    };

    [Theory]
    [MemberData(nameof(Checks))]
    public void A_check_is_valid_for_the_task_exactly_when_it_is_for_the_engine_and_means_the_same(string spec, string? passed)
    {
        var problems = new List<QuantizeSettings.Problem>();
        var values = QuantizeSettings.Resolve(
            new TaskItem("Models/m.onnx"), new Dictionary<string, string> { [SettingSpecs.AccuracyChecks] = spec }, problems);
        var engineError = Record.Exception(() => AccuracyCheck.Parse(spec));

        if (passed is null)
        {
            // QNT3001 when the build starts, QNT1201 in the worker: both name the check and the grammar.
            var problem = Assert.Single(problems);
            Assert.Contains($"'{spec.Trim()}' for {SettingSpecs.AccuracyChecks}", problem.Message);
            Assert.Contains(AccuracyCheckSyntax.Forms, problem.Message);
            var error = Assert.IsType<QuantizeException>(engineError);
            Assert.Equal(ErrorCodes.InvalidOption, error.Code);
            Assert.StartsWith($"Invalid accuracy check '{spec}': ", error.Message);
            Assert.EndsWith($"Expected {AccuracyCheckSyntax.Grammar}.", error.Message);
            return;
        }

        Assert.Empty(problems);
        Assert.Null(engineError);
        Assert.Equal(passed, values[SettingSpecs.AccuracyChecks]);
        // The worker parses the text the task passes to the check the user wrote.
        var written = AccuracyCheck.Parse(spec);
        var received = AccuracyCheck.Parse(passed);
        Assert.Equal(written with { Spec = received.Spec }, received);
    }
}
