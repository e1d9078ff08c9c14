using Microsoft.ML.OnnxRuntime;
using Quantize.Onnx.Model;
using Quantize.Onnx.Model.Proto;
using Quantize.Onnx.Samples;
using Quantize.Onnx.Tests.Samples;

namespace Quantize.Onnx.Tests.TestModels;

/// <summary>
/// Structured (image-like) test data, calibration folders, and ONNX Runtime runs for the
/// quantization tests. Everything is seeded: the same seed always gives the same data.
/// </summary>
internal static class QuantizeTestKit
{
    /// <summary>Seeds of the calibration samples; held-out inputs use <see cref="HeldOutSeeds"/>.</summary>
    public static readonly int[] CalibrationSeeds = [.. Enumerable.Range(101, 16)];

    public static readonly int[] HeldOutSeeds = [901, 902, 903, 904];

    /// <summary>Options for tests that look at the INT8 model: small latency run, and INT8 shipped even if a tiny model is not faster.</summary>
    public static QuantizationOptions Options() => new() { KeepFloatIfSlower = false, LatencyRuns = 3, FidelitySamples = 2 };

    /// <summary>
    /// Smooth, structured data rather than noise: per channel a 2-D sinusoid of random frequency and
    /// phase, a linear gradient and an offset, plus a little Gaussian noise (σ = 0.05), saturated to
    /// [-1, 1] like a normalized image (so calibration sees the full input range, as it would with
    /// real pixels). Works for NCHW images and for [batch, features] vectors (a 1-D sinusoid along
    /// the features).
    /// </summary>
    public static float[] Structured(int seed, long[] shape)
    {
        var random = new Random(seed);
        long count = shape.Aggregate(1L, (a, b) => a * b);
        var values = new float[count];
        int width = (int)shape[^1];
        int height = shape.Length >= 4 ? (int)shape[^2] : 1;
        int planes = (int)(count / (width * height));
        for (int p = 0; p < planes; p++)
        {
            double fx = 0.5 + (2.5 * random.NextDouble());
            double fy = 0.5 + (2.5 * random.NextDouble());
            double phaseX = 2 * Math.PI * random.NextDouble();
            double phaseY = 2 * Math.PI * random.NextDouble();
            double amplitude = 0.6 + (0.5 * random.NextDouble());
            double gradient = (random.NextDouble() * 0.8) - 0.4;
            double offset = (random.NextDouble() * 0.4) - 0.2;
            for (int y = 0; y < height; y++)
            {
                for (int x = 0; x < width; x++)
                {
                    double u = (double)x / width;
                    double v = (double)y / height;
                    double value = (amplitude * Math.Sin((2 * Math.PI * fx * u) + phaseX) * Math.Cos((2 * Math.PI * fy * v) + phaseY))
                        + (gradient * (u - 0.5)) + offset + (0.05 * Gaussian(random));
                    values[(((long)p * height) + y) * width + x] = (float)Math.Clamp(value, -1.0, 1.0);
                }
            }
        }

        return values;
    }

