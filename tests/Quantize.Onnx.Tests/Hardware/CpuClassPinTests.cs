using Quantize.Onnx.Tests.Samples;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using Microsoft.ML.OnnxRuntime;
using Quantize.Onnx.Hardware;
using Quantize.Onnx.Model;
using Quantize.Onnx.Model.Proto;
using Quantize.Onnx.Tests.TestModels;
using Xunit.Abstractions;

namespace Quantize.Onnx.Tests.Hardware;

/// <summary>
/// A net built to saturate x86's AVX2 int8 kernels: a Conv and a MatMul whose weights along K are all large and
/// positive, read from an input near its calibrated maximum (uint8 near 255), so that with full 8-bit weights one
/// vpmaddubsw pair, 255 × 127 + 255 × 127 = 64,770, is far past int16. Quantized twice: for VNNI and ARM only (full
/// 8-bit weights) and for the portable default (saturation-safe weights).
/// </summary>
public sealed class SaturatingNetFixture : IDisposable
{
    public const string Input = "x";
    public static readonly long[] Shape = [1, 32, 8, 8];

    public SaturatingNetFixture()
    {
        var random = new Random(2024);
        float[] Positive(int count) => Enumerable.Range(0, count).Select(_ => 0.5f + (0.5f * (float)random.NextDouble())).ToArray();

        var b = new TestModelBuilder(13, 1, false, "saturating");
        var x = b.Input(Input, Shape);
        var w = b.Constant("conv.weight", [8, 32, 3, 3], Positive(8 * 32 * 9));
        b.Node("Conv", "conv", [x, w, b.Constant("conv.bias", [8], new float[8])],
            TestModelBuilder.Ints("kernel_shape", 3, 3), TestModelBuilder.Ints("pads", 1, 1, 1, 1));
        b.Node("MatMul", "matmul", [x, b.Constant("matmul.weight", [8, 8], Positive(64))]); // K = 8: the last axis of x
        b.Output("conv", 1, 8, 8, 8);
        b.Output("matmul", 1, 32, 8, 8);
        Net = new TestNet(b.Build(), Input, Shape, ["conv"]);

        var modelFolder = Directory.CreateDirectory(Path.Combine(Folder.Path, "model")).FullName;
        ModelPath = Path.Combine(modelFolder, "saturating.onnx");
        ModelWriter.Save(Net.Model, ModelPath);

        // Calibration: uniform in [0, 1], so the input grid is [0, 1] in 255 steps with zero point 0.
        var calibration = Path.Combine(Folder.Path, "calibration");
        for (var s = 0; s < 8; s++)
        {
            var sample = Directory.CreateDirectory(Path.Combine(calibration, $"sample_{s:D3}")).FullName;
            Npy.WriteFloats(Path.Combine(sample, Input + ".npy"), Shape, Uniform(100 + s, 0f, 1f));
        }

        // The test input: near the top of the grid everywhere (uint8 ≈ 217–255).
        TestInput = Uniform(7, 0.85f, 1f);
        InputNpy = Npy.WriteFloats(Path.Combine(Folder.Path, "input.npy"), Shape, TestInput);

        FullPath = Path.Combine(Folder.Path, "out", "full8bit.int8.onnx");
        SafePath = Path.Combine(Folder.Path, "out", "safe.int8.onnx");
        Directory.CreateDirectory(Path.GetDirectoryName(FullPath)!);
        Full = new Quantizer(QuantizeTestKit.Options() with { Targets = [QuantizeTarget.X64Vnni] }).Run(ModelPath, calibration, FullPath);
        Safe = new Quantizer(QuantizeTestKit.Options()).Run(ModelPath, calibration, SafePath);
    }

    internal TestNet Net { get; }

    internal TempFolder Folder { get; } = new();

    public string ModelPath { get; }

    public float[] TestInput { get; }

    public string InputNpy { get; }

    /// <summary>Targets x64-vnni only: full 8-bit weights.</summary>
    public string FullPath { get; }

    public QuantizeResult Full { get; }

    /// <summary>The portable default (x64 and arm64): saturation-safe weights.</summary>
    public string SafePath { get; }

    public QuantizeResult Safe { get; }

    public void Dispose()
    {
        Folder.Dispose();
        GC.SuppressFinalize(this);
    }

    private static float[] Uniform(int seed, float low, float high)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, (int)Shape.Aggregate(1L, (a, c) => a * c)).Select(_ => low + ((high - low) * (float)random.NextDouble())).ToArray();
    }
}

