using Microsoft.ML.OnnxRuntime.Tensors;
using Quantize.Onnx.Samples;
using Quantize.Onnx.Samples.Images;

namespace Quantize.Onnx.Tests.Samples.Images;

/// <summary>Image samples through <see cref="SampleSet"/>: flat folders, class folders with labels, sample folders with expected images.</summary>
public sealed class ImageSampleSetTests : IDisposable
{
    private static readonly InputSpec Input = new("x", TensorElementType.Float, [1, 3, 2, 2]);
    private static readonly InputSpec Dynamic = new("x", TensorElementType.Float, [1, 3, null, null]);

    private readonly TempFolder _dir = new();

    public void Dispose() => _dir.Dispose();

    private static RgbImage Solid(byte value, int size = 2) => TestImages.Make(size, size, (_, _) => (value, value, value));

    [Fact]
    public void Images_directly_in_the_folder_are_samples_resized_to_the_model_input()
    {
        TestImages.Write(_dir.File("b.png"), Solid(255, 4));
        TestImages.Write(_dir.File("a.jpg"), Solid(0, 4));
        TestImages.Write(_dir.File("c.bmp"), Solid(51, 3));

        var set = SampleSet.Open(_dir.Path, [Input]);
        set.Validate();
        var samples = set.Enumerate().ToList();

        Assert.Equal(["a.jpg", "b.png", "c.bmp"], samples.Select(s => Path.GetFileName(s.Source)));
        Assert.All(samples, s => Assert.Equal([1L, 3, 2, 2], s.Inputs[0].Shape));
        Assert.All(samples[1].Inputs[0].AsFloats().ToArray(), v => Assert.Equal(1f, v));
        Assert.All(samples[2].Inputs[0].AsFloats().ToArray(), v => Assert.Equal(0.2f, v, 5));
        Assert.All(samples, s => Assert.Null(s.GroundTruth));
    }

    [Fact]
    public void Class_folders_label_their_images_through_classes_txt()
    {
        TestImages.Write(Path.Combine(_dir.Sub("cat"), "1.png"), Solid(10));
        TestImages.Write(Path.Combine(_dir.Sub("dog"), "2.png"), Solid(20));
        File.WriteAllLines(_dir.File(ClassLabels.FileName), ["dog", "cat"]);

        var samples = SampleSet.Open(_dir.Path, [Input]).Enumerate().ToList();

        Assert.Equal([1, 0], samples.Select(s => s.GroundTruth!.ClassIndex!.Value));
        var truth = samples[0].GroundTruth!.For("probs", [1, 2]);
        Assert.NotNull(truth);
        Assert.True(truth.Labels);
        Assert.Equal([1f], truth.Values);
        // Not a classifier output (an image): no ground truth from a label.
        Assert.Null(samples[0].GroundTruth!.For("mask", [1, 1, 2, 2]));
    }

    [Fact]
    public void Numeric_class_folders_are_class_indices_without_classes_txt()
    {
        TestImages.Write(Path.Combine(_dir.Sub("3"), "a.png"), Solid(10));

        var sample = SampleSet.Open(_dir.Path, [Input]).ReadSample(0);

        Assert.Equal(3, sample.GroundTruth!.ClassIndex);
    }

    [Fact]
    public void An_unknown_label_is_QNT1112_naming_the_image()
    {
        var image = TestImages.Write(Path.Combine(_dir.Sub("180"), "a.png"), Solid(10));
        TestImages.Write(Path.Combine(_dir.Sub("cat"), "b.png"), Solid(10));
        File.WriteAllLines(_dir.File(ClassLabels.FileName), ["0", "180"]);
        var set = SampleSet.Open(_dir.Path, [Input]);

        var e = Assert.Throws<QuantizeException>(set.Validate);

        Assert.Equal(ErrorCodes.ClassLabelUnknown, e.Code);
        Assert.EndsWith(Path.Combine("cat", "b.png"), e.File);
        Assert.Contains("'cat'", e.Message);
        Assert.Equal(1, set.ReadSample(0).GroundTruth!.ClassIndex);
        Assert.Equal(ErrorCodes.ClassLabelUnknown, Assert.Throws<QuantizeException>(() => SampleSet.Open(_dir.Path, [Input]).ReadSample(1)).Code);

        File.Delete(_dir.File(ClassLabels.FileName));
        Assert.Contains("not a class index", Assert.Throws<QuantizeException>(() => SampleSet.Open(_dir.Path, [Input]).ReadSample(1)).Message);
    }

