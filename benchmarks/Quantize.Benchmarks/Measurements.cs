using System.Diagnostics;
using Microsoft.ML.OnnxRuntime;
using Quantize.Onnx.Samples;
using Quantize.Onnx.Validation;

namespace Quantize.Benchmarks;

/// <summary>Median and spread of timed runs, in milliseconds.</summary>
internal sealed record Timing(double Median, double Min, double P90, int Runs);

/// <summary>Bare FP32 inference of a sample set: model load, then all runs.</summary>
internal sealed record BareRun(TimeSpan Load, TimeSpan Runs)
{
    public TimeSpan Total => Load + Runs;

    /// <summary>The faster of two measurements (less disturbed by other load on the machine).</summary>
    public static BareRun Min(BareRun a, BareRun b) => new(a.Load < b.Load ? a.Load : b.Load, a.Runs < b.Runs ? a.Runs : b.Runs);
}

/// <summary>Task quality of one model variant (FP32, ours, default recipe) on the validation set.</summary>
internal sealed class VariantQuality
{
    public Dictionary<string, SqnrAccumulator> SqnrVsExpected { get; } = new(StringComparer.Ordinal);

    public double PsnrSum { get; set; }

    public int Correct { get; set; }

    public int AgreesWithFp32 { get; set; }

    public long MapPixelsAgree { get; set; }

    public long MapPixels { get; set; }

    public long MapIntersection { get; set; }

    public long MapUnion { get; set; }

    public int Samples { get; set; }

    /// <summary>The lowest SQNR over the model's outputs (all corpus models have one).</summary>
    public double Sqnr => SqnrVsExpected.Count == 0 ? double.NaN : SqnrVsExpected.Values.Min(a => a.Decibels);

    public double Psnr => PsnrSum / Samples;

    public double Accuracy => (double)Correct / Samples;

    public double Agreement => (double)AgreesWithFp32 / Samples;

    public double PixelAgreement => (double)MapPixelsAgree / MapPixels;

    public double MapIoU => MapUnion == 0 ? 1 : (double)MapIntersection / MapUnion;
}

internal static class Measurements
{
    /// <summary>
    /// Latency as an application on one core would see it: 1 intra-op thread, sequential, full ORT
    /// optimisation; warm-up, then the models run interleaved (A, B, C, A, B, C, ...) on the same
    /// input so that machine noise hits all alike.
    /// </summary>
    public static Timing[] Latency(IReadOnlyList<string> models, string sampleFolder, int warmup, int runs)
    {
        using var options = new SessionOptions
        {
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
            IntraOpNumThreads = 1,
            InterOpNumThreads = 1,
            ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
        };
        var sessions = models.Select(m => new InferenceSession(m, options)).ToList();
        try
        {
            using var feeds = Feeds.Read(sessions[0], sampleFolder);
            using var runOptions = new RunOptions();
            var times = models.Select(_ => new List<double>()).ToArray();
            for (var i = 0; i < warmup + runs; i++)
            {
                for (var m = 0; m < sessions.Count; m++)
                {
                    var start = Stopwatch.GetTimestamp();
                    using (sessions[m].Run(runOptions, feeds.Values, sessions[m].OutputNames))
                    {
                    }

                    var ms = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
                    if (i >= warmup)
                    {
                        times[m].Add(ms);
                    }
                }
            }

            return times.Select(t =>
            {
                t.Sort();
                var n = t.Count;
                var median = n % 2 == 1 ? t[n / 2] : (t[(n / 2) - 1] + t[n / 2]) / 2;
                return new Timing(median, t[0], t[Math.Min(n - 1, (int)Math.Ceiling(0.9 * n) - 1)], n);
            }).ToArray();
        }
        finally
        {
            sessions.ForEach(s => s.Dispose());
        }
    }

    /// <summary>
    /// Bare FP32 inference of the calibration set: load the model, then run every sample once
    /// (reading its .npy files). Three session setups run interleaved sample by sample, so that
    /// machine load hits them alike: ORT's default threading with full optimisation (the yardstick:
    /// the calibrator also uses default threading), the same with basic optimisation (the level the
    /// calibrator loads its augmented model with), and 1 intra-op thread with full optimisation.
    /// </summary>
    public static BareRun[] BareFp32(string model, IReadOnlyList<string> samples)
    {
        var setups = new (GraphOptimizationLevel Level, int Threads)[]
        {
            (GraphOptimizationLevel.ORT_ENABLE_ALL, 0),
            (GraphOptimizationLevel.ORT_ENABLE_BASIC, 0),
            (GraphOptimizationLevel.ORT_ENABLE_ALL, 1),
        };
        var sessions = new List<InferenceSession>();
        var load = new List<TimeSpan>();
        try
        {
            foreach (var (level, threads) in setups)
            {
                var watch = Stopwatch.StartNew();
                using var options = new SessionOptions { GraphOptimizationLevel = level, IntraOpNumThreads = threads };
                sessions.Add(new InferenceSession(model, options));
                load.Add(watch.Elapsed);
            }

            var runs = new TimeSpan[setups.Length];
            using var runOptions = new RunOptions();
            foreach (var sample in samples)
            {
                for (var i = 0; i < sessions.Count; i++)
                {
                    var start = Stopwatch.GetTimestamp();
                    using (var feeds = Feeds.Read(sessions[i], sample))
                    using (sessions[i].Run(runOptions, feeds.Values, sessions[i].OutputNames))
                    {
                    }

                    runs[i] += Stopwatch.GetElapsedTime(start);
                }
            }

            return runs.Select((r, i) => new BareRun(load[i], r)).ToArray();
        }
        finally
        {
            sessions.ForEach(s => s.Dispose());
        }
    }

