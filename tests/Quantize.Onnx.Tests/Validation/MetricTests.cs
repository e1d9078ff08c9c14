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
    public void Task_top1_reads_class_indices()
    {
        var labels = new TaskMetrics();
        labels.Add([0.1f, 0.7f, 0.2f, 0.6f, 0.3f, 0.1f], [1f, 2f], lastAxis: 3, labels: true);
        Assert.Equal(50, labels.Top1);
        Assert.False(labels.Values().ContainsKey("psnr"));
    }

    [Fact]
    public void Task_psnr_is_averaged_per_sample()
    {
        var psnr = new TaskMetrics();
        psnr.Add([0.5f, 0.5f], [0.6f, 0.4f], lastAxis: 1, labels: false); // MSE 0.01 -> 20 dB
        psnr.Add([0.5f, 0.5f], [0.5f, 0.5f], lastAxis: 1, labels: false); // identical -> capped at 100 dB
        Assert.Equal((20 + TaskMetrics.MaxPsnr) / 2, psnr.Psnr, 6);
    }

    [Fact]
    public void Top_k_metrics_match_hand_computed_ranks()
    {
        // Rows of 6 classes. FP32's class (argmax) and its rank in INT8's row:
        // row 0: fp32 class 0; int8 [0.1, 0.9, 0.8, 0.7, 0.6, 0.5] ranks class 0 sixth -> not top-1, not top-5;
        // row 1: fp32 class 2; int8 [0.5, 0.9, 0.6, 0, 0, 0] ranks class 2 second -> top-5 only;
        // row 2: fp32 class 5; int8 identical -> top-1 and top-5.
        float[] fp32 = [9, 0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0, 1];
        float[] int8 = [0.1f, 0.9f, 0.8f, 0.7f, 0.6f, 0.5f, 0.5f, 0.9f, 0.6f, 0, 0, 0, 0, 0, 0, 0, 0, 1];
        var fidelity = new FidelityMetrics([1, 2, 5]);
        fidelity.Add(fp32, int8, lastAxis: 6);
        Assert.Equal(100.0 / 3, fidelity.Values()["top1-agreement"], 9);
        Assert.Equal(200.0 / 3, fidelity.Values()["top2-agreement"], 9);
        Assert.Equal(200.0 / 3, fidelity.Values()["top5-agreement"], 9);

        // Against class labels [1, 3, 5] the INT8 rows give ranks 1 (top-1), 4 (top-5) and 1 (top-1).
        var task = new TaskMetrics([1, 5]);
        task.Add(int8, [1, 3, 5], lastAxis: 6, labels: true);
        Assert.Equal(200.0 / 3, task.Values()["top1"], 9);
        Assert.Equal(100, task.Values()["top5"], 9);

        // Ties rank the lower index first: in [1, 1, 0] class 1 is second.
        Assert.False(TopK.Contains([1f, 1f, 0f], 1, 1));
        Assert.True(TopK.Contains([1f, 1f, 0f], 1, 2));

        // A k as large as the class count says nothing and is not reported.
        var two = new FidelityMetrics([1, 5]);
        two.Add([1f, 0f], [1f, 0f], lastAxis: 2);
        Assert.Equal(["cosine", "max-abs-error", "psnr", "sqnr", "top1-agreement"], two.Values().Keys.Order());
    }

    [Fact]
    public void The_binary_threshold_decides_positives_for_precision_recall_f1()
    {
        // Output [0.35, 0.2, 0.45, 0.6] vs expected [1, 0, 0, 1]: at 0.3 predicted [1, 0, 1, 1] -> TP 2, FP 1, FN 0;
        // at the default 0.5 predicted [0, 0, 0, 1] -> TP 1, FP 0, FN 1.
        var low = new TaskMetrics(binaryThreshold: 0.3);
        low.Add([0.35f, 0.2f, 0.45f, 0.6f], [1f, 0f, 0f, 1f], lastAxis: 1, labels: false);
        Assert.Equal(200.0 / 3, low.Precision, 9);
        Assert.Equal(100, low.Recall, 9);
        Assert.Equal(80, low.F1, 9);

        var standard = new TaskMetrics();
        standard.Add([0.35f, 0.2f, 0.45f, 0.6f], [1f, 0f, 0f, 1f], lastAxis: 1, labels: false);
        Assert.Equal(100, standard.Precision, 9);
        Assert.Equal(50, standard.Recall, 9);
    }

    [Fact]
    public void Drop_is_positive_when_int8_is_worse()
    {
        Assert.Equal(2.5, AccuracyGate.Drop("psnr", 36.5, 34), 9);
        Assert.Equal(0.5, AccuracyGate.Drop("mse", 1, 1.5), 9);
        Assert.Equal(-1, AccuracyGate.Drop("top1", 90, 91), 9);
    }
}
