using Quantize.Onnx.Model.Proto;
using Quantize.Onnx.Tests.TestModels;
using Quantize.Onnx.Validation;
using Xunit.Abstractions;

namespace Quantize.Onnx.Tests.Quantization;

/// <summary>
/// A real voice-activity model (Silero VAD v5, MIT, tests/Quantize.MSBuild.Tests/Data/NOTICE.md): its convs sit in the
/// branches of an If on the sample rate and its LSTM in Ifs nested in them (torch's rank tests), with weights that ORT's
/// constant folding copies into both branches of each. Before control-flow support it came out larger (2.33 → 3.31 MB)
/// with no integer kernel; calibrated on speech frames it is quantized on both sample rates.
/// </summary>
public sealed class SileroVadTests(ITestOutputHelper output) : IDisposable
{
    private static readonly string Data = Path.Combine(Repository.Root, "tests", "Quantize.MSBuild.Tests", "Data");

    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    [Fact]
    public void Convs_and_lstms_in_both_sample_rate_branches_run_on_integer_kernels_smaller_and_close_to_fp32()
    {
        var path = _folder.File("silero_vad_v5.int8.onnx");
        var validation = new ValidationOptions { Folder = Path.Combine(Data, "silero_vad.validation") };

        var result = new Quantizer(QuantizeTestKit.Options() with { LatencyRuns = 20, Validation = validation })
            .Run(Path.Combine(Data, "silero_vad_v5.onnx"), Path.Combine(Data, "silero_vad.calibration"), path);

        foreach (var w in result.Warnings)
        {
            output.WriteLine($"{w.Code}: {w.Message}");
        }

        var sqnr = result.Validation!.Metrics.Where(m => m.Metric == "sqnr").ToDictionary(m => m.Output, m => m.Int8);
        output.WriteLine($"{result.Fp32Bytes} → {result.Int8Bytes} bytes, {string.Join(", ", result.Fusion.IntegerKernels.Select(k => $"{k.Value} {k.Key}"))}, " +
            $"speed-up {result.Latency.Speedup:F2} (1 thread {result.Latency.SingleThread?.Speedup:F2}); SQNR on {result.Validation.Samples} validation frames: " +
            string.Join(", ", sqnr.Select(kv => $"{kv.Key} {kv.Value:F1} dB")));
        Assert.DoesNotContain(result.Warnings, w => w.Code is ErrorCodes.StaysFloat or ErrorCodes.BranchNotCalibrated or ErrorCodes.UnfusedGroups);
        Assert.Equal(12, result.Fusion.IntegerKernels.GetValueOrDefault("QLinearConv"));
        Assert.Equal(4, result.Fusion.IntegerKernels.GetValueOrDefault("DynamicQuantizeLSTM"));
        Assert.True(result.Int8Bytes < result.Fp32Bytes / 3, $"{result.Int8Bytes} vs {result.Fp32Bytes}");

        // Each sample-rate branch runs its 6 convs as QLinearConv and its LSTM (one per state-rank branch) as DynamicQuantizeLSTM.
        var sampleRate = Assert.Single(QuantizeTestKit.OptimizedGraph(path).Node, n => n.OpType == "If");
        foreach (var branch in sampleRate.Attribute.Select(a => a.G))
        {
            Assert.Equal(6, branch.Count("QLinearConv"));
            Assert.Equal(0, branch.Count("Conv") + branch.Count("FusedConv"));
            Assert.Equal(2, AllNodes(branch).Count(n => n.OpType == "DynamicQuantizeLSTM"));
            Assert.DoesNotContain(AllNodes(branch), n => n.OpType == "LSTM");
        }

        Assert.True(sqnr["output"] > 30, $"speech probability: SQNR {sqnr["output"]:F1} dB");
        Assert.True(sqnr["stateN"] > 25, $"LSTM state: SQNR {sqnr["stateN"]:F1} dB");
    }

    private static IEnumerable<NodeProto> AllNodes(GraphProto graph) =>
        graph.Node.SelectMany(n => n.Attribute.Where(a => a.G is not null).SelectMany(a => AllNodes(a.G)).Prepend(n));
}
