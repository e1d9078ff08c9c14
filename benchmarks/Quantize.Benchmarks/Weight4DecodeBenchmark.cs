using System.Diagnostics;
using System.Globalization;
using System.Text;
using Microsoft.ML.OnnxRuntime;
using Quantize.Onnx;
using Quantize.Onnx.Model;
using Quantize.Onnx.Model.Proto;

namespace Quantize.Benchmarks;

/// <summary>
/// Where weight-only 4-bit pays: a generated LLM-sized feed-forward stack (two blocks of x + W_down·Relu(W_up·x),
/// hidden 2048, feed-forward 8192: 67 M weights, 268 MB FP32; 4-bit about 42 MB, more than the benchmark
/// machine's 32 MB L3), timed with one token (decoding: every weight read once per token, memory-bound) and with
/// 128 tokens (prefill: compute-bound). FP32 vs dynamic int8 vs 4-bit. Random weights, so only size and speed
/// mean something; SQNR vs FP32 is printed as a sanity check.
/// </summary>
internal static class Weight4DecodeBenchmark
{
    public const string Command = "weight4-decode";

    public const string Usage = """
        usage: dotnet run -c Release --project benchmarks/Quantize.Benchmarks -- weight4-decode [--runs <n>] [--out <file>]
          --runs <n>   timed runs per model and row count, interleaved (default 20)
          --out <file> markdown table (default artifacts/weight4-decode.md)
        """;

    private const int Hidden = 2048;
    private const int FeedForward = 8192;
    private const int Blocks = 2;

    public static int Run(string[] args)
    {
        var runs = 20;
        var output = Path.Combine("artifacts", "weight4-decode.md");
        for (var i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--runs" when i + 1 < args.Length: runs = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--out" when i + 1 < args.Length: output = args[++i]; break;
                default: Console.WriteLine(Usage); return 2;
            }
        }

        var work = Directory.CreateDirectory(Path.GetFullPath(Path.Combine("artifacts", "weight4-decode"))).FullName;
        var model = Path.Combine(work, "ffn.onnx");
        ModelWriter.Save(Build(), model);
        var options = new QuantizationOptions { KeepFloatIfSlower = false, LatencyRuns = 3 };
        var variants = new List<(string Label, string Path)> { ("FP32", model) };
        foreach (var (label, o) in new[]
        {
            ("INT8 dynamic", options with { Mode = QuantizationMode.Dynamic }),
            ("4-bit block 32", options with { Mode = QuantizationMode.Weight4 }),
            ("4-bit block 32, int8 compute (level 4)", options with { Mode = QuantizationMode.Weight4, AccuracyLevel = 4 }),
            ("4-bit block 128, int8 compute (level 4)", options with { Mode = QuantizationMode.Weight4, BlockSize = 128, AccuracyLevel = 4 }),
        })
        {
            var path = Path.Combine(work, $"ffn.{variants.Count}.onnx");
            var r = new Quantizer(o).Run(model, null, path);
            Console.WriteLine($"{label}: {r.Output}, kernels {string.Join(", ", r.Fusion.IntegerKernels.Select(k => $"{k.Key} {k.Value}"))}");
            variants.Add((label, path));
        }

        var oneToken = Measure(variants.Select(v => v.Path).ToList(), 1, runs);
        var prefill = Measure(variants.Select(v => v.Path).ToList(), 128, runs);
        var reference = Outputs(model);
        var c = CultureInfo.InvariantCulture;
        var table = new StringBuilder();
        table.AppendLine(c, $"Feed-forward stack, {Blocks} blocks of hidden {Hidden} / feed-forward {FeedForward} ({Blocks * 2 * Hidden * FeedForward / 1e6:F0} M weights), ORT {typeof(InferenceSession).Assembly.GetName().Version?.ToString(3)}, 1 thread, {Environment.ProcessorCount} vCPU, {Quantize.Onnx.Hardware.BuildMachine.Current.ClassLabel}, median of {runs} runs:");
        table.AppendLine();
        table.AppendLine("| model | size | 1 token (decode) | speed-up | 128 tokens (prefill) | speed-up | SQNR vs FP32 |");
        table.AppendLine("|---|---|---|---|---|---|---|");
        for (var v = 0; v < variants.Count; v++)
        {
            var actual = Outputs(variants[v].Path);
            var noise = reference.Zip(actual, (e, a) => (double)(e - a) * (e - a)).Sum();
            var sqnr = v == 0 ? "—" : $"{10 * Math.Log10(reference.Sum(e => (double)e * e) / noise):F1} dB";
            table.AppendLine(c, $"| {variants[v].Label} | {new FileInfo(variants[v].Path).Length / 1e6:F1} MB | {oneToken[v]:F2} ms | {oneToken[0] / oneToken[v]:F2}x | {prefill[v]:F1} ms | {prefill[0] / prefill[v]:F2}x | {sqnr} |");
        }

