using Quantize.Onnx.Validation;

namespace Quantize.Onnx.Tests.Validation;

/// <summary>Every metric against numbers worked out by hand.</summary>
public sealed class MetricTests
{
    [Fact]
    public void Fidelity_metrics_match_hand_computed_values()
    {
        var m = new FidelityMetrics();

        // Sample 1: fp32 [3, 4], int8 [3, 3]; sample 2 (rows of 2 classes): fp32 [1, 0], int8 [0, 1].
        m.Add([3f, 4f], [3f, 3f], lastAxis: 2);
        m.Add([1f, 0f], [0f, 1f], lastAxis: 2);

        // Σref² = 9 + 16 + 1 = 26; Σnoise = 1 + 1 + 1 = 3.
        Assert.Equal(10 * Math.Log10(26.0 / 3), m.Sqnr, 9);

        // Cosine: (9 + 12) / (5 · sqrt(18)) and 0, averaged.
        Assert.Equal(((21 / (5 * Math.Sqrt(18))) + 0) / 2, m.Cosine, 9);

        // PSNR: peak = max |fp32| = 4, MSE = 3 / 4.
        Assert.Equal(10 * Math.Log10(16 / 0.75), m.Psnr, 9);
        Assert.Equal(1, m.MaxAbsError, 9);

        // Argmax rows: [3,4] vs [3,3] -> 1 vs 0 (ties pick the first); [1,0] vs [0,1] -> 0 vs 1.
        Assert.Equal(0, m.Top1Agreement);
        Assert.Equal(2, m.Samples);
    }

    [Fact]
    public void Fidelity_of_identical_outputs_is_infinite_and_agreement_is_full()
    {
        var m = new FidelityMetrics();
        m.Add([0.1f, 0.9f, 0.7f, 0.3f], [0.1f, 0.9f, 0.7f, 0.3f], lastAxis: 2);

        Assert.True(double.IsPositiveInfinity(m.Sqnr));
        Assert.True(double.IsPositiveInfinity(m.Psnr));
        Assert.Equal(1, m.Cosine, 12);
        Assert.Equal(100, m.Top1Agreement);
        Assert.Equal(0, m.MaxAbsError);
    }

    [Fact]
    public void Top1_agreement_is_undefined_without_a_class_axis()
    {
        var m = new FidelityMetrics();
        m.Add([1f, 2f], [1f, 2f], lastAxis: 1);

        Assert.True(double.IsNaN(m.Top1Agreement));
        Assert.False(m.Values().ContainsKey("top1-agreement"));
    }

    [Fact]
    public void Task_metrics_match_hand_computed_values()
    {
        var m = new TaskMetrics();

        // Output [0.8, 0.2, 1.5, 0.4] vs expected [1, 0, 1, 1] (two rows of two classes).
        m.Add([0.8f, 0.2f, 1.5f, 0.4f], [1f, 0f, 1f, 1f], lastAxis: 2, labels: false);

        // Differences -0.2, 0.2, 0.5, -0.6: MSE (0.04+0.04+0.25+0.36)/4, MAE 1.5/4.
        Assert.Equal(0.69 / 4, m.Mse, 6);
        Assert.Equal(1.5 / 4, m.Mae, 6);

        // PSNR clips to [0, 1]: 1.5 -> 1, so squared errors 0.04, 0.04, 0, 0.36.
        Assert.Equal(10 * Math.Log10(1 / (0.44 / 4)), m.Psnr, 5);

        // Binary at 0.5: predicted [1, 0, 1, 0], truth [1, 0, 1, 1] -> TP 2, FP 0, FN 1.
        Assert.Equal(100, m.Precision, 9);
        Assert.Equal(200.0 / 3, m.Recall, 9);
        Assert.Equal(2 * 100 * (200.0 / 3) / (100 + (200.0 / 3)), m.F1, 9);

        // Rows: argmax [0.8, 0.2] = 0 vs [1, 0] = 0 (right); [1.5, 0.4] = 0 vs [1, 1] = 0 (right).
        Assert.Equal(100, m.Top1);
    }

    [Fact]
    public void Task_top1_reads_class_indices_and_psnr_is_averaged_per_sample()
    {
        var labels = new TaskMetrics();
        labels.Add([0.1f, 0.7f, 0.2f, 0.6f, 0.3f, 0.1f], [1f, 2f], lastAxis: 3, labels: true);
        Assert.Equal(50, labels.Top1);
        Assert.False(labels.Values().ContainsKey("psnr"));

        var psnr = new TaskMetrics();
        psnr.Add([0.5f, 0.5f], [0.6f, 0.4f], lastAxis: 1, labels: false); // MSE 0.01 -> 20 dB
        psnr.Add([0.5f, 0.5f], [0.5f, 0.5f], lastAxis: 1, labels: false); // identical -> capped at 100 dB
        Assert.Equal((20 + TaskMetrics.MaxPsnr) / 2, psnr.Psnr, 6);
    }

    [Fact]
    public void Drop_is_positive_when_int8_is_worse()
    {
        Assert.Equal(2.5, AccuracyGate.Drop("psnr", 36.5, 34), 9);
        Assert.Equal(0.5, AccuracyGate.Drop("mse", 1, 1.5), 9);
        Assert.Equal(-1, AccuracyGate.Drop("top1", 90, 91), 9);
    }
}
