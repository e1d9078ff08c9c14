using Microsoft.ML.OnnxRuntime.Tensors;
using Quantize.Onnx.Model;
using Quantize.Onnx.Samples;
using Quantize.Onnx.Samples.Images;
using Quantize.Onnx.Tests.Samples.Images;
using Quantize.Onnx.Tests.Samples;
using Quantize.Onnx.Tests.TestModels;
using Quantize.Onnx.Validation;

namespace Quantize.Onnx.Tests.Quantization;

/// <summary>
/// Calibration data as users have it, through <see cref="Quantizer.Run"/>: a folder of images calibrates
/// exactly like the equivalent .npy tensors, class folders are ground truth for the accuracy gate, a
/// sample off by a preprocessing step warns (QNT2102), and a preprocessing that disagrees with the model fails (QNT1110).
/// </summary>
public sealed class ImageCalibrationTests : IDisposable
{
    private static readonly ImageOptions Normalised = new() { Mean = [0.5, 0.5, 0.5], Std = [0.25, 0.5, 0.5], Channels = ImageChannels.Bgr };

    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    /// <summary>An image from the structured test data (values in [-1, 1] mapped to 0..255), 20x20 so it is resized to the model's 16x16.</summary>
    private static RgbImage Photo(int seed)
    {
        var values = QuantizeTestKit.Structured(seed, [1, 3, 20, 20]);
        byte Byte(int c, int x, int y) => (byte)Math.Round((values[(((c * 20) + y) * 20) + x] + 1) * 127.5);
        return TestImages.Make(20, 20, (x, y) => (Byte(0, x, y), Byte(1, x, y), Byte(2, x, y)));
    }

    private string Save(TestNet net, string name = "model.onnx")
    {
        var path = Path.Combine(Directory.CreateDirectory(Path.Combine(_folder.Path, "model")).FullName, name);
        ModelWriter.Save(net.Model, path);
        return path;
    }

    [Fact]
    public void A_folder_of_images_calibrates_exactly_like_the_same_tensors_as_npy()
    {
        var net = TestNets.ConvNet();
        var model = Save(net);
        var images = Directory.CreateDirectory(Path.Combine(_folder.Path, "images")).FullName;
        var npy = Directory.CreateDirectory(Path.Combine(_folder.Path, "npy")).FullName;
        var shape = ImageInputShape.Resolve(new InputSpec(net.InputName, TensorElementType.Float, [1, 3, 16, 16]), Normalised, "x");
        foreach (int seed in QuantizeTestKit.CalibrationSeeds.Take(8))
        {
            var png = TestImages.Write(Path.Combine(images, $"{seed}.png"), Photo(seed));
            var tensor = ImageTensorizer.ToTensor(Onnx.Samples.Images.ImageDecoder.Decode(png), shape, png);
            Npy.WriteFloats(Path.Combine(npy, $"{seed}.npy"), tensor.Shape, tensor.AsFloats().ToArray());
        }

        var options = QuantizeTestKit.Options() with { Images = Normalised, BiasCorrection = false };
        var fromImages = new Quantizer(options).Run(model, images, Path.Combine(_folder.Path, "images.onnx"));
        var fromNpy = new Quantizer(options).Run(model, npy, Path.Combine(_folder.Path, "npy.onnx"));

        Assert.Equal(8, fromImages.CalibrationSamples);
        Assert.DoesNotContain(fromImages.Warnings, w => w.Code.StartsWith("QNT21", StringComparison.Ordinal));
        Assert.True(fromImages.Fusion.FusedCount > 0);
        Assert.Equal(File.ReadAllBytes(fromNpy.OutputPath), File.ReadAllBytes(fromImages.OutputPath));
        Assert.Equal("0.5;0.5;0.5", fromImages.Settings["image-mean"]);
        Assert.Equal("bgr", fromImages.Settings["image-channels"]);
    }

