using System.Diagnostics;
using System.Security.Cryptography;
using Google.Protobuf;
using Quantize.Onnx.Hardware;
using Quantize.Onnx.Model;
using Quantize.Onnx.Tests.TestModels;
using Quantize.Onnx.Tuning;
using Xunit.Abstractions;

namespace Quantize.Onnx.Tests.Hardware;

/// <summary>
/// The lock file's promise across CPU classes: a model quantized with its committed lock gives the same bytes on every
/// build machine. Recorded here (this machine's float kernels calibrate it), then quantized by the probe's quantize verb
/// under <c>qemu-x86_64 -cpu Haswell</c> (AVX2 float kernels, saturating int8 ones) with the lock: the written model must
/// have the same SHA-256. Once more without the lock, only to print whether Haswell's own calibration differs here.
/// </summary>
public sealed class LockAcrossCpuClassesTests(ITestOutputHelper output) : IDisposable
{
    private static readonly TimeSpan EmulatedRunTimeout = TimeSpan.FromSeconds(180);

    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    [FactWhenQemu]
    public void With_its_lock_file_the_model_quantized_under_emulated_Haswell_is_byte_identical_to_the_native_one()
    {
        // Width 32: weights dominate the model's size, so INT8 is smaller than FP32 (at width 8 the size guard keeps FP32).
        var net = TestNets.ConvNet(width: 32);
        var model = _folder.File("convnet.onnx");
        ModelWriter.Save(net.Model, model);
        var calibration = QuantizeTestKit.WriteCalibration(_folder.File("calibration"), net.InputName, net.InputShape, QuantizeTestKit.CalibrationSeeds.Take(3));
        var lockFile = TuningOptions.DefaultLockFile(model);

        // The probe's options plus recording. INT8 ships whatever this machine's timing (KeepFloatIfSlower is no setting the lock
        // compares): the recorded "int8" must then also decide under qemu, where INT8 may well time slower than FP32.
        var watch = Stopwatch.StartNew();
        var native = new Quantizer(new QuantizationOptions
        {
            Tuning = new TuningOptions { LockFile = lockFile, Record = true },
            LatencyRuns = 1,
            FidelitySamples = 1,
            KeepFloatIfSlower = false,
        }).Run(model, calibration, _folder.File("native.onnx"));
        var nativeHash = Sha256(_folder.File("native.onnx"));
        output.WriteLine($"native ({BuildMachine.Current.ClassLabel}, recording, {watch.Elapsed.TotalSeconds:F1} s): {native.Output}, sha256 {nativeHash}, decided here: {string.Join(", ", native.DecidedHere)}");
        Assert.Equal(OutputKind.Quantized, native.Output);
        Assert.True(native.Tuning!.LockFileWritten);
        Assert.True(native.Int8Bytes < native.Fp32Bytes, $"INT8 {native.Int8Bytes} B, FP32 {native.Fp32Bytes} B: the size guard would keep FP32");

        var host = Emulator.DotnetHost();
        var probe = Path.Combine(AppContext.BaseDirectory, "Quantize.OrtProbe.dll");
        Assert.True(File.Exists(probe), $"{probe} is missing: the test project references tests/Quantize.OrtProbe");
        string[] Quantize(string outputName, string lockPath) => [host, probe, "quantize", model, calibration, _folder.File(outputName), lockPath];

        // The probe natively, with the lock: the same bytes without an emulator (so a difference below is the CPU class's).
        watch.Restart();
        var probeNative = ProbeResult.Parse(Run(Quantize("probe-native.onnx", lockFile)));
        output.WriteLine($"probe, native with the lock ({watch.Elapsed.TotalSeconds:F1} s): {probeNative}");
        Assert.Equal(nativeHash, probeNative.Sha256);

        watch.Restart();
        var haswell = ProbeResult.Parse(Emulator.Run("Haswell", Quantize("haswell.onnx", lockFile), EmulatedRunTimeout, output.WriteLine));
        output.WriteLine($"qemu -cpu Haswell with the lock ({watch.Elapsed.TotalSeconds:F1} s): {haswell}");
        Assert.Contains("AVX2 without VNNI (saturating int8)", haswell.Machine, StringComparison.Ordinal);
        Assert.Equal("Quantized", haswell.Output);
        Assert.Equal("-", haswell.DecidedHere);
        Assert.Equal("0", haswell.CalibrationMs);
        Assert.Equal(nativeHash, haswell.Sha256);
        Assert.Equal(File.ReadAllBytes(_folder.File("native.onnx")), File.ReadAllBytes(_folder.File("haswell.onnx")));

        // Without the lock (a path where none exists), Haswell calibrates and decides by its own timing: reported, not asserted.
        watch.Restart();
        var unlocked = ProbeResult.Parse(Emulator.Run("Haswell", Quantize("haswell-unlocked.onnx", _folder.File("no.quantization.json")), EmulatedRunTimeout, output.WriteLine));
        output.WriteLine($"qemu -cpu Haswell without a lock ({watch.Elapsed.TotalSeconds:F1} s): {unlocked}");
        output.WriteLine(unlocked.Sha256 == nativeHash
            ? "without the lock: the same bytes as native (the float kernels agreed on this small model)"
            : $"without the lock: different bytes from native ({unlocked.Output}; native {nativeHash[..16]}, Haswell {unlocked.Sha256[..16]}); initializers that differ: {Differing(_folder.File("native.onnx"), _folder.File("haswell-unlocked.onnx"))}");
    }

