using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Google.Protobuf;
using Quantize.Onnx;
using Quantize.Onnx.Model;
using Quantize.Onnx.Model.Proto;
using DataLocation = Quantize.Onnx.Model.Proto.TensorProto.Types.DataLocation;
using DataType = Quantize.Onnx.Model.Proto.TensorProto.Types.DataType;

namespace Quantize.Benchmarks;

/// <summary>
/// Sub-command <c>large</c> (issue 5 item 8): generates an MLP whose weights are over 2 GB in an external
/// data file (streamed to disk, never one big array), quantizes it static and dynamic, each in a child
/// process, and prints model and output sizes, wall time and the child's peak memory.
/// </summary>
internal static class LargeModelBenchmark
{
    public const string Command = "large";
    public const string ChildCommand = "large-child";

    private const string Usage = """
        usage: dotnet run -c Release --project benchmarks/Quantize.Benchmarks -- large [--width <n>] [--layers <n>] [--samples <n>] [--heap-limit <MiB>] [--dir <folder>] [--keep]
          --width <n>    features of every layer (default 6144: one weight is 144 MiB)
          --layers <n>   MatMul + Add + Relu layers (default 16: 2.25 GiB of weights, over protobuf's 2 GB)
          --samples <n>  calibration samples for static mode (default 4)
          --heap-limit <MiB>  also quantize static with the managed heap capped (DOTNET_GCHeapHardLimit; default 384, 0: skip)
          --dir <folder> where to generate (default: a temp folder; needs ~3x the model size free)
          --keep         keep the generated model and outputs
        """;

    private const string InputName = "x";
    private const int Batch = 4;

    public static int Run(string[] args)
    {
        int width = 6144, layers = 16, samples = 4, heapLimit = 384;
        string? dir = null;
        bool keep = false;
        for (var i = 0; i < args.Length; i++)
        {
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            switch (args[i])
            {
                case "--width": width = int.Parse(Next(), CultureInfo.InvariantCulture); break;
                case "--layers": layers = int.Parse(Next(), CultureInfo.InvariantCulture); break;
                case "--samples": samples = int.Parse(Next(), CultureInfo.InvariantCulture); break;
                case "--heap-limit": heapLimit = int.Parse(Next(), CultureInfo.InvariantCulture); break;
                case "--dir": dir = Next(); break;
                case "--keep": keep = true; break;
                default: throw new ArgumentException($"large: unknown argument '{args[i]}'\n{Usage}");
            }
        }

        var root = dir is null ? Directory.CreateTempSubdirectory("quantize-large-").FullName : Directory.CreateDirectory(dir).FullName;
        try
        {
            var generate = Stopwatch.StartNew();
            var model = Generate(Directory.CreateDirectory(Path.Combine(root, "model")).FullName, width, layers);
            var calibration = WriteCalibration(Path.Combine(root, "calibration"), width, samples);
            long modelBytes = new FileInfo(model).Length + new FileInfo(model + ".data").Length;
            Console.WriteLine($"generated {Path.GetFileName(model)}: {layers} x MatMul [{width}, {width}] + Add + Relu, {Mib(modelBytes)} MiB " +
                $"({modelBytes:N0} bytes, graph {new FileInfo(model).Length:N0} bytes + external data) in {generate.Elapsed.TotalSeconds:F0} s");
            Console.WriteLine();
            Console.WriteLine("| mode | model | output (.onnx + .data) | wall | peak RSS (VmHWM) | peak anonymous RSS | peak file-backed RSS | peak managed heap | peak heap after a GC | managed allocated |");
            Console.WriteLine("|---|---|---|---|---|---|---|---|---|---|");
            var runs = new List<(string Mode, int? HeapLimit)> { ("static", null), ("dynamic", null) };
            if (heapLimit > 0)
            {
                runs.Add(("static", heapLimit));
            }

            foreach (var (mode, limit) in runs)
            {
                var output = Path.Combine(root, $"model.{mode}.onnx");
                var r = Spawn(model, mode == "static" ? calibration : null, output, mode, limit);
                var label = limit is int l ? $"{mode}, heap capped at {l} MiB" : mode;
                Console.WriteLine($"| {label} | {Mib(modelBytes)} MiB | {Mib(r.OutputBytes)} MiB | {r.WallSeconds:F0} s | {Mib(r.VmHwmBytes)} MiB | {Mib(r.PeakAnonBytes)} MiB | {Mib(r.PeakFileBytes)} MiB | {Mib(r.PeakManagedBytes)} MiB | {Mib(r.PeakHeapAfterGcBytes)} MiB | {Mib(r.AllocatedBytes)} MiB |");
                Console.Out.Flush();
                foreach (var line in r.Notes)
                {
                    Console.Error.WriteLine($"  {mode}: {line}");
                }

                File.Delete(output);
                File.Delete(output + ".data");
            }

            return 0;
        }
        finally
        {
            if (!keep)
            {
                Directory.Delete(root, recursive: true);
            }
        }
    }