/// <summary>
/// The CPU-class pin: saturation-safe weights give the exact class's INT8 output on every CPU class, while full 8-bit
/// weights give it only on exact CPUs (VNNI, SSE-only, ARM64) and saturate on AVX2 without VNNI. Checked natively
/// against the exact reference (the QDQ graph run unfused), and under qemu-user as a Haswell (AVX2) and a qemu64 (SSE) CPU.
/// </summary>
public sealed class CpuClassPinTests(SaturatingNetFixture fixture, ITestOutputHelper output) : IClassFixture<SaturatingNetFixture>
{
    private static readonly TimeSpan EmulatedRunTimeout = TimeSpan.FromSeconds(60);

    [Fact]
    public void Both_models_are_INT8_on_integer_kernels_and_only_the_full_model_can_saturate()
    {
        foreach (var (name, result, path) in new[] { ("full 8-bit", fixture.Full, fixture.FullPath), ("saturation-safe", fixture.Safe, fixture.SafePath) })
        {
            Assert.Equal(OutputKind.Quantized, result.Output);
            Assert.Equal(2, result.Fusion.FusedCount);
            Assert.All(result.Targets, t => Assert.True(t.Validated, $"{name}: {t.Target}: {t.How}"));
            output.WriteLine($"{name}: largest same-sign neighbour pair along K {LargestPair(path)}; kernels {string.Join(", ", result.Fusion.IntegerKernels.Select(k => $"{k.Key} {k.Value}"))}; arithmetic {result.Int8Arithmetic}");
        }

        // 8-bit grids put the largest weights at ±127 and their neighbours near them; the safe grid halves them.
        Assert.True(LargestPair(fixture.FullPath) > 200);
        Assert.True(LargestPair(fixture.SafePath) <= 128);
        Assert.Equal(
            BuildMachine.Current.Arithmetic == IntegerArithmetic.Saturating ? Int8Arithmetic.ExactReference : Int8Arithmetic.Native,
            fixture.Full.Int8Arithmetic);
        Assert.Equal(Int8Arithmetic.Native, fixture.Safe.Int8Arithmetic);
    }

    [Fact]
    public void Natively_the_safe_model_computes_the_exact_class_and_the_full_model_only_on_an_exact_CPU()
    {
        var machine = BuildMachine.Current;
        output.WriteLine($"this machine: {machine.ClassLabel} ({machine.Cpu})");

        var safe = Compare(fixture.SafePath);
        var full = Compare(fixture.FullPath);
        output.WriteLine($"saturation-safe: native vs exact reference {safe}");
        output.WriteLine($"full 8-bit:      native vs exact reference {full}");

        // On any CPU: at most one output step apart, where float and int32 accumulation round differently.
        Assert.True(safe.MaxSteps <= 1.01, $"saturation-safe: {safe}");
        Assert.True(safe.SqnrDb > 40, $"saturation-safe: {safe}");
        if (machine.Arithmetic == IntegerArithmetic.Saturating)
        {
            output.WriteLine("saturating branch: the full 8-bit model must saturate here");
            Assert.True(full.SqnrDb < 20, $"full 8-bit on a saturating CPU: {full}");
            Assert.True(full.MaxSteps > 10, $"full 8-bit on a saturating CPU: {full}");
        }
        else
        {
            output.WriteLine("exact branch: the full 8-bit model must compute the exact class here");
            Assert.True(full.MaxSteps <= 1.01, $"full 8-bit on an exact CPU: {full}");
            Assert.True(full.SqnrDb > 40, $"full 8-bit on an exact CPU: {full}");
        }
    }

