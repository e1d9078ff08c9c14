using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Quantize.Onnx.Model;
using Quantize.Onnx.Model.Proto;
using Quantize.Onnx.Samples;
using Quantize.Onnx.Samples.Images;
using Quantize.Onnx.Tests.Samples.Images;
using Quantize.Onnx.Tests.TestModels;
using Quantize.Onnx.Validation;

namespace Quantize.Onnx.Tests.Quantization;

/// <summary>
/// <see cref="QuantizationOptions.UInt8Inputs"/> through <see cref="Quantizer.Run"/>: the shipped model takes the image's
/// bytes and computes what the measured model (float input, the samples' preprocessing) computes — bit for bit when the
/// bytes land on the input grid (scale 1/255, mean 0, std 1), within an output step with ImageNet-style mean/std.
/// </summary>
public sealed class UInt8InputTests : IDisposable
{
    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    [Fact]
    public void Bytes_feed_the_first_QLinearConv_directly_and_give_the_measured_models_outputs_bit_for_bit()
    {
        var (shipped, result, images) = Quantize(new ImageOptions());

        Assert.Equal("true", result.Settings["uint8-inputs"]);
        Assert.Equal((int)TensorProto.Types.DataType.Uint8, ModelLoader.Load(shipped).Graph.Input.Single().Type.TensorType.ElemType);
        Assert.Equal(new FileInfo(shipped).Length, result.Int8Bytes);
        var optimized = QuantizeTestKit.OptimizedGraph(shipped);
        Assert.Contains(optimized.Node, n => n.OpType == "QLinearConv" && n.Input[0] == TestNets.ImageInput);
        Assert.DoesNotContain(optimized.Node, n => n.OpType == "QuantizeLinear" && n.Input[0] == TestNets.ImageInput);

        var measured = UInt8MeasuredModel.Rebuild(shipped, _folder.Path);
        foreach (var (bytes, floats) in images)
        {
            var fromBytes = Run(shipped, OrtValue.CreateTensorValueFromMemory(bytes, TestNets.ImageShape));
            var fromFloats = Run(measured, OrtValue.CreateTensorValueFromMemory(floats, TestNets.ImageShape));
            foreach (var (name, values) in fromFloats)
            {
                Assert.Equal(values, fromBytes[name]);
            }
        }
    }

    [Fact]
    public void The_SuperResolution_samples_waifu2x_takes_bytes_passes_its_gate_and_computes_what_was_measured()
    {
        var models = Repository.SampleModels;
        var images = new ImageOptions { Size = (96, 96), Interpolation = ImageInterpolation.Nearest };
        var options = new QuantizationOptions
        {
            Images = images,
            UInt8Inputs = true,
            Validation = new ValidationOptions { Folder = Path.Combine(models, "waifu2x.validation"), Checks = [AccuracyCheck.Parse("drop:psnr<=1")], LayerSamples = 2 },
            KeepFloatIfSlower = false,
            LatencyRuns = 1,
        };
        var shipped = Path.Combine(_folder.Path, "waifu2x.onnx");
        var result = new Quantizer(options).Run(Path.Combine(models, "waifu2x.onnx"), Path.Combine(models, "waifu2x.calibration"), shipped);

        Assert.True(result.Validation!.Passed);
        Assert.Equal(OutputKind.Quantized, result.Output);
        var input = ModelLoader.Load(shipped).Graph.Input.Single();
        Assert.Equal((int)TensorProto.Types.DataType.Uint8, input.Type.TensorType.ElemType);
        // waifu2x pads its input (edge mode) before the first conv: the Pad carries the bytes' grid, so it runs on the bytes.
        AssertFirstIntegerKernelReadsBytesThroughUInt8OpsOnly(shipped, input.Name, "QLinearConv");

        long[] dims = [1, 3, 96, 96];
        var shape = ImageInputShape.Resolve(new InputSpec(input.Name, TensorElementType.Float, [1, 3, null, null]), images, "x");
        var measured = UInt8MeasuredModel.Rebuild(shipped, _folder.Path);
        foreach (var png in Directory.GetFiles(Path.Combine(models, "waifu2x.calibration"), "*.png").Order(StringComparer.Ordinal))
        {
            var floats = ImageTensorizer.ToTensor(ImageDecoder.Decode(png), shape, png).AsFloats().ToArray();
            var bytes = floats.Select(v => (byte)Math.Round(v * 255)).ToArray(); // nearest neighbour: every value is a pixel's byte / 255
            var fromBytes = Run(shipped, OrtValue.CreateTensorValueFromMemory(bytes, dims));
            var fromFloats = Run(measured, OrtValue.CreateTensorValueFromMemory(floats, dims));
            Assert.Equal(fromFloats.Single().Value, fromBytes.Single().Value);
        }
    }