        Console.WriteLine();
        Console.WriteLine(table);
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(output))!);
        File.WriteAllText(output, table.ToString());
        return 0;
    }

    /// <summary>x [1, rows, H] → Blocks × (x + MatMul(Relu(MatMul(x, W_up)), W_down)) → y; seeded normal weights, std √(1/fan-in).</summary>
    private static ModelProto Build()
    {
        var random = new Random(2048);
        var graph = new GraphProto { Name = "ffn" };
        graph.Input.Add(FloatInput("x", "rows"));
        graph.Output.Add(FloatInput("y", "rows"));
        var x = "x";
        for (var b = 0; b < Blocks; b++)
        {
            var up = Weight(graph, $"up{b}", Hidden, FeedForward, random);
            var down = Weight(graph, $"down{b}", FeedForward, Hidden, random);
            graph.Node.Add(Node("MatMul", $"up{b}", [x, up]));
            graph.Node.Add(Node("Relu", $"relu{b}", [$"up{b}"]));
            graph.Node.Add(Node("MatMul", $"down{b}", [$"relu{b}", down]));
            var y = b == Blocks - 1 ? "y" : $"residual{b}";
            graph.Node.Add(Node("Add", y, [x, $"down{b}"]));
            x = y;
        }

        return new ModelProto { IrVersion = 8, ProducerName = "Quantize.Benchmarks", Graph = graph, OpsetImport = { new OperatorSetIdProto { Domain = "", Version = 17 } } };
    }

    private static string Weight(GraphProto graph, string name, int rows, int cols, Random random)
    {
        var std = Math.Sqrt(1.0 / rows);
        var values = new float[rows * cols];
        for (var i = 0; i < values.Length; i++)
        {
            values[i] = (float)(std * Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble()));
        }

        graph.Initializer.Add(TensorValues.FromFloats(name + ".weight", [rows, cols], values));
        return name + ".weight";
    }

    private static NodeProto Node(string op, string output, string[] inputs) => new() { OpType = op, Name = output, Input = { inputs }, Output = { output } };

    private static ValueInfoProto FloatInput(string name, string rows) => new()
    {
        Name = name,
        Type = new TypeProto
        {
            TensorType = new TypeProto.Types.Tensor
            {
                ElemType = (int)TensorProto.Types.DataType.Float,
                Shape = new TensorShapeProto { Dim = { new TensorShapeProto.Types.Dimension { DimValue = 1 }, new TensorShapeProto.Types.Dimension { DimParam = rows }, new TensorShapeProto.Types.Dimension { DimValue = Hidden } } },
            },
        },
    };

    private static float[] Input(int rows)
    {
        var random = new Random(rows);
        return Enumerable.Range(0, rows * Hidden).Select(_ => (float)((random.NextDouble() * 2) - 1)).ToArray();
    }

    private static SessionOptions OneThread() => new()
    {
        GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
        IntraOpNumThreads = 1,
        InterOpNumThreads = 1,
        ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
    };

    /// <summary>Median latency per model on [1, rows, H], runs interleaved across the models.</summary>
    private static double[] Measure(IReadOnlyList<string> models, int rows, int runs)
    {
        using var options = OneThread();
        var sessions = models.Select(m => new InferenceSession(m, options)).ToList();
        using var input = OrtValue.CreateTensorValueFromMemory(Input(rows), [1, rows, Hidden]);
        var feeds = new Dictionary<string, OrtValue> { ["x"] = input };
        using var runOptions = new RunOptions();
        var times = models.Select(_ => new List<double>()).ToList();
        for (var run = 0; run < runs + 2; run++)
        {
            for (var m = 0; m < sessions.Count; m++)
            {
                var start = Stopwatch.GetTimestamp();
                using (sessions[m].Run(runOptions, feeds, ["y"]))
                {
                }

                if (run >= 2)
                {
                    times[m].Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
                }
            }
        }

        sessions.ForEach(s => s.Dispose());
        return times.Select(t => t.Order().ElementAt(t.Count / 2)).ToArray();
    }

    private static float[] Outputs(string model)
    {
        using var options = OneThread();
        using var session = new InferenceSession(model, options);
        using var input = OrtValue.CreateTensorValueFromMemory(Input(1), [1, 1, Hidden]);
        using var runOptions = new RunOptions();
        using var outputs = session.Run(runOptions, new Dictionary<string, OrtValue> { ["x"] = input }, ["y"]);
        return outputs[0].GetTensorDataAsSpan<float>().ToArray();
    }
}
