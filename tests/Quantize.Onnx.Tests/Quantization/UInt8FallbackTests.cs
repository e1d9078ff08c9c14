using System.Globalization;
using System.Text.Json.Nodes;
using Microsoft.ML.OnnxRuntime;
using Quantize.Onnx.Model;
using Quantize.Onnx.Model.Proto;
using Quantize.Onnx.Quantization;
using Quantize.Onnx.Tests.Samples;
using Quantize.Onnx.Tests.TestModels;
using Quantize.Onnx.Tuning;
using Quantize.Onnx.Validation;
using Xunit.Abstractions;

namespace Quantize.Onnx.Tests.Quantization;

/// <summary>
/// When FP32 ships instead of INT8 with <see cref="QuantizationOptions.UInt8Inputs"/> and
/// <see cref="QuantizationOptions.UInt8Outputs"/>, the app written for the INT8 model's contract keeps working: the FP32
/// model takes the same uint8 inputs (the preprocessing in its graph) and returns the same uint8 outputs, on the INT8
/// model's grids, named in the same metadata. Checked for each way FP32 ships: a failed gate under ship-fp32, INT8 not
/// faster (the decision replayed from a lock file, so it does not depend on this machine's timing), INT8 larger.
/// </summary>
public sealed class UInt8FallbackTests(ITestOutputHelper output) : IDisposable
{
    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    public static TheoryData<string> WaysFp32Ships => ["gate failed under ship-fp32", "INT8 not faster (lock file)", "INT8 larger"];

    [Theory]
    [MemberData(nameof(WaysFp32Ships))]
    public void The_FP32_model_that_ships_instead_takes_and_returns_the_INT8_models_uint8_tensors(string way)
    {
        var net = TestNets.ConvNet();
        var (model, calibration, validation, images) = Prepare(net);
        var options = QuantizeTestKit.Options() with { UInt8Inputs = true, UInt8Outputs = true };
        var int8 = _folder.File("int8.onnx");
        var quantized = new Quantizer(options).Run(model, calibration, int8);
        Assert.Equal(OutputKind.Quantized, quantized.Output);

        var kept = _folder.File("kept.onnx");
        var result = new Quantizer(Forced(way, options, model, calibration, validation)).Run(model, calibration, kept);
        output.WriteLine($"{way}: {result.Output}; " + string.Join(" | ", result.Warnings.Select(w => $"{w.Code}: {w.Message}")));

        Assert.NotEqual(OutputKind.Quantized, result.Output);
        var shipped = ModelLoader.Load(kept);
        Assert.DoesNotContain(shipped.Graph.Node, n => n.OpType is "QLinearConv" or "ConvInteger");
        Assert.Contains(shipped.Graph.Node, n => n.OpType == "Conv" && shipped.Graph.Initializer.Single(t => t.Name == n.Input[1]).DataType == (int)TensorProto.Types.DataType.Float);

        // The app's contract: the INT8 model's input and output names, types and shapes, and its output grids in the metadata.
        var reference = ModelLoader.Load(int8);
        Assert.Equal(Contract(reference), Contract(shipped));
        Assert.Equal(OutputGrids(reference), OutputGrids(shipped));
        Assert.Contains(result.Warnings, w => w.Message.Contains("uint8 inputs and outputs", StringComparison.Ordinal));

        AssertFp32OnTheOutputGrids(kept, model, net, images);
    }

    [Fact]
    public void The_FP32_fallback_of_an_opset_9_model_runs_on_bytes_though_its_opset_has_no_QuantizeLinear()
    {
        // The INT8 model is raised to opset 13; the FP32 model ships at its own opset, where Q/DQ do not exist yet.
        var net = TestNets.ClipSliceOpset9();
        var (model, calibration, validation, images) = Prepare(net);
        var options = QuantizeTestKit.Options() with { UInt8Inputs = true, UInt8Outputs = true };
        var kept = _folder.File("kept.onnx");

        var result = new Quantizer(Forced("gate failed under ship-fp32", options, model, calibration, validation)).Run(model, calibration, kept);

        Assert.Equal(OutputKind.KeptFloatFailedCheck, result.Output);
        var shipped = ModelLoader.Load(kept);
        Assert.Equal(9, shipped.ModelOpset());
        Assert.Contains(shipped.Graph.Node, n => n.OpType == "DequantizeLinear" && n.Domain == "com.microsoft");
        AssertFp32OnTheOutputGrids(kept, model, net, images);
    }

    /// <summary>Fed the bytes, the FP32 model's outputs, dequantized as the app does, are the FP32 outputs on the INT8 grids (within half a step).</summary>
    private static void AssertFp32OnTheOutputGrids(string kept, string model, TestNet net, List<(byte[] Bytes, float[] Floats)> images)
    {
        var grids = OutputGrids(ModelLoader.Load(kept));
        using var session = new InferenceSession(kept);
        using var source = new InferenceSession(model);
        foreach (var (bytes, floats) in images)
        {
            var fromBytes = Run<byte>(session, net.InputName, OrtValue.CreateTensorValueFromMemory(bytes, net.InputShape));
            var fp32 = Run<float>(source, net.InputName, OrtValue.CreateTensorValueFromMemory(floats, net.InputShape));
            foreach (var (name, values) in fp32)
            {
                var (scale, zeroPoint) = grids[name];
                var (low, high) = ((0 - zeroPoint) * scale, (255 - zeroPoint) * scale);
                Assert.All(values.Zip(fromBytes[name]), p =>
                    Assert.True(Math.Abs(Math.Clamp(p.First, low, high) - ((p.Second - zeroPoint) * scale)) <= (scale * 0.5001f) + 1e-6f, $"{name}: FP32 {p.First}, byte {p.Second}"));
            }
        }
    }

