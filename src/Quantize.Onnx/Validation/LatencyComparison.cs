using System.Diagnostics;
using Microsoft.ML.OnnxRuntime;
using Quantize.Onnx.Model;

namespace Quantize.Onnx.Validation;

/// <summary>Median latency of the FP32 and INT8 models on the same input, measured in one run.</summary>
public sealed record LatencyComparison(double Fp32Milliseconds, double Int8Milliseconds)
{
    public double Speedup => Int8Milliseconds > 0 ? Fp32Milliseconds / Int8Milliseconds : 0;

    /// <summary>
    /// Whether ORT pre-packed the weights, as an application's session does. Not for models over 1 GiB of weights kept
    /// on disk (the packed copies would double their memory): both models then run slower than deployed, by different
    /// factors (a 768 MiB MLP: FP32 3.4×, INT8 1.9×), so the speed-up differs from an application's.
    /// </summary>
    public bool Prepacked { get; init; } = true;

    /// <summary>
    /// One intra-op thread and sequential execution (stable on a busy build machine), full ORT
    /// optimisation as an application would use, warm-up runs, then runs interleaved FP32/INT8 so
    /// that machine noise hits both models alike.
    /// </summary>
    public static LatencyComparison Measure(byte[] fp32, byte[] int8, IReadOnlyDictionary<string, OrtValue> feeds, int runs, int warmup = 3)
    {
        using var options = new SessionOptions
        {
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
            IntraOpNumThreads = 1,
            InterOpNumThreads = 1,
            ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
        };
        using var a = OrtSessions.Create(fp32, options);
        using var b = OrtSessions.Create(int8, options);
        using var runOptions = new RunOptions();
        var times = (A: new List<double>(), B: new List<double>());
        for (var i = 0; i < warmup + runs; i++)
        {
            var ta = Time(a, runOptions, feeds);
            var tb = Time(b, runOptions, feeds);
            if (i >= warmup)
            {
                times.A.Add(ta);
                times.B.Add(tb);
            }
        }

        return new LatencyComparison(Median(times.A), Median(times.B)) { Prepacked = OrtSessions.PrepacksWeights };
    }

    private static double Time(InferenceSession session, RunOptions runOptions, IReadOnlyDictionary<string, OrtValue> feeds)
    {
        var start = Stopwatch.GetTimestamp();
        using (session.Run(runOptions, feeds, session.OutputNames))
        {
        }

        return Stopwatch.GetElapsedTime(start).TotalMilliseconds;
    }

    private static double Median(List<double> values)
    {
        values.Sort();
        var n = values.Count;
        return n == 0 ? 0 : n % 2 == 1 ? values[n / 2] : (values[(n / 2) - 1] + values[n / 2]) / 2;
    }
}