    /// <summary>What a child reports (JSON on its last stdout line).</summary>
    internal sealed record LargeChildResult
    {
        public required double WallSeconds { get; init; }

        public required long OutputBytes { get; init; }

        public required long VmHwmBytes { get; init; }

        public required long PeakAnonBytes { get; init; }

        public required long PeakFileBytes { get; init; }

        public required long PeakManagedBytes { get; init; }

        /// <summary>Largest heap size right after a collection (live objects and fragmentation, no garbage).</summary>
        public required long PeakHeapAfterGcBytes { get; init; }

        public required long AllocatedBytes { get; init; }

        public required List<string> Notes { get; init; }
    }

    /// <summary>
    /// The child: quantizes once while a sampler thread records the largest anonymous and file-backed resident
    /// memory (/proc/self/status every 20 ms) and the largest managed heap; VmHWM is the kernel's own peak.
    /// File-backed pages are the data files ORT maps: the kernel drops them under memory pressure.
    /// </summary>
    public static int RunChild(string[] args)
    {
        var (model, calibration, output, mode) = (args[0], args[1] == "-" ? null : args[1], args[2], args[3]);
        var options = new QuantizationOptions
        {
            Mode = mode == "dynamic" ? QuantizationMode.Dynamic : QuantizationMode.Static,
            KeepFloatIfSlower = false,
            LatencyRuns = 3,
            FidelitySamples = 2,
        };
        long peakAnon = 0, peakFile = 0, peakManaged = 0, peakAfterGc = 0;
        using var stop = new ManualResetEventSlim();
        var sampler = new Thread(() =>
        {
            do
            {
                var status = Status();
                peakAnon = Math.Max(peakAnon, status.GetValueOrDefault("RssAnon"));
                peakFile = Math.Max(peakFile, status.GetValueOrDefault("RssFile"));
                peakManaged = Math.Max(peakManaged, GC.GetTotalMemory(forceFullCollection: false));
                peakAfterGc = Math.Max(peakAfterGc, GC.GetGCMemoryInfo(GCKind.Any).HeapSizeBytes);
            }
            while (!stop.Wait(20));
        })
        { IsBackground = true };
        var allocated = GC.GetTotalAllocatedBytes(precise: true);
        sampler.Start();
        var wall = Stopwatch.StartNew();
        var result = new Quantizer(options).Run(model, calibration, output);
        wall.Stop();
        stop.Set();
        sampler.Join();
        var notes = new List<string>
        {
            $"{result.Output}, {result.QuantizedNodes} nodes quantized, kernels {string.Join(", ", result.Fusion.IntegerKernels.Select(k => $"{k.Key} x{k.Value}"))}",
            $"fidelity {string.Join(", ", result.Fidelity.Select(f => $"{f.Output} {f.SqnrDb:F1} dB"))}; latency FP32 {result.Latency.Fp32Milliseconds:F1} ms, INT8 {result.Latency.Int8Milliseconds:F1} ms",
        };
        notes.AddRange(result.Warnings.Select(w => $"{w.Code}: {w.Message}"));
        long outputBytes = new FileInfo(output).Length + (File.Exists(output + ".data") ? new FileInfo(output + ".data").Length : 0);
        var report = new LargeChildResult
        {
            WallSeconds = wall.Elapsed.TotalSeconds,
            OutputBytes = outputBytes,
            VmHwmBytes = Status().GetValueOrDefault("VmHWM"),
            PeakAnonBytes = peakAnon,
            PeakFileBytes = peakFile,
            PeakManagedBytes = peakManaged,
            PeakHeapAfterGcBytes = peakAfterGc,
            AllocatedBytes = GC.GetTotalAllocatedBytes(precise: true) - allocated,
            Notes = notes,
        };
        Console.WriteLine(JsonSerializer.Serialize(report));
        return 0;
    }

    private static LargeChildResult Spawn(string model, string? calibration, string output, string mode, int? heapLimitMib)
    {
        // The GC's hard limit: the run fails with OutOfMemoryException if the quantizer needs more managed memory.
        var environment = heapLimitMib is int limit
            ? new Dictionary<string, string> { ["DOTNET_GCHeapHardLimit"] = "0x" + ((long)limit << 20).ToString("X", CultureInfo.InvariantCulture) }
            : null;
        var what = $"{ChildCommand} ({mode})";
        var stdout = ChildProcess.Run([ChildCommand, model, calibration ?? "-", output, mode], what, environment);
        var last = stdout.TrimEnd().Split('\n').LastOrDefault() ?? "";
        return last.StartsWith('{')
            ? JsonSerializer.Deserialize<LargeChildResult>(last) ?? throw new InvalidOperationException("empty child result")
            : throw new InvalidOperationException($"{what} printed no result:\n{stdout}");
    }

