using System.IO.Compression;
using Microsoft.ML.OnnxRuntime.Tensors;
using Quantize.Onnx.Samples;

namespace Quantize.Onnx.Tests.Samples;

/// <summary>.npz archives, sample list files, and the seeded shuffle with a sample limit.</summary>
public sealed class SampleSourcesTests : IDisposable
{
    private static readonly InputSpec Image = new("x", TensorElementType.Float, [1, 2]);
    private static readonly InputSpec Rate = new("sr", TensorElementType.Int64, []);

    private readonly TempFolder _dir = new();

    public void Dispose() => _dir.Dispose();

    private string WriteNpz(string path, bool compressed, params (string Name, byte[] Npy)[] arrays)
    {
        using var zip = ZipFile.Open(path, ZipArchiveMode.Create);
        foreach (var (name, npy) in arrays)
        {
            using var stream = zip.CreateEntry(name + ".npy", compressed ? CompressionLevel.Optimal : CompressionLevel.NoCompression).Open();
            stream.Write(npy);
        }

        return path;
    }

    private static byte[] Floats(params float[] values) =>
        Npy.Build("<f4", $"(1, {values.Length})", values.SelectMany(BitConverter.GetBytes).ToArray());

    private static byte[] Int64Scalar(long value) => Npy.Build("<i8", "()", BitConverter.GetBytes(value));

    private void WriteFlatSamples(int count)
    {
        for (int i = 0; i < count; i++)
        {
            Npy.WriteFloats(_dir.File($"{i:D2}.npy"), [1, 2], i, i);
        }
    }

    [Fact]
    public void Each_npz_archive_is_one_sample_with_arrays_named_after_the_inputs()
    {
        WriteNpz(_dir.File("b.npz"), compressed: true, ("sr", Int64Scalar(16000)), ("x", Floats(3, 4)));
        WriteNpz(_dir.File("a.npz"), compressed: false, ("x", Floats(1, 2)), ("sr", Int64Scalar(8000)));

        var set = SampleSet.Open(_dir.Path, [Image, Rate]);
        set.Validate();
        var samples = set.Enumerate().ToList();

        Assert.Equal(["a.npz", "b.npz"], samples.Select(s => Path.GetFileName(s.Source)));
        Assert.Equal([3f, 4f], samples[1].Inputs[0].AsFloats().ToArray());
        Assert.Equal(16000, BitConverter.ToInt64(samples[1].Inputs[1].Data));
        Assert.Equal(["x", "sr"], samples[0].Inputs.Select(t => t.Name));
    }

    [Fact]
    public void An_archive_without_an_input_is_QNT1103_naming_its_arrays()
    {
        var path = WriteNpz(_dir.File("a.npz"), compressed: true, ("x", Floats(1, 2)), ("rate", Int64Scalar(1)));

        var e = Assert.Throws<QuantizeException>(SampleSet.Open(_dir.Path, [Image, Rate]).Validate);

        Assert.Equal(ErrorCodes.CalibrationInputMissing, e.Code);
        Assert.Equal(path, e.File);
        Assert.Contains("'sr'", e.Message);
        Assert.Contains("rate.npy", e.Message);
    }

    [Fact]
    public void An_archive_that_is_not_a_zip_is_QNT1106()
    {
        File.WriteAllBytes(_dir.File("a.npz"), [1, 2, 3]);

        Assert.Equal(ErrorCodes.CalibrationFileUnreadable, Assert.Throws<QuantizeException>(SampleSet.Open(_dir.Path, [Image]).Validate).Code);
    }

    [Fact]
    public void A_list_file_picks_a_subset_in_its_own_order()
    {
        WriteFlatSamples(5);
        Npy.WriteFloats(Path.Combine(_dir.Sub("folder", "s"), "x.npy"), [1, 2], 9, 9);
        var list = _dir.File("subset.txt");
        File.WriteAllLines(list, ["# a subset", "03.npy", "", "01.npy", "folder/s", "03.npy"]);

        var set = SampleSet.Open(list, [Image]);

        Assert.Equal(3, set.Count);
        Assert.Equal([3f, 1f, 9f], set.Enumerate().Select(s => s.Inputs[0].AsFloats()[0]));
    }

    [Fact]
    public void A_list_naming_a_missing_file_is_QNT1111_with_the_line()
    {
        WriteFlatSamples(1);
        var list = _dir.File("list.txt");
        File.WriteAllLines(list, ["00.npy", "missing.npy"]);

        var e = Assert.Throws<QuantizeException>(() => SampleSet.Open(list, [Image]));

        Assert.Equal(ErrorCodes.SampleListEntryMissing, e.Code);
        Assert.Equal(list, e.File);
        Assert.Contains("line 2", e.Message);
        Assert.Contains("missing.npy", e.Message);
    }

    [Fact]
    public void Shuffle_is_seeded_and_the_limit_takes_the_first_shuffled_samples()
    {
        WriteFlatSamples(20);
        List<string> Order(int? seed, int? max = null) =>
            SampleSet.Open(_dir.Path, [Image], new SampleSetOptions { ShuffleSeed = seed, MaxSamples = max }).Sources.Select(Path.GetFileName).ToList()!;

        var names = Order(null);
        var shuffled = Order(42);

        Assert.Equal(Enumerable.Range(0, 20).Select(i => $"{i:D2}.npy"), names);
        Assert.Equal(shuffled, Order(42));
        Assert.NotEqual(names, shuffled);
        Assert.NotEqual(shuffled, Order(43));
        Assert.Equal(names.Order(), shuffled.Order());
        Assert.Equal(shuffled.Take(5), Order(42, 5));
    }

    [Fact]
    public void Shuffle_order_is_fixed_across_machines()
    {
        // SplitMix64-driven Fisher-Yates: this order is part of the documented behaviour (same seed, same samples).
        var items = Enumerable.Range(0, 8).ToList();
        SampleOrder.Shuffle(items, 1);

        Assert.Equal(8, items.Distinct().Count());
        var again = Enumerable.Range(0, 8).ToList();
        SampleOrder.Shuffle(again, 1);
        Assert.Equal(items, again);
    }
}