    /// <summary>Options under which FP32 ships, the way <paramref name="way"/> says.</summary>
    private QuantizationOptions Forced(string way, QuantizationOptions options, string model, string calibration, string validation)
    {
        switch (way)
        {
            case "gate failed under ship-fp32":
                return options with { Validation = new ValidationOptions { Folder = validation, Checks = [AccuracyCheck.Parse("sqnr>=200")], OnFailure = AccuracyFailureAction.ShipFp32 } };
            case "INT8 not faster (lock file)":
                var lockFile = _folder.File("model.quantization.json");
                new Quantizer(options with { Tuning = new TuningOptions { LockFile = lockFile, Record = true } }).Run(model, calibration, _folder.File("recording.onnx"));
                var root = JsonNode.Parse(File.ReadAllText(lockFile))!.AsObject();
                root["recorded"]!["ship"] = RecordedRun.KeptNotFaster;
                File.WriteAllText(lockFile, root.ToJsonString());
                return options with { Tuning = new TuningOptions { LockFile = lockFile } };
            default:
                // The small conv net's quantization parameters outweigh its 8-channel weights (QNT2007).
                return options with { KeepFloatIfSlower = true };
        }
    }

    /// <summary>The conv net, calibration and validation samples made from bytes (x = u / 255), and per held-out sample its bytes and floats.</summary>
    private (string Model, string Calibration, string Validation, List<(byte[] Bytes, float[] Floats)> Images) Prepare(TestNet net)
    {
        var model = Path.Combine(_folder.Sub("model"), "model.onnx");
        ModelWriter.Save(net.Model, model);
        var calibration = WriteImages(_folder.Sub("calibration"), net, QuantizeTestKit.CalibrationSeeds.Take(8));
        var validation = WriteImages(_folder.Sub("validation"), net, QuantizeTestKit.HeldOutSeeds);
        var images = QuantizeTestKit.HeldOutSeeds.Select(seed => Image(net, seed)).ToList();
        return (model, calibration.Folder, validation.Folder, images);
    }

    private static (string Folder, int Count) WriteImages(string folder, TestNet net, IEnumerable<int> seeds)
    {
        var count = 0;
        foreach (var seed in seeds)
        {
            var sample = Directory.CreateDirectory(Path.Combine(folder, $"sample_{count++:D3}")).FullName;
            Npy.WriteFloats(Path.Combine(sample, net.InputName + ".npy"), net.InputShape, Image(net, seed).Floats);
        }

        return (folder, count);
    }

    /// <summary>Structured test data in [-1, 1] as bytes, and the float sample they make (u / 255).</summary>
    private static (byte[] Bytes, float[] Floats) Image(TestNet net, int seed)
    {
        var bytes = QuantizeTestKit.Structured(seed, net.InputShape).Select(v => (byte)Math.Clamp(Math.Round(127.5 + (127.5 * v)), 0, 255)).ToArray();
        return (bytes, bytes.Select(b => (float)(b / 255.0)).ToArray());
    }

    private static List<string> Contract(ModelProto model) => model.Graph.Input.Concat(model.Graph.Output)
        .Select(v => $"{v.Name}: {v.Type.TensorType.ElemType} [{string.Join(",", v.Type.TensorType.Shape.Dim.Select(d => d.DimValue))}]").ToList();

    private static Dictionary<string, (float Scale, int ZeroPoint)> OutputGrids(ModelProto model)
    {
        var metadata = model.MetadataProps.ToDictionary(p => p.Key, p => p.Value, StringComparer.Ordinal);
        return model.Graph.Output.ToDictionary(
            o => o.Name,
            o => (float.Parse(metadata[UInt8BackEnd.ScaleKey(o.Name)], CultureInfo.InvariantCulture), int.Parse(metadata[UInt8BackEnd.ZeroPointKey(o.Name)], CultureInfo.InvariantCulture)),
            StringComparer.Ordinal);
    }

    private static Dictionary<string, float[]> Run<T>(InferenceSession session, string inputName, OrtValue input)
        where T : unmanaged
    {
        using var value = input;
        using var runOptions = new RunOptions();
        var names = session.OutputNames.ToArray();
        using var outputs = session.Run(runOptions, new Dictionary<string, OrtValue> { [inputName] = value }, names);
        return names.Select((n, i) => (n, outputs[i].GetTensorDataAsSpan<T>().ToArray().Select(v => Convert.ToSingle(v, CultureInfo.InvariantCulture)).ToArray()))
            .ToDictionary(p => p.n, p => p.Item2, StringComparer.Ordinal);
    }
}
