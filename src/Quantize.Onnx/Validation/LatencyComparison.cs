using System.Diagnostics;
using Microsoft.ML.OnnxRuntime;
using Quantize.Onnx.Model;

namespace Quantize.Onnx.Validation;

/// <summary>Whether INT8 is faster than FP32 beyond the measurement's noise.</summary>
public enum SpeedVerdict
{
    /// <summary>The speed-up's 95 % interval lies above 1.</summary>
    Faster,

    /// <summary>The interval contains 1: the machine's noise is larger than the difference.</summary>
    WithinNoise,

    /// <summary>The interval lies below 1.</summary>
    Slower,
}

/// <summary>Median latency of the FP32 and INT8 models on the same input, measured in one run.</summary>
public sealed record LatencyComparison(double Fp32Milliseconds, double Int8Milliseconds)
{
    /// <summary>Most timed runs per model when the first ones leave the verdict within noise (the measurement extends twice).</summary>
    private const int MaxRounds = 3;

    public double Speedup => Int8Milliseconds > 0 ? Fp32Milliseconds / Int8Milliseconds : 0;

    /// <summary>Intra-op threads of the sessions measured; 0 is ONNX Runtime's default (one per core), as most applications run.</summary>
    public int Threads { get; init; } = 1;

    /// <summary>Timed runs per model.</summary>
    public int Runs { get; init; }

    /// <summary>95 % bootstrap interval of <see cref="Speedup"/> over the interleaved run pairs; null when not measured.</summary>
    public ConfidenceInterval? SpeedupInterval { get; init; }

    /// <summary>Faster, slower, or within noise, from <see cref="SpeedupInterval"/>.</summary>
    public SpeedVerdict Verdict => SpeedupInterval is not { } ci ? (Speedup >= 1 ? SpeedVerdict.Faster : SpeedVerdict.Slower)
        : ci.Low > 1 ? SpeedVerdict.Faster : ci.High < 1 ? SpeedVerdict.Slower : SpeedVerdict.WithinNoise;

    /// <summary>The same comparison at one intra-op thread (the steadiest figure on a busy machine), when <see cref="Threads"/> is not 1.</summary>
    public LatencyComparison? SingleThread { get; init; }

    /// <summary>
    /// Whether ORT pre-packed the weights, as an application's session does. Not for models over 1 GiB of weights kept
    /// on disk (the packed copies would double their memory): both models then run slower than deployed, by different
    /// factors (a 768 MiB MLP: FP32 3.4×, INT8 1.9×), so the speed-up differs from an application's.
    /// </summary>
    public bool Prepacked { get; init; } = true;

    /// <summary>"2 threads" or "1 thread" or "all cores".</summary>
    public string ThreadsText => Threads switch { 0 => $"ORT default, {Environment.ProcessorCount} threads", 1 => "1 thread", var n => $"{n} threads" };

    /// <summary>
    /// At the application's thread count (<paramref name="threads"/>, 0 = ORT's default) and, when that is not 1, at one
    /// thread as well. Each measurement: full ORT optimisation as an application would use, warm-up runs, then FP32/INT8
    /// runs interleaved so that machine noise hits both alike; the speed-up is the ratio of medians with a bootstrap
    /// interval over the run pairs. A verdict within noise gets more runs (up to <see cref="MaxRounds"/>× as many).
    /// </summary>
    /// <param name="singleThreadToo">Also measure at 1 thread for the report (the tuner's attempts need only the deciding figure).</param>
    public static LatencyComparison Measure(byte[] fp32, byte[] int8, IReadOnlyDictionary<string, OrtValue> feeds, int runs, int warmup = 3, int threads = 1, bool singleThreadToo = true)
    {
        // More threads than this machine has cores would measure contention, not the app.
        threads = Math.Min(threads, Environment.ProcessorCount);
        var app = MeasureAt(fp32, int8, feeds, runs, warmup, threads);
        return threads == 1 || !singleThreadToo ? app : app with { SingleThread = MeasureAt(fp32, int8, feeds, runs, warmup, 1) };
    }

    private static LatencyComparison MeasureAt(byte[] fp32, byte[] int8, IReadOnlyDictionary<string, OrtValue> feeds, int runs, int warmup, int threads)
    {
        using var options = new SessionOptions
        {
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
            IntraOpNumThreads = threads,
            InterOpNumThreads = 1,
            ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
        };
        using var a = OrtSessions.Create(fp32, options);
        using var b = OrtSessions.Create(int8, options);
        using var runOptions = new RunOptions();
        var times = (A: new List<double>(), B: new List<double>());
        for (var i = 0; i < warmup; i++)
        {
            Time(a, runOptions, feeds);
            Time(b, runOptions, feeds);
        }

        LatencyComparison result;
        var round = 0;
        do
        {
            for (var i = 0; i < runs; i++)
            {
                times.A.Add(Time(a, runOptions, feeds));
                times.B.Add(Time(b, runOptions, feeds));
            }

            result = FromRuns(times.A, times.B, threads) with { Prepacked = OrtSessions.PrepacksWeights };
        }
        while (++round < MaxRounds && runs > 0 && result.Verdict == SpeedVerdict.WithinNoise);

        return result;
    }

    /// <summary>
    /// The comparison of interleaved run pairs: medians (a run slowed by the machine's load moves neither much) and the 95 %
    /// bootstrap interval of their ratio, resampling pairs so that noise hitting both models alike cancels.
    /// </summary>
    internal static LatencyComparison FromRuns(IReadOnlyList<double> fp32Runs, IReadOnlyList<double> int8Runs, int threads)
    {
        var (fp32Times, int8Times) = (fp32Runs.ToArray(), int8Runs.ToArray());
        var interval = fp32Times.Length < 3 ? null : Bootstrap.Interval(fp32Times.Length, indices =>
        {
            var int8Median = Median(indices.Select(i => int8Times[i]).ToList());
            return int8Median > 0 ? Median(indices.Select(i => fp32Times[i]).ToList()) / int8Median : 0;
        }, resamples: 400);
        return new LatencyComparison(Median([.. fp32Times]), Median([.. int8Times]))
        {
            Threads = threads,
            Runs = fp32Times.Length,
            SpeedupInterval = interval,
        };
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