    [FactWhenQemu]
    public void Under_emulated_Haswell_and_qemu64_the_safe_model_gives_identical_bytes_and_the_full_model_saturates()
    {
        var host = Emulator.DotnetHost();
        var probe = Path.Combine(AppContext.BaseDirectory, "Quantize.OrtProbe.dll");
        Assert.True(File.Exists(probe), $"{probe} is missing: the test project references tests/Quantize.OrtProbe");
        var outputs = fixture.Folder.Path;
        string[] Arguments(string tag) => [host, probe, fixture.InputNpy, Path.Combine(outputs, tag), fixture.SafePath, fixture.FullPath];

        var runs = new Dictionary<string, ProbeRun>(StringComparer.Ordinal);
        foreach (var cpu in new[] { "Haswell", "qemu64" })
        {
            var watch = System.Diagnostics.Stopwatch.StartNew();
            runs[cpu] = ProbeRun.Parse(Emulator.Run(cpu, Arguments(cpu), EmulatedRunTimeout), Path.Combine(outputs, cpu));
            output.WriteLine($"qemu -cpu {cpu} ({watch.Elapsed.TotalSeconds:F1} s): {runs[cpu]}");
        }

        var nativeOutputs = new[] { fixture.SafePath, fixture.FullPath }.ToDictionary(p => Path.GetFileName(p), p => RunModel(p, GraphOptimizationLevel.ORT_ENABLE_ALL), StringComparer.Ordinal);
        var native = new ProbeRun(BuildMachine.Current.ClassLabel, nativeOutputs.ToDictionary(o => o.Key, o => Hash(o.Value), StringComparer.Ordinal), nativeOutputs);
        output.WriteLine($"native: {native}");

        // The emulated CPUs are the classes they stand for, as MLAS's dispatch (CPUID) sees them.
        Assert.Contains("AVX2 without VNNI (saturating int8)", runs["Haswell"].Machine, StringComparison.Ordinal);
        Assert.Contains("(exact int8)", runs["qemu64"].Machine, StringComparison.Ordinal);

        var safe = Path.GetFileName(fixture.SafePath);
        var full = Path.GetFileName(fixture.FullPath);
        Assert.Equal(runs["qemu64"].Hashes[safe], runs["Haswell"].Hashes[safe]);
        Assert.Equal(native.Hashes[safe], runs["Haswell"].Hashes[safe]);

        var saturated = Measure(fixture.FullPath, runs["qemu64"].Outputs[full], runs["Haswell"].Outputs[full]);
        output.WriteLine($"full 8-bit, Haswell vs qemu64: {saturated}");
        Assert.NotEqual(runs["qemu64"].Hashes[full], runs["Haswell"].Hashes[full]);
        Assert.True(saturated.SqnrDb < 20, $"full 8-bit: Haswell vs qemu64 {saturated}");

        // What the native test asserts on a saturating CPU, here on the emulated one: the safe model within a step of the
        // exact reference (the unfused graph, run natively), the full 8-bit model far from it.
        var safeOnHaswell = Measure(fixture.SafePath, RunModel(fixture.SafePath, GraphOptimizationLevel.ORT_DISABLE_ALL), runs["Haswell"].Outputs[safe]);
        var fullOnHaswell = Measure(fixture.FullPath, RunModel(fixture.FullPath, GraphOptimizationLevel.ORT_DISABLE_ALL), runs["Haswell"].Outputs[full]);
        output.WriteLine($"Haswell vs exact reference: saturation-safe {safeOnHaswell}; full 8-bit {fullOnHaswell}");
        Assert.True(safeOnHaswell.MaxSteps <= 1.01, $"saturation-safe on Haswell: {safeOnHaswell}");
        Assert.True(fullOnHaswell.SqnrDb < 20 && fullOnHaswell.MaxSteps > 10, $"full 8-bit on Haswell: {fullOnHaswell}");
        if (BuildMachine.Current.Arithmetic == IntegerArithmetic.Exact)
        {
            // Two exact classes (this CPU's and SSE's) accumulate the same int32 sums.
            output.WriteLine($"exact branch: full 8-bit, native ({BuildMachine.Current.Features}) vs qemu64 (SSE): {Measure(fixture.FullPath, runs["qemu64"].Outputs[full], native.Outputs[full])}");
            Assert.Equal(runs["qemu64"].Hashes[full], native.Hashes[full]);
        }
    }

    /// <summary>What the probe printed and wrote: the emulated CPU's class, and per model the SHA-256 and floats of its outputs.</summary>
    private sealed record ProbeRun(string Machine, Dictionary<string, string> Hashes, Dictionary<string, float[]> Outputs)
    {
        public static ProbeRun Parse(string stdout, string folder)
        {
            var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            var machine = lines.Single(l => l.StartsWith("machine ", StringComparison.Ordinal))["machine ".Length..];
            var hashes = lines.Where(l => !l.StartsWith("machine ", StringComparison.Ordinal)).Select(l => l.Split(' ')).ToDictionary(p => p[0], p => p[1], StringComparer.Ordinal);
            var outputs = hashes.Keys.ToDictionary(k => k, k => MemoryMarshal.Cast<byte, float>(File.ReadAllBytes(Path.Combine(folder, k + ".bin"))).ToArray(), StringComparer.Ordinal);
            return new ProbeRun(machine, hashes, outputs);
        }

        public override string ToString() => $"{Machine}; " + string.Join(", ", Hashes.Select(h => $"{h.Key} {h.Value[..16]}"));
    }

    private readonly record struct Difference(double SqnrDb, double MaxSteps, string PerOutput)
    {
        public override string ToString() => $"{SqnrDb:F1} dB SQNR, max {MaxSteps:F2} output steps ({PerOutput})";
    }

    /// <summary>
    /// The model run natively (fused integer kernels) against its exact reference (unfused QDQ graph), in steps of each
    /// output's grid: its DequantizeLinear's scale, or for a float output (MatMulIntegerToFloat) 2⁻¹⁶ of its largest value.
    /// </summary>
    private Difference Compare(string path) => Measure(path, RunModel(path, GraphOptimizationLevel.ORT_DISABLE_ALL), RunModel(path, GraphOptimizationLevel.ORT_ENABLE_ALL));