    /// <summary>
    /// Writes <c>model.onnx</c> + <c>model.onnx.data</c>: weights are streamed to the data file one row at a time
    /// (He-scaled uniform noise, so activations keep their scale through the layers), the graph names them by offset.
    /// </summary>
    private static string Generate(string folder, int width, int layers)
    {
        var path = Path.Combine(folder, "model.onnx");
        var dataName = "model.onnx.data";
        var graph = new GraphProto { Name = "large-mlp" };
        graph.Input.Add(FloatValue(InputName, Batch, width));
        var random = new Random(1234);
        var row = new byte[width * sizeof(float)];
        long offset = 0;
        using (var data = new FileStream(Path.Combine(folder, dataName), FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20))
        {
            string x = InputName;
            float bound = MathF.Sqrt(6f / width);
            for (int layer = 0; layer < layers; layer++)
            {
                var weight = External($"w{layer}", [width, width], dataName, offset, (long)width * width * sizeof(float));
                for (int r = 0; r < width; r++)
                {
                    for (int c = 0; c < width; c++)
                    {
                        BinaryPrimitives.WriteSingleLittleEndian(row.AsSpan(c * sizeof(float)), ((float)random.NextDouble() * 2 - 1) * bound);
                    }

                    data.Write(row);
                }

                offset += (long)width * width * sizeof(float);
                graph.Initializer.Add(weight);
                graph.Initializer.Add(TensorValues.FromFloats($"b{layer}", [width], Enumerable.Range(0, width).Select(i => (i % 7 - 3) * 0.01f).ToArray()));
                string mm = $"mm{layer}", add = $"add{layer}", y = $"h{layer}";
                graph.Node.Add(Node("MatMul", $"matmul{layer}", [x, $"w{layer}"], mm));
                graph.Node.Add(Node("Add", $"add{layer}", [mm, $"b{layer}"], add));
                graph.Node.Add(Node("Relu", $"relu{layer}", [add], y));
                x = y;
            }

            graph.Output.Add(FloatValue(x, Batch, width));
        }

        var model = new ModelProto { IrVersion = 8, ProducerName = "Quantize.Benchmarks", Graph = graph };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = 17 });
        File.WriteAllBytes(path, model.ToByteArray());
        return path;
    }

    private static TensorProto External(string name, long[] dims, string location, long offset, long length)
    {
        var tensor = new TensorProto { Name = name, DataType = (int)DataType.Float, DataLocation = DataLocation.External };
        tensor.Dims.Add(dims);
        tensor.ExternalData.Add(new StringStringEntryProto { Key = "location", Value = location });
        tensor.ExternalData.Add(new StringStringEntryProto { Key = "offset", Value = offset.ToString(CultureInfo.InvariantCulture) });
        tensor.ExternalData.Add(new StringStringEntryProto { Key = "length", Value = length.ToString(CultureInfo.InvariantCulture) });
        return tensor;
    }

    private static NodeProto Node(string op, string name, string[] inputs, string output)
    {
        var node = new NodeProto { OpType = op, Name = name };
        node.Input.Add(inputs);
        node.Output.Add(output);
        return node;
    }

    private static ValueInfoProto FloatValue(string name, params long[] dims)
    {
        var shape = new TensorShapeProto();
        foreach (var d in dims)
        {
            shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = d });
        }

        return new ValueInfoProto
        {
            Name = name,
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)DataType.Float, Shape = shape } },
        };
    }

    /// <summary>One folder per sample with <c>x.npy</c> (float32 [4, width], standard-normal-ish values).</summary>
    private static string WriteCalibration(string folder, int width, int samples)
    {
        var random = new Random(99);
        for (int s = 0; s < samples; s++)
        {
            var sample = Directory.CreateDirectory(Path.Combine(folder, $"sample_{s:D3}")).FullName;
            var header = $"{{'descr': '<f4', 'fortran_order': False, 'shape': ({Batch}, {width}), }}";
            header = header.PadRight(((10 + header.Length + 1 + 63) / 64 * 64) - 10 - 1) + "\n";
            using var npy = File.Create(Path.Combine(sample, InputName + ".npy"));
            npy.Write([0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', 1, 0]);
            npy.Write(BitConverter.GetBytes((ushort)header.Length));
            npy.Write(Encoding.ASCII.GetBytes(header));
            var value = new byte[4];
            for (int i = 0; i < Batch * width; i++)
            {
                BinaryPrimitives.WriteSingleLittleEndian(value, (float)(random.NextDouble() + random.NextDouble() + random.NextDouble() - 1.5) * 2);
                npy.Write(value);
            }
        }

        return folder;
    }

    private static Dictionary<string, long> Status()
    {
        var values = new Dictionary<string, long>(StringComparer.Ordinal);
        if (!File.Exists("/proc/self/status"))
        {
            return values;
        }

        foreach (var line in File.ReadLines("/proc/self/status"))
        {
            var parts = line.Split(':', 2);
            if (parts.Length == 2 && parts[1].Trim().EndsWith(" kB", StringComparison.Ordinal)
                && long.TryParse(parts[1].Trim()[..^3], NumberStyles.Integer, CultureInfo.InvariantCulture, out var kb))
            {
                values[parts[0]] = kb * 1024;
            }
        }

        return values;
    }

    private static string Mib(long bytes) => (bytes / (1024.0 * 1024.0)).ToString("N0", CultureInfo.InvariantCulture);
}
