using System.Diagnostics;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Quantize.Onnx.Hardware;
using Quantize.Onnx.Model;
using Quantize.Onnx.Model.Proto;
using Quantize.Onnx.Samples;
using Quantize.Onnx.Samples.Images;
using Quantize.Onnx.Tests.Samples;
using Quantize.Onnx.Validation;
using Xunit.Abstractions;

namespace Quantize.Onnx.Tests.Hardware;

/// <summary>
/// The SuperResolution sample's model as its project builds it (48×48 photos enlarged to 96×96 with nearest neighbour, PSNR
/// gate drop ≤ 1 dB, uint8 inputs and outputs) passes its gate on an AVX2-only CPU too. Quantized here for the portable
/// targets (saturation-safe weights), the shipped model runs under <c>qemu-x86_64 -cpu Haswell</c> (MLAS's saturating AVX2
/// kernels) on the validation photos' bytes and returns the bytes it returns natively: every figure of the gate is computed
/// from those bytes, so the gate's verdict here is its verdict on that CPU class.
/// </summary>
public sealed class SampleOnAvx2Tests(ITestOutputHelper output) : IDisposable
{
    private static readonly TimeSpan EmulatedRunTimeout = TimeSpan.FromSeconds(180);

    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    [FactWhenQemu]
    public void The_samples_uint8_model_passes_its_gate_here_and_returns_the_same_bytes_under_emulated_Haswell()
    {
        var models = Repository.SampleModels;
        var images = new ImageOptions { Size = (96, 96), Interpolation = ImageInterpolation.Nearest };
        var options = new QuantizationOptions
        {
            Images = images,
            UInt8Inputs = true,
            UInt8Outputs = true,
            Validation = new ValidationOptions { Folder = Path.Combine(models, "waifu2x.validation"), Checks = [AccuracyCheck.Parse("drop:psnr<=1")], LayerSamples = 2 },
            KeepFloatIfSlower = false,
            LatencyRuns = 1,
        };
        var shipped = _folder.File("waifu2x.onnx");
        var result = new Quantizer(options).Run(Path.Combine(models, "waifu2x.onnx"), Path.Combine(models, "waifu2x.calibration"), shipped);
        output.WriteLine($"native ({BuildMachine.Current.ClassLabel}): {result.Output}, {string.Join("; ", result.Validation!.Checks.Select(c => c.Describe()))}, saturation-safe weights {result.SaturationSafeWeights}");
        Assert.True(result.Validation.Passed);
        Assert.Equal(OutputKind.Quantized, result.Output);
        Assert.True(result.SaturationSafeWeights);
        var graph = ModelLoader.Load(shipped).Graph;
        Assert.Equal((int)TensorProto.Types.DataType.Uint8, graph.Input.Single().Type.TensorType.ElemType);
        Assert.Equal((int)TensorProto.Types.DataType.Uint8, graph.Output.Single().Type.TensorType.ElemType);

        // The validation photos as the app feeds them: the tool's own image preprocessing, times 255 (nearest neighbour: every value is a pixel's byte).
        var inputs = _folder.Sub("inputs");
        var shape = ImageInputShape.Resolve(new InputSpec(graph.Input.Single().Name, TensorElementType.Float, [1, 3, null, null]), images, "x");
        var native = new List<byte>();
        using var sessionOptions = new SessionOptions { IntraOpNumThreads = 1 };
        using var session = new InferenceSession(shipped, sessionOptions);
        var samples = Directory.GetDirectories(Path.Combine(models, "waifu2x.validation")).Order(StringComparer.Ordinal).ToList();
        foreach (var sample in samples)
        {
            var png = Path.Combine(sample, "input.png");
            var bytes = ImageTensorizer.ToTensor(ImageDecoder.Decode(png), shape, png).AsFloats().ToArray().Select(v => (byte)Math.Round(v * 255)).ToArray();
            Npy.Write(Path.Combine(inputs, Path.GetFileName(sample) + ".npy"), "|u1", Npy.PyShape([1, 3, 96, 96]), bytes);
            using var input = OrtValue.CreateTensorValueFromMemory(bytes, [1, 3, 96, 96]);
            using var runOptions = new RunOptions();
            using var outputs = session.Run(runOptions, new Dictionary<string, OrtValue> { [session.InputNames[0]] = input }, session.OutputNames);
            native.AddRange(outputs.Single().GetTensorDataAsSpan<byte>().ToArray());
        }

        var probe = Path.Combine(AppContext.BaseDirectory, "Quantize.OrtProbe.dll");
        Assert.True(File.Exists(probe), $"{probe} is missing: the test project references tests/Quantize.OrtProbe");
        var watch = Stopwatch.StartNew();
        var stdout = Emulator.Run("Haswell", [Emulator.DotnetHost(), probe, inputs, _folder.Sub("haswell"), shipped], EmulatedRunTimeout, output.WriteLine);
        output.WriteLine($"qemu -cpu Haswell ({watch.Elapsed.TotalSeconds:F1} s):\n{stdout}");
        Assert.Contains("AVX2 without VNNI (saturating int8)", stdout, StringComparison.Ordinal);
        var haswell = File.ReadAllBytes(Path.Combine(_folder.Path, "haswell", "waifu2x.onnx.bin"));
        Assert.Equal(samples.Count * 3 * 96 * 96, native.Count);
        Assert.Equal(native.ToArray(), haswell);
    }
}