    [Fact]
    public void A_constant_Pad_before_the_first_conv_runs_on_the_bytes_and_gives_the_measured_models_outputs_bit_for_bit()
    {
        var (shipped, _, images) = Quantize(new ImageOptions(), PaddedConvNet());

        AssertFirstIntegerKernelReadsBytesThroughUInt8OpsOnly(shipped, TestNets.ImageInput, "QLinearConv");
        var pad = ModelLoader.Load(shipped).Graph.Node.Single(n => n.OpType == "Pad");
        Assert.Equal(TestNets.ImageInput, pad.Input[0]);

        var measured = UInt8MeasuredModel.Rebuild(shipped, _folder.Path);
        foreach (var (bytes, floats) in images)
        {
            var fromBytes = Run(shipped, OrtValue.CreateTensorValueFromMemory(bytes, TestNets.ImageShape));
            var fromFloats = Run(measured, OrtValue.CreateTensorValueFromMemory(floats, TestNets.ImageShape));
            Assert.Equal(fromFloats.Single().Value, fromBytes.Single().Value);
        }
    }

    [Fact]
    public void Per_channel_mean_and_std_are_computed_in_the_graph_within_one_output_step()
    {
        var imageNet = new ImageOptions { Mean = [0.485, 0.456, 0.406], Std = [0.229, 0.224, 0.225] };
        var (shipped, result, images) = Quantize(imageNet);

        var graph = ModelLoader.Load(shipped).Graph;
        Assert.Equal((int)TensorProto.Types.DataType.Uint8, graph.Input.Single().Type.TensorType.ElemType);
        Assert.Equal(["Cast", "Mul", "Add"], graph.Node.Take(3).Select(n => n.OpType));
        Assert.Equal([1L, 3, 1, 1], graph.Initializer(graph.Node[1].Input[1]).Dims);
        Assert.True(result.Fusion.FusedCount > 0);

        var measured = UInt8MeasuredModel.Rebuild(shipped, _folder.Path);
        var steps = graph.Output.ToDictionary(o => o.Name, o => OutputStep(graph, o.Name), StringComparer.Ordinal);
        foreach (var (bytes, floats) in images)
        {
            var fromBytes = Run(shipped, OrtValue.CreateTensorValueFromMemory(bytes, TestNets.ImageShape));
            var fromFloats = Run(measured, OrtValue.CreateTensorValueFromMemory(floats, TestNets.ImageShape));
            foreach (var (name, values) in fromFloats)
            {
                Assert.All(values.Zip(fromBytes[name]), p => Assert.True(Math.Abs(p.First - p.Second) <= steps[name] * 1.001, $"{name}: {p.First} vs {p.Second}"));
            }
        }
    }