    [Fact]
    public void Class_folders_are_the_ground_truth_of_the_accuracy_gate()
    {
        var net = Classifier();
        var model = Save(net);
        var calibration = Directory.CreateDirectory(Path.Combine(_folder.Path, "cal")).FullName;
        foreach (int seed in QuantizeTestKit.CalibrationSeeds.Take(8))
        {
            TestImages.Write(Path.Combine(calibration, $"{seed}.png"), Photo(seed));
        }

        // Each validation image goes into the folder of the class FP32 predicts, except one: FP32 top-1 is then exactly (n - 1) / n.
        var validation = Directory.CreateDirectory(Path.Combine(_folder.Path, "val")).FullName;
        File.WriteAllLines(Path.Combine(validation, ClassLabels.FileName), ["first", "second"]);
        var shape = ImageInputShape.Resolve(new InputSpec("input", TensorElementType.Float, [1, 3, 16, 16]), Normalised, "x");
        var seeds = Enumerable.Range(500, 10).ToList();
        var predicted = QuantizeTestKit.Run(model, "input", [1, 3, 16, 16],
            seeds.Select(s => ImageTensorizer.ToTensor(Photo(s), shape, "x").AsFloats().ToArray())).Select(o => o["probs"][1] > o["probs"][0] ? 1 : 0).ToList();
        for (int i = 0; i < seeds.Count; i++)
        {
            int label = i == 0 ? 1 - predicted[i] : predicted[i];
            TestImages.Write(Path.Combine(Directory.CreateDirectory(Path.Combine(validation, label == 0 ? "first" : "second")).FullName, $"{seeds[i]}.png"), Photo(seeds[i]));
        }

        var options = QuantizeTestKit.Options() with { Images = Normalised, Validation = new ValidationOptions { Folder = validation, Checks = [AccuracyCheck.Parse("top1>=0")] } };
        var result = new Quantizer(options).Run(model, calibration, Path.Combine(_folder.Path, "out.onnx"));

        var top1 = Assert.Single(result.Validation!.Metrics, m => m.Metric == "top1");
        Assert.Equal(10, top1.Samples);
        Assert.Equal(90, top1.Fp32!.Value, 6);
    }

    [Fact]
    public void A_sample_that_missed_the_scaling_warns_QNT2102_naming_it()
    {
        var net = TestNets.ConvNet();
        var model = Save(net);
        var calibration = QuantizeTestKit.WriteCalibration(Path.Combine(_folder.Path, "cal"), net.InputName, net.InputShape, QuantizeTestKit.CalibrationSeeds.Take(6));
        var raw = Path.Combine(calibration, "sample_zzz", net.InputName + ".npy");
        Directory.CreateDirectory(Path.GetDirectoryName(raw)!);
        Npy.WriteFloats(raw, net.InputShape, QuantizeTestKit.Structured(7, net.InputShape).Select(v => (v + 1) * 127.5f).ToArray());

        // The unscaled sample stretches the input grid 255-fold, so INT8 is noise: under ship-fp32 the fidelity floor keeps FP32.
        var options = QuantizeTestKit.Options() with { Validation = new ValidationOptions { OnFailure = AccuracyFailureAction.ShipFp32 } };
        var result = new Quantizer(options).Run(model, calibration, Path.Combine(_folder.Path, "out.onnx"));

        Assert.Equal(OutputKind.KeptFloatFailedCheck, result.Output);
        Assert.Contains(result.Warnings, w => w.Code == ErrorCodes.FidelityTooLowShippedFp32);
        var warning = Assert.Single(result.Warnings, w => w.Code == ErrorCodes.CalibrationRangeOutlier);
        Assert.Equal(Path.GetDirectoryName(raw), warning.File);
        Assert.Contains("sample_zzz", warning.Message);
    }

    [Fact]
    public void An_image_size_that_disagrees_with_the_model_is_QNT1110_naming_both()
    {
        var net = TestNets.ConvNet();
        var model = Save(net);
        var calibration = Directory.CreateDirectory(Path.Combine(_folder.Path, "cal")).FullName;
        TestImages.Write(Path.Combine(calibration, "a.png"), Photo(1));
        var output = Path.Combine(_folder.Path, "out.onnx");

        var e = Assert.Throws<QuantizeException>(() => new Quantizer(QuantizeTestKit.Options() with { Images = new ImageOptions { Size = (32, 32) } }).Run(model, calibration, output));

        Assert.Equal(ErrorCodes.ImagePreprocessingMismatch, e.Code);
        Assert.Contains("32x32", e.Message);
        Assert.Contains("16x16", e.Message);
        Assert.False(File.Exists(output));
    }

    /// <summary>input 1×3×16×16 → conv 3→8 → relu → global average pool → flatten → gemm 8→2 → softmax = probs [1, 2].</summary>
    private static TestNet Classifier()
    {
        var b = new TestModelBuilder(13, 29, false, "classifier");
        var x = b.Input("input", 1, 3, 16, 16);
        var features = b.Node("Flatten", "flatten", [b.GlobalAveragePool("gap", b.Relu("relu", b.Conv("conv", x, 3, 8)))]);
        b.Softmax("probs", b.Gemm("fc", features, 8, 2));
        b.Output("probs", 1, 2);
        return new TestNet(b.Build(), "input", [1, 3, 16, 16], b.ConvNodes);
    }
}