    /// <summary>The initializers (scales, zero points, quantized weights and biases) whose bytes differ between two models, or are in one only.</summary>
    private static string Differing(string a, string b)
    {
        var first = ModelLoader.Load(a).Graph.Initializer.ToDictionary(t => t.Name, t => t.ToByteString(), StringComparer.Ordinal);
        var second = ModelLoader.Load(b).Graph.Initializer.ToDictionary(t => t.Name, t => t.ToByteString(), StringComparer.Ordinal);
        var names = first.Keys.Union(second.Keys).Where(n => !first.TryGetValue(n, out var x) || !second.TryGetValue(n, out var y) || !x.Equals(y)).Order(StringComparer.Ordinal).ToList();
        return names.Count == 0 ? "none (the graphs or metadata differ)" : $"{names.Count}: {string.Join(", ", names.Take(12))}{(names.Count > 12 ? ", ..." : "")}";
    }

    /// <summary>Runs the dotnet host natively (no emulator) and returns its standard output.</summary>
    private static string Run(string[] arguments)
    {
        var start = new ProcessStartInfo(arguments[0]) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var argument in arguments.Skip(1))
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync();
        var stdout = process.StandardOutput.ReadToEndAsync();
        if (!process.WaitForExit(EmulatedRunTimeout))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"the probe did not finish within {EmulatedRunTimeout.TotalSeconds:F0} s");
        }

        process.WaitForExit();
        Assert.True(process.ExitCode == 0, $"the probe exited with {process.ExitCode}:\n{stdout.Result}\n{stderr.Result}");
        return stdout.Result;
    }

    private static string Sha256(string path) => Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(path)));

    /// <summary>What the probe's quantize verb printed.</summary>
    private sealed record ProbeResult(string Machine, string Output, string Sha256, string DecidedHere, string CalibrationMs, string TotalMs, string Warnings)
    {
        public static ProbeResult Parse(string stdout)
        {
            var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                .Select(l => l.Split(' ', 2))
                .Where(p => p.Length == 2)
                .ToDictionary(p => p[0], p => p[1], StringComparer.Ordinal);
            string Field(string key) => lines.TryGetValue(key, out var value) ? value : throw new InvalidOperationException($"the probe printed no '{key}' line:\n{stdout}");
            return new ProbeResult(Field("machine"), Field("output"), Field("sha256"), Field("decided-here"), Field("calibration-ms"), Field("total-ms"), Field("warnings"));
        }

        public override string ToString() =>
            $"{Machine}; {Output}, sha256 {Sha256}, decided here: {DecidedHere}, calibration {CalibrationMs} ms, total {TotalMs} ms, warnings {Warnings}";
    }
}