    /// <summary>One in-memory sample of <see cref="Structured"/> data (the first calibration seed) for a single-input model.</summary>
    public static InputSample StructuredSample(string inputName, long[] shape)
    {
        var values = Structured(CalibrationSeeds[0], shape);
        var data = System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()).ToArray();
        return new InputSample("sample_000", [new TensorData(inputName, Microsoft.ML.OnnxRuntime.Tensors.TensorElementType.Float, shape, data)]);
    }

    /// <summary>Writes one sub-folder per seed holding <c>&lt;inputName&gt;.npy</c>; returns the folder.</summary>
    public static string WriteCalibration(string folder, string inputName, long[] shape, IEnumerable<int>? seeds = null)
    {
        Directory.CreateDirectory(folder);
        int i = 0;
        foreach (int seed in seeds ?? CalibrationSeeds)
        {
            var sample = Directory.CreateDirectory(Path.Combine(folder, $"sample_{i++:D3}")).FullName;
            Npy.WriteFloats(Path.Combine(sample, inputName + ".npy"), shape, Structured(seed, shape));
        }

        return folder;
    }

    /// <summary>Saves <paramref name="net"/> and a calibration set under <paramref name="root"/>: (model path, calibration folder).</summary>
    public static (string Model, string Calibration) Prepare(TestNet net, string root, string modelName = "model.onnx")
    {
        var modelFolder = Directory.CreateDirectory(Path.Combine(root, "model")).FullName;
        var model = Path.Combine(modelFolder, modelName);
        ModelWriter.Save(net.Model, model);
        var calibration = WriteCalibration(Path.Combine(root, "calibration"), net.InputName, net.InputShape);
        return (model, calibration);
    }

    /// <summary>Runs a model on each input and returns every float output by name, per input.</summary>
    public static List<Dictionary<string, float[]>> Run(string modelPath, string inputName, long[] shape, IEnumerable<float[]> inputs)
    {
        using var options = new SessionOptions { IntraOpNumThreads = 1, GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL };
        using var session = new InferenceSession(modelPath, options);
        var results = new List<Dictionary<string, float[]>>();
        foreach (var data in inputs)
        {
            using var input = OrtValue.CreateTensorValueFromMemory(data, shape);
            using var runOptions = new RunOptions();
            var names = session.OutputNames.ToArray();
            using var outputs = session.Run(runOptions, new Dictionary<string, OrtValue> { [inputName] = input }, names);
            var map = new Dictionary<string, float[]>(StringComparer.Ordinal);
            for (int i = 0; i < names.Length; i++)
            {
                map[names[i]] = outputs[i].GetTensorDataAsSpan<float>().ToArray();
            }

            results.Add(map);
        }

        return results;
    }

    /// <summary>
    /// SQNR in dB of each output of <paramref name="candidate"/> against <paramref name="reference"/>
    /// over the held-out structured inputs: 10·log10(Σ ref² / Σ (ref − candidate)²), +∞ when identical.
    /// </summary>
    public static Dictionary<string, double> Sqnr(string reference, string candidate, TestNet net, IEnumerable<int>? seeds = null)
    {
        var inputs = (seeds ?? HeldOutSeeds).Select(s => Structured(s, net.InputShape)).ToList();
        var expected = Run(reference, net.InputName, net.InputShape, inputs);
        var actual = Run(candidate, net.InputName, net.InputShape, inputs);
        var result = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var name in expected[0].Keys)
        {
            double signal = 0, noise = 0;
            for (int s = 0; s < expected.Count; s++)
            {
                var r = expected[s][name];
                var c = actual[s][name];
                Assert.Equal(r.Length, c.Length);
                for (int i = 0; i < r.Length; i++)
                {
                    signal += (double)r[i] * r[i];
                    noise += ((double)r[i] - c[i]) * ((double)r[i] - c[i]);
                }
            }

            result[name] = noise == 0 ? double.PositiveInfinity : 10 * Math.Log10(signal / noise);
        }

        return result;
    }

    /// <summary>The graph ONNX Runtime actually runs, after its optimisations at <paramref name="level"/>.</summary>
    public static GraphProto OptimizedGraph(string modelPath, GraphOptimizationLevel level = GraphOptimizationLevel.ORT_ENABLE_EXTENDED)
    {
        var folder = Directory.CreateTempSubdirectory("qnt-test-opt-");
        try
        {
            var path = Path.Combine(folder.FullName, "optimized.onnx");
            using (var options = new SessionOptions { GraphOptimizationLevel = level, OptimizedModelFilePath = path, IntraOpNumThreads = 1 })
            using (new InferenceSession(modelPath, options))
            {
            }

            return ModelProto.Parser.ParseFrom(File.ReadAllBytes(path)).Graph;
        }
        finally
        {
            folder.Delete(recursive: true);
        }
    }

    public static int Count(this GraphProto graph, string opType) => graph.Node.Count(n => n.OpType == opType);

    /// <summary>Node producing each tensor.</summary>
    public static Dictionary<string, NodeProto> Producers(this GraphProto graph)
    {
        var producers = new Dictionary<string, NodeProto>(StringComparer.Ordinal);
        foreach (var node in graph.Node)
        {
            foreach (var output in node.Output)
            {
                producers[output] = node;
            }
        }

        return producers;
    }

    /// <summary>Float ops (not Q/DQ, not integer kernels) that read a DequantizeLinear output and feed only QuantizeLinear: un-fused QDQ groups.</summary>
    public static List<string> UnfusedGroups(this GraphProto graph)
    {
        var producers = graph.Producers();
        var consumers = graph.Node.SelectMany(n => n.Input.Select(i => (i, n))).ToLookup(p => p.i, p => p.n, StringComparer.Ordinal);
        return graph.Node
            .Where(n => n.OpType is not ("QuantizeLinear" or "DequantizeLinear") && n.Domain is "" or "ai.onnx")
            .Where(n => n.Input.Any(i => producers.TryGetValue(i, out var p) && p.OpType == "DequantizeLinear"))
            .Where(n => n.Output.Any(o => consumers[o].Any() && consumers[o].All(c => c.OpType == "QuantizeLinear")))
            .Select(n => $"{n.Name} ({n.OpType})")
            .ToList();
    }

    public static TensorProto Initializer(this GraphProto graph, string name) => graph.Initializer.Single(t => t.Name == name);

    public static long ModelOpset(this ModelProto model) =>
        model.OpsetImport.Where(o => o.Domain is "" or "ai.onnx").Select(o => o.Version).Single();

    private static double Gaussian(Random random)
    {
        double u1 = 1.0 - random.NextDouble();
        double u2 = random.NextDouble();
        return Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
    }
}