    [Fact]
    public void Sample_folder_with_an_input_image_and_an_expected_image()
    {
        var sample = _dir.Sub("000");
        TestImages.Write(Path.Combine(sample, "x.png"), Solid(0, 2));
        // Expected output 4x4 (e.g. 2x super-resolution): converted like the inputs, never resized.
        TestImages.Write(Path.Combine(Directory.CreateDirectory(Path.Combine(sample, "expected")).FullName, "y.png"), TestImages.Make(4, 4, (x, _) => ((byte)(x * 85), 0, 255)));

        var read = SampleSet.Open(_dir.Path, [Dynamic]).ReadSample(0);
        var truth = read.GroundTruth!.For("y", [1, 3, 4, 4]);

        Assert.Equal([1L, 3, 2, 2], read.Inputs[0].Shape);
        Assert.NotNull(truth);
        Assert.False(truth.Labels);
        Assert.Equal([0f, 1 / 3f, 2 / 3f, 1f], truth.Values[..4], new Tolerance(1e-5f));
        Assert.All(truth.Values[32..48], v => Assert.Equal(1f, v));

        var e = Assert.Throws<QuantizeException>(() => read.GroundTruth!.For("y", [1, 3, 8, 8]));
        Assert.Equal(ErrorCodes.ExpectedShapeMismatch, e.Code);
        Assert.Contains("[1,3,4,4]", e.Message);
    }

    [Fact]
    public void A_tensor_sample_may_have_an_expected_image_too()
    {
        var sample = _dir.Sub("000");
        Npy.WriteFloats(Path.Combine(sample, "x.npy"), [1, 3, 2, 2], new float[12]);
        TestImages.Write(Path.Combine(Directory.CreateDirectory(Path.Combine(sample, "expected")).FullName, "y.png"), Solid(255));

        var truth = SampleSet.Open(_dir.Path, [Input]).ReadSample(0).GroundTruth!.For("y", [1, 3, 2, 2]);

        Assert.NotNull(truth);
        Assert.All(truth.Values, v => Assert.Equal(1f, v));
        Assert.Null(SampleSet.Open(_dir.Path, [Input]).ReadSample(0).GroundTruth!.For("other", [1, 3, 2, 2]));
    }

    [Fact]
    public void Image_options_apply_and_their_mismatch_with_the_model_is_QNT1110()
    {
        TestImages.Write(_dir.File("a.png"), Solid(255));

        var options = new SampleSetOptions { Images = new ImageOptions { Mean = [0.5], Std = [0.5] } };
        Assert.All(SampleSet.Open(_dir.Path, [Input], options).ReadSample(0).Inputs[0].AsFloats().ToArray(), v => Assert.Equal(1f, v));

        var wrong = new SampleSetOptions { Images = new ImageOptions { Size = (4, 4) } };
        var e = Assert.Throws<QuantizeException>(SampleSet.Open(_dir.Path, [Input], wrong).Validate);
        Assert.Equal(ErrorCodes.ImagePreprocessingMismatch, e.Code);
        Assert.Contains("4x4", e.Message);
        Assert.Contains("2x2", e.Message);
    }

    [Fact]
    public void An_image_of_another_size_is_stretched_to_the_models_fixed_size()
    {
        // The model's fixed 2x2 is the target: a 5x7 image is stretched to it.
        TestImages.Write(_dir.File("big.png"), TestImages.Make(5, 7, (_, _) => (1, 2, 3)));

        var set = SampleSet.Open(_dir.Path, [Input]);
        set.Validate();

        Assert.Equal([1L, 3, 2, 2], set.ReadSample(0).Inputs[0].Shape);
    }

    [Fact]
    public void Validate_reports_progress_per_sample()
    {
        for (int i = 0; i < 3; i++)
        {
            TestImages.Write(_dir.File($"{i}.png"), Solid((byte)i));
        }

        var seen = new List<int>();
        SampleSet.Open(_dir.Path, [Input]).Validate(seen.Add);

        Assert.Equal([1, 2, 3], seen);
    }

    private sealed class Tolerance(float tolerance) : IEqualityComparer<float>
    {
        public bool Equals(float a, float b) => Math.Abs(a - b) <= tolerance;

        public int GetHashCode(float value) => 0;
    }
}