    /// <summary>Runs every variant over the validation set and scores it against the stored expected outputs and task labels.</summary>
    public static VariantQuality[] Validate(CorpusModel model, IReadOnlyList<string> variants)
    {
        using var options = new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL };
        var sessions = variants.Select(v => new InferenceSession(v, options)).ToList();
        var quality = variants.Select(_ => new VariantQuality()).ToArray();
        try
        {
            using var runOptions = new RunOptions();
            var outputs = sessions[0].OutputMetadata
                .Where(o => o.Value.ElementDataType == Microsoft.ML.OnnxRuntime.Tensors.TensorElementType.Float)
                .Select(o => o.Key).ToArray();
            foreach (var sample in model.ValidationSamples)
            {
                var expected = outputs.ToDictionary(
                    o => o,
                    o => NpyReader.Read(Path.Combine(sample, "expected", SampleSet.SafeFileName(o) + ".npy")).AsFloats().ToArray(),
                    StringComparer.Ordinal);
                using var feeds = Feeds.Read(sessions[0], sample);
                var results = new List<Dictionary<string, float[]>>();
                foreach (var session in sessions)
                {
                    using var values = session.Run(runOptions, feeds.Values, outputs);
                    results.Add(outputs.Select((o, i) => (o, values[i].GetTensorDataAsSpan<float>().ToArray()))
                        .ToDictionary(p => p.o, p => p.Item2, StringComparer.Ordinal));
                }

                var hr = model.Task == TaskKind.SuperResolution ? PngDecoder.Read(Path.Combine(sample, "hr.png")) : null;
                var label = model.Task == TaskKind.Classifier ? File.ReadAllText(Path.Combine(sample, "label.txt")).Trim() : null;
                var fp32Class = model.Task == TaskKind.Classifier ? ArgMax(results[0][outputs[0]]) : -1;
                for (var v = 0; v < variants.Count; v++)
                {
                    var q = quality[v];
                    q.Samples++;
                    foreach (var o in outputs)
                    {
                        if (!q.SqnrVsExpected.TryGetValue(o, out var acc))
                        {
                            q.SqnrVsExpected[o] = acc = new SqnrAccumulator();
                        }

                        acc.Add(expected[o], results[v][o]);
                    }

                    var primary = results[v][outputs[0]];
                    switch (model.Task)
                    {
                        case TaskKind.SuperResolution:
                            q.PsnrSum += Psnr(primary, hr!);
                            break;
                        case TaskKind.Classifier:
                            var cls = ArgMax(primary);
                            q.Correct += cls < model.Classes.Count && model.Classes[cls] == label ? 1 : 0;
                            q.AgreesWithFp32 += cls == fp32Class ? 1 : 0;
                            break;
                        case TaskKind.ProbabilityMap:
                            var reference = expected[outputs[0]];
                            for (var i = 0; i < primary.Length; i++)
                            {
                                bool a = primary[i] > CorpusModel.MapThreshold, b = reference[i] > CorpusModel.MapThreshold;
                                q.MapPixelsAgree += a == b ? 1 : 0;
                                q.MapIntersection += a && b ? 1 : 0;
                                q.MapUnion += a || b ? 1 : 0;
                            }

                            q.MapPixels += primary.Length;
                            break;
                    }
                }
            }
        }
        finally
        {
            sessions.ForEach(s => s.Dispose());
        }

        return quality;
    }

    /// <summary>PSNR of an NCHW [1,3,H,W] output clipped to [0,1] against an 8-bit RGB image / 255, over all pixels and channels.</summary>
    public static double Psnr(float[] output, Image hr)
    {
        int w = hr.Width, h = hr.Height, c = hr.Channels;
        if (c < 3 || output.Length != 3 * w * h)
        {
            throw new InvalidDataException($"output of {output.Length} values does not match a {w}x{h} RGB image");
        }

        double sum = 0;
        for (var ch = 0; ch < 3; ch++)
        {
            for (var y = 0; y < h; y++)
            {
                for (var x = 0; x < w; x++)
                {
                    var o = Math.Clamp(output[(((ch * h) + y) * w) + x], 0f, 1f);
                    double d = o - (hr.Pixels[(((y * w) + x) * c) + ch] / 255.0);
                    sum += d * d;
                }
            }
        }

        var mse = sum / (3.0 * w * h);
        return 10 * Math.Log10(1 / mse);
    }

    private static int ArgMax(float[] values)
    {
        var best = 0;
        for (var i = 1; i < values.Length; i++)
        {
            if (values[i] > values[best])
            {
                best = i;
            }
        }

        return best;
    }

    /// <summary>The ORT inputs of one sample folder (<c>&lt;input&gt;.npy</c> per model input).</summary>
    private sealed class Feeds : IDisposable
    {
        public Dictionary<string, OrtValue> Values { get; } = new(StringComparer.Ordinal);

        public static Feeds Read(InferenceSession session, string folder)
        {
            var feeds = new Feeds();
            foreach (var input in session.InputNames)
            {
                feeds.Values[input] = NpyReader.Read(Path.Combine(folder, SampleSet.SafeFileName(input) + ".npy")).ToOrtValue();
            }

            return feeds;
        }

        public void Dispose()
        {
            foreach (var v in Values.Values)
            {
                v.Dispose();
            }
        }
    }
}
