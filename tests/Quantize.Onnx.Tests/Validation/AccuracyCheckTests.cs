using Quantize.Onnx.Validation;

namespace Quantize.Onnx.Tests.Validation;

public sealed class AccuracyCheckTests
{
    [Theory]
    [InlineData("sqnr>=20", "sqnr", null, true, 20, false)]
    [InlineData("top1-agreement@prob>=99.5", "top1-agreement", "prob", true, 99.5, false)]
    [InlineData("max-abs-error<=0.05", "max-abs-error", null, false, 0.05, false)]
    [InlineData("drop:psnr<=0.5", "psnr", null, false, 0.5, true)]
    [InlineData(" drop:top1@softmax_0.tmp_0 <= 1 ", "top1", "softmax_0.tmp_0", false, 1, true)]
    [InlineData("MSE@out<=1e-3", "mse", "out", false, 0.001, false)]
    [InlineData("f1>=90", "f1", null, true, 90, false)]
    [InlineData("drop:top5<=0.5", "top5", null, false, 0.5, true)]
    [InlineData("top3-agreement@logits>=99", "top3-agreement", "logits", true, 99, false)]
    public void Valid_specs_parse(string spec, string metric, string? output, bool atLeast, double threshold, bool isDrop)
    {
        var check = AccuracyCheck.Parse(spec);

        Assert.Equal(metric, check.Metric);
        Assert.Equal(output, check.Output);
        Assert.Equal(atLeast, check.AtLeast);
        Assert.Equal(threshold, check.Threshold, 12);
        Assert.Equal(isDrop, check.IsDrop);
        Assert.Equal(spec.Trim(), check.Spec);
    }

    [Theory]
    [InlineData("sqnr", "no >= or <=")]
    [InlineData("sqnr>20", "no >= or <=")]
    [InlineData("accuracy>=90", "'accuracy' is not a metric")]
    [InlineData("sqnr>=abc", "'abc' is not a number")]
    [InlineData("sqnr@>=10", "empty")]
    [InlineData("drop:sqnr<=1", "not a ground-truth metric")]
    [InlineData("drop:top5-agreement<=1", "not a ground-truth metric")]
    [InlineData("top0>=1", "'top0' is not a metric")]
    [InlineData("top05>=1", "'top05' is not a metric")]
    [InlineData("drop:psnr>=1", "from above")]
    [InlineData(">=3", "no >= or <=")]
    [InlineData("x-agreement>=1", "'x-agreement' is not a metric")] // once ArgumentOutOfRangeException from the top-k name rule
    public void Invalid_specs_are_QNT1201_naming_the_spec_and_the_grammar(string spec, string reason)
    {
        var e = Assert.Throws<QuantizeException>(() => AccuracyCheck.Parse(spec));

        Assert.Equal(ErrorCodes.InvalidOption, e.Code);
        Assert.Contains($"'{spec}'", e.Message, StringComparison.Ordinal);
        Assert.Contains(reason, e.Message, StringComparison.Ordinal);
        Assert.Contains("drop:<metric>[@<output>]<=<value>", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Defaults_add_top1_agreement_for_classifier_outputs()
    {
        Assert.Equal(["sqnr>=10"], AccuracyCheck.Defaults(classifierOutput: false).Select(c => c.Spec));
        Assert.Equal(["sqnr>=10", "top1-agreement>=95"], AccuracyCheck.Defaults(classifierOutput: true).Select(c => c.Spec));
    }
}
