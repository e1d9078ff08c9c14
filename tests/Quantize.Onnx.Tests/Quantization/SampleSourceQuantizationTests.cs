using System.IO.Compression;
using Google.Protobuf;
using Quantize.Onnx.Model;
using Quantize.Onnx.Samples;
using Quantize.Onnx.Tests.TestModels;

namespace Quantize.Onnx.Tests.Quantization;

/// <summary>
/// .npz archives, sample lists and the seeded shuffle through <see cref="Quantizer.Run"/>: each calibrates
/// exactly like the plain .npy folder holding the same samples (byte-identical INT8 models).
/// </summary>
public sealed class SampleSourceQuantizationTests : IDisposable
{
    private readonly TempFolder _folder = new();
    private readonly TestNet _net = TestNets.ConvNet();

    public void Dispose() => _folder.Dispose();

    private string Model()
    {
        var path = Path.Combine(_folder.Path, "model.onnx");
        if (!File.Exists(path))
        {
            ModelWriter.Save(_net.Model, path);
        }

        return path;
    }

    /// <summary>The INT8 graph (weights, scales, zero points); provenance, which names the settings, is left out.</summary>
    private byte[] Quantize(string calibration, QuantizationOptions? options = null)
    {
        var output = Path.Combine(_folder.Path, "out", Guid.NewGuid().ToString("N") + ".onnx");
        new Quantizer((options ?? QuantizeTestKit.Options()) with { BiasCorrection = false }).Run(Model(), calibration, output);
        return ModelLoader.Load(output).Graph.ToByteArray();
    }

    [Fact]
    public void Npz_archives_calibrate_like_the_same_npy_files()
    {
        var npy = QuantizeTestKit.WriteCalibration(Path.Combine(_folder.Path, "npy"), _net.InputName, _net.InputShape, QuantizeTestKit.CalibrationSeeds.Take(6));
        var npz = Directory.CreateDirectory(Path.Combine(_folder.Path, "npz")).FullName;
        foreach (var sample in Directory.GetDirectories(npy))
        {
            using var zip = ZipFile.Open(Path.Combine(npz, Path.GetFileName(sample) + ".npz"), ZipArchiveMode.Create);
            zip.CreateEntryFromFile(Path.Combine(sample, _net.InputName + ".npy"), _net.InputName + ".npy", CompressionLevel.Optimal);
        }

        Assert.Equal(Quantize(npy), Quantize(npz));
    }

    [Fact]
    public void A_list_or_a_seeded_shuffle_with_a_limit_calibrates_like_a_folder_of_just_those_samples()
    {
        var all = QuantizeTestKit.WriteCalibration(Path.Combine(_folder.Path, "all"), _net.InputName, _net.InputShape, QuantizeTestKit.CalibrationSeeds);
        var picked = SampleSet.Open(all, [new InputSpec(_net.InputName, Microsoft.ML.OnnxRuntime.Tensors.TensorElementType.Float, [1, 3, 16, 16])],
            new SampleSetOptions { ShuffleSeed = 7, MaxSamples = 4 }).Sources;
        var subset = Directory.CreateDirectory(Path.Combine(_folder.Path, "subset")).FullName;
        foreach (var sample in picked)
        {
            var target = Directory.CreateDirectory(Path.Combine(subset, Path.GetFileName(sample))).FullName;
            File.Copy(Path.Combine(sample, _net.InputName + ".npy"), Path.Combine(target, _net.InputName + ".npy"));
        }

        // A list keeps its order, and results may depend on sample order (steps that use the first samples): name order like the folder, then the shuffled order.
        var sorted = Path.Combine(_folder.Path, "sorted.txt");
        File.WriteAllLines(sorted, picked.Order(StringComparer.Ordinal).Select(p => Path.GetRelativePath(_folder.Path, p)));
        var shuffled = Path.Combine(_folder.Path, "shuffled.txt");
        File.WriteAllLines(shuffled, picked.Select(p => Path.GetRelativePath(_folder.Path, p)));

        Assert.Equal(Quantize(subset), Quantize(sorted));
        var seeded = Quantize(all, QuantizeTestKit.Options() with { CalibrationShuffleSeed = 7, MaxCalibrationSamples = 4 });
        Assert.Equal(Quantize(shuffled), seeded);
        Assert.NotEqual(Quantize(all, QuantizeTestKit.Options() with { MaxCalibrationSamples = 4 }), seeded);
    }
}