    [Fact]
    public void An_input_that_is_not_an_image_is_QNT1531_naming_it()
    {
        var net = TestNets.Mlp();
        var (model, calibration) = QuantizeTestKit.Prepare(net, _folder.Path);
        var e = Assert.Throws<QuantizeException>(() =>
            new Quantizer(QuantizeTestKit.Options() with { UInt8Inputs = true }).Run(model, calibration, Path.Combine(_folder.Path, "out.onnx")));

        Assert.Equal(ErrorCodes.UInt8InputNotImage, e.Code);
        Assert.Contains($"'{net.InputName}'", e.Message, StringComparison.Ordinal);
        Assert.Contains("rank 4", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Uint8_inputs_without_calibration_data_is_QNT1530()
    {
        var (model, _) = QuantizeTestKit.Prepare(TestNets.ConvNet(), _folder.Path);
        var e = Assert.Throws<QuantizeException>(() =>
            new Quantizer(QuantizeTestKit.Options() with { Mode = QuantizationMode.Dynamic, UInt8Inputs = true }).Run(model, null, Path.Combine(_folder.Path, "out.onnx")));
        Assert.Equal(ErrorCodes.UInt8InputsNeedStatic, e.Code);
    }

    /// <summary>Quantizes the conv net calibrated on 8 PNGs with uint8 inputs: the shipped model, the result, and per image (bytes NCHW, the float sample).</summary>
    private (string Shipped, QuantizeResult Result, List<(byte[] Bytes, float[] Floats)> Images) Quantize(ImageOptions options, TestNet? net = null)
    {
        net ??= TestNets.ConvNet();
        var model = Path.Combine(_folder.Sub("model"), "model.onnx");
        ModelWriter.Save(net.Model, model);
        var calibration = _folder.Sub("images");
        var shape = ImageInputShape.Resolve(new InputSpec(net.InputName, TensorElementType.Float, [1, 3, 16, 16]), options, "x");
        var images = new List<(byte[], float[])>();
        foreach (int seed in QuantizeTestKit.CalibrationSeeds.Take(8))
        {
            var image = Photo(seed);
            var png = TestImages.Write(Path.Combine(calibration, $"{seed}.png"), image);
            var floats = ImageTensorizer.ToTensor(ImageDecoder.Decode(png), shape, png).AsFloats().ToArray();
            var bytes = new byte[3 * 16 * 16];
            for (int c = 0; c < 3; c++)
            {
                for (int p = 0; p < 256; p++)
                {
                    bytes[(c * 256) + p] = image.Pixels[(p * 3) + c];
                }
            }

            images.Add((bytes, floats));
        }

        var output = Path.Combine(_folder.Path, "uint8.onnx");
        var result = new Quantizer(QuantizeTestKit.Options() with { Images = options, UInt8Inputs = true }).Run(model, calibration, output);
        Assert.Equal(OutputKind.Quantized, result.Output);
        return (output, result, images);
    }

    /// <summary>input → Pad 1 on each side (constant 1, the byte 255: a zero Pad is folded into the conv; opset-11 form) → conv1 3→8 3×3 → Relu → conv2 8→4 3×3 (output) 1×4×18×18.</summary>
    private static TestNet PaddedConvNet()
    {
        var b = new TestModelBuilder(13, 5, false, "padded");
        var x = b.Input(TestNets.ImageInput, TestNets.ImageShape);
        var pads = b.ConstantInt64("pads", [8], [0, 0, 1, 1, 0, 0, 1, 1]);
        var padded = b.Node("Pad", "pad", [x, pads, b.Constant("pad_value", [], [1f])]);
        var a = b.Relu("relu", b.Conv("conv1", padded, 3, 8));
        b.Conv("conv2", a, 8, 4);
        b.Output("conv2", 1, 4, 18, 18);
        return new TestNet(b.Build(), TestNets.ImageInput, TestNets.ImageShape, b.ConvNodes);
    }

    /// <summary>In ORT's optimized graph, the first <paramref name="kernel"/> reads the graph input through uint8 ops only (Pads), no float op.</summary>
    private static void AssertFirstIntegerKernelReadsBytesThroughUInt8OpsOnly(string shipped, string input, string kernel)
    {
        var optimized = QuantizeTestKit.OptimizedGraph(shipped);
        var first = optimized.Node.First(n => n.OpType == kernel);
        var tensor = first.Input[0];
        while (tensor != input)
        {
            var producer = optimized.Node.Single(n => n.Output.Contains(tensor));
            Assert.Equal("Pad", producer.OpType);
            tensor = producer.Input[0];
        }

        Assert.DoesNotContain(optimized.Node.TakeWhile(n => n != first), n => n.OpType is "DequantizeLinear" or "QuantizeLinear" or "Cast");
    }

    /// <summary>The step of the grid a graph output is dequantized from (its final DequantizeLinear's scale).</summary>
    private static float OutputStep(GraphProto graph, string output)
    {
        var dequantize = graph.Node.Single(n => n.Output.Contains(output));
        Assert.Equal("DequantizeLinear", dequantize.OpType);
        return TensorValues.ReadFloats(graph.Initializer(dequantize.Input[1]))[0];
    }

    private static Dictionary<string, float[]> Run(string model, OrtValue input)
    {
        using var value = input;
        using var options = new SessionOptions { IntraOpNumThreads = 1 };
        using var session = new InferenceSession(model, options);
        using var runOptions = new RunOptions();
        var names = session.OutputNames.ToArray();
        using var outputs = session.Run(runOptions, new Dictionary<string, OrtValue> { [session.InputNames[0]] = value }, names);
        return names.Select((n, i) => (n, outputs[i].GetTensorDataAsSpan<float>().ToArray())).ToDictionary(p => p.n, p => p.Item2, StringComparer.Ordinal);
    }

    /// <summary>
    /// A 16x16 image from the structured test data (values in [-1, 1] mapped to 20..230, so the calibrated input range is not
    /// the bytes' grid): no resize, so every float sample came from bytes.
    /// </summary>
    private static RgbImage Photo(int seed)
    {
        var values = QuantizeTestKit.Structured(seed, [1, 3, 16, 16]);
        byte Byte(int c, int x, int y) => (byte)Math.Round(125 + (values[(((c * 16) + y) * 16) + x] * 105));
        return TestImages.Make(16, 16, (x, y) => (Byte(0, x, y), Byte(1, x, y), Byte(2, x, y)));
    }
}