    /// <summary>How far <paramref name="candidate"/> is from <paramref name="reference"/> (both every output of <paramref name="path"/>), in SQNR and output steps.</summary>
    private static Difference Measure(string path, float[] reference, float[] candidate)
    {
        Assert.Equal(reference.Length, candidate.Length);
        var maxSteps = 0.0;
        var perOutput = new List<string>();
        var offset = 0;
        foreach (var (name, count, dequantizeScale) in Outputs(path))
        {
            var step = dequantizeScale ?? reference.AsSpan(offset, count).ToArray().Max(Math.Abs) / 65536f;
            var steps = 0.0;
            for (var i = offset; i < offset + count; i++)
            {
                steps = Math.Max(steps, Math.Abs(candidate[i] - reference[i]) / step);
            }

            maxSteps = Math.Max(maxSteps, steps);
            perOutput.Add($"{name} {Sqnr(reference[offset..(offset + count)], candidate[offset..(offset + count)]):F1} dB / {steps:F2} steps");
            offset += count;
        }

        Assert.Equal(reference.Length, offset);
        return new Difference(Sqnr(reference, candidate), maxSteps, string.Join(", ", perOutput));
    }

    /// <summary>Every output's floats, in the session's output order, for the fixture's test input.</summary>
    private float[] RunModel(string path, GraphOptimizationLevel level)
    {
        using var options = new SessionOptions { GraphOptimizationLevel = level, IntraOpNumThreads = 1 };
        using var session = new InferenceSession(path, options);
        using var input = OrtValue.CreateTensorValueFromMemory(fixture.TestInput, SaturatingNetFixture.Shape);
        using var runOptions = new RunOptions();
        using var outputs = session.Run(runOptions, new Dictionary<string, OrtValue> { [SaturatingNetFixture.Input] = input }, session.OutputNames.ToArray());
        return outputs.SelectMany(o => o.GetTensorDataAsSpan<float>().ToArray()).ToArray();
    }

    /// <summary>Per graph output (session order, as the probe writes them): its element count and, when a DequantizeLinear writes it, that one's scale.</summary>
    private static List<(string Name, int Count, float? DequantizeScale)> Outputs(string path)
    {
        var graph = ModelLoader.Load(path).Graph;
        var producers = graph.Producers();
        return graph.Output.Select(o =>
        {
            var producer = producers[o.Name];
            float? scale = producer.OpType == "DequantizeLinear" ? TensorValues.ReadFloats(graph.Initializer(producer.Input[1])).Single() : null;
            var count = (int)o.Type.TensorType.Shape.Dim.Aggregate(1L, (a, d) => a * d.DimValue);
            return (o.Name, count, scale);
        }).ToList();
    }

    /// <summary>The largest |q₁| + |q₂| over same-sign neighbours along K of the model's int8 weights: along each row of a Conv weight [out, in, kh, kw] (NCHW order), down each column of a MatMul weight [K, N].</summary>
    private static int LargestPair(string path) => ModelLoader.Load(path).Graph.Initializer
        .Where(t => t.DataType == (int)TensorProto.Types.DataType.Int8 && t.Dims.Count is 2 or 4)
        .SelectMany(t =>
        {
            var q = t.RawData.ToByteArray().Select(v => (int)unchecked((sbyte)v)).ToArray();
            var (rows, columns) = t.Dims.Count == 4 ? ((int)t.Dims[0], q.Length / (int)t.Dims[0]) : ((int)t.Dims[1], (int)t.Dims[0]);
            var along = t.Dims.Count == 4
                ? Enumerable.Range(0, rows).Select(r => q.Skip(r * columns).Take(columns).ToArray())
                : Enumerable.Range(0, rows).Select(n => Enumerable.Range(0, columns).Select(k => q[(k * rows) + n]).ToArray());
            return along.SelectMany(k => k.Zip(k.Skip(1), (a, b) => Math.Sign(a) == Math.Sign(b) ? Math.Abs(a) + Math.Abs(b) : 0));
        })
        .Max();

    private static double Sqnr(float[] reference, float[] candidate)
    {
        Assert.Equal(reference.Length, candidate.Length);
        double signal = 0, noise = 0;
        for (var i = 0; i < reference.Length; i++)
        {
            signal += (double)reference[i] * reference[i];
            noise += ((double)reference[i] - candidate[i]) * ((double)reference[i] - candidate[i]);
        }

        return noise == 0 ? double.PositiveInfinity : 10 * Math.Log10(signal / noise);
    }

    private static string Hash(float[] values) => Convert.ToHexStringLower(SHA256.HashData(MemoryMarshal.AsBytes(values.AsSpan())));
}
