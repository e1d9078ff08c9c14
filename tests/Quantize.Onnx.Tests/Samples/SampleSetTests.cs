using System.Buffers.Binary;
using Microsoft.ML.OnnxRuntime.Tensors;
using Quantize.Onnx.Model.Proto;
using Quantize.Onnx.Samples;

namespace Quantize.Onnx.Tests.Samples;

public sealed class SampleSetTests : IDisposable
{
    private static readonly InputSpec Image = new("x", TensorElementType.Float, [null, 3, 4, 4]);
    private static readonly InputSpec Rate = new("sr", TensorElementType.Int64, []);

    private readonly TempFolder _dir = new();

    public void Dispose() => _dir.Dispose();

    private static QuantizeException ThrowsOnEnumerate(SampleSet set) =>
        Assert.Throws<QuantizeException>(() => set.Enumerate().ToList());

    [Fact]
    public void ReadsSampleFoldersNamedAfterInputsInModelOrder()
    {
        foreach (string s in new[] { "001", "000", "002" })
        {
            string dir = _dir.Sub(s);
            Npy.WriteFloats(Path.Combine(dir, "x.npy"), 1, 3, 4, 4);
            Npy.WriteInt64(Path.Combine(dir, "sr.npy"), [], long.Parse(s) + 8000);
            File.WriteAllText(Path.Combine(dir, "label.txt"), "180");
            File.WriteAllBytes(Path.Combine(dir, "page.png"), [0x89, 0x50]);
            File.WriteAllText(Path.Combine(dir, "meta.json"), "{}");
        }

        var set = SampleSet.Open(_dir.Path, [Image, Rate]);
        var samples = set.Enumerate().ToList();

        Assert.Equal(3, set.Count);
        Assert.Equal(["000", "001", "002"], samples.Select(s => Path.GetFileName(s.Source)));
        Assert.All(samples, s => Assert.Equal(["x", "sr"], s.Inputs.Select(t => t.Name)));
        Assert.Equal(TensorElementType.Float, samples[0].Inputs[0].ElementType);
        Assert.Equal([1L, 3L, 4L, 4L], samples[0].Inputs[0].Shape);
        Assert.Equal(8002, BinaryPrimitives.ReadInt64LittleEndian(samples[2].Inputs[1].Data));
    }

    [Fact]
    public void SortsSamplesByOrdinalNameAndSkipsExpectedAndHiddenFolders()
    {
        foreach (string s in new[] { "b", "a", "C", "expected", ".cache" })
        {
            Npy.WriteFloats(Path.Combine(_dir.Sub(s), "x.npy"), 1, 3, 4, 4);
        }

        Npy.WriteFloats(Path.Combine(_dir.Sub("a", "expected"), "out.npy"), 2);

        var set = SampleSet.Open(_dir.Path, [Image]);

        Assert.Equal(["C", "a", "b"], set.Sources.Select(Path.GetFileName));
        Assert.Equal(3, set.Enumerate().Count());
    }

    [Fact]
    public void ReadsTheRealCorpusLayoutWithExpectedOutputs()
    {
        // val/NNN/<input>.npy + val/NNN/expected/<output>.npy + images.
        string sample = _dir.Sub("000");
        Npy.WriteFloats(Path.Combine(sample, "x.npy"), 1, 3, 4, 4);
        Npy.WriteFloats(Path.Combine(_dir.Sub("000", "expected"), "softmax_0.tmp_0.npy"), 1, 2);
        File.WriteAllBytes(Path.Combine(sample, "line.png"), [1, 2, 3]);

        var sampleRead = Assert.Single(SampleSet.Open(_dir.Path, [Image]).Enumerate());

        Assert.Equal("x", Assert.Single(sampleRead.Inputs).Name);
    }

    [Fact]
    public void ReadsPbFilesNamedAfterInputs()
    {
        string dir = _dir.Sub("s0");
        Pb.WriteFloats(Path.Combine(dir, "x.pb"), 2, 3, 4, 4);
        var sr = new TensorProto { DataType = (int)TensorProto.Types.DataType.Int64 };
        sr.Int64Data.Add(16000);
        Pb.Write(Path.Combine(dir, "sr.pb"), sr);

        var sample = Assert.Single(SampleSet.Open(_dir.Path, [Image, Rate]).Enumerate());

        Assert.Equal([2L, 3L, 4L, 4L], sample.Inputs[0].Shape);
        Assert.Equal(16000, BinaryPrimitives.ReadInt64LittleEndian(sample.Inputs[1].Data));
    }

    [Fact]
    public void ReadsOnnxTestDataLayoutByInputOrder()
    {
        string dir = _dir.Sub("test_data_set_0");
        var sr = new TensorProto { DataType = (int)TensorProto.Types.DataType.Int64, Name = "sr" };
        sr.Int64Data.Add(8000);
        Pb.Write(Path.Combine(dir, "input_1.pb"), sr);
        Pb.WriteFloats(Path.Combine(dir, "input_0.pb"), 1, 3, 4, 4);
        Pb.WriteFloats(Path.Combine(dir, "output_0.pb"), 1, 10);

        var sample = Assert.Single(SampleSet.Open(_dir.Path, [Image, Rate]).Enumerate());

        Assert.Equal(["x", "sr"], sample.Inputs.Select(t => t.Name));
        Assert.Equal(TensorElementType.Float, sample.Inputs[0].ElementType);
        Assert.Equal(TensorElementType.Int64, sample.Inputs[1].ElementType);
    }

    [Fact]
    public void NamesMatchBeforeInputIndexes()
    {
        // Keras-style names: the file input_1.npy belongs to the input named input_1, not to index 1.
        var first = new InputSpec("input_1", TensorElementType.Float, [2]);
        var second = new InputSpec("input_0", TensorElementType.Int64, [1]);
        string dir = _dir.Sub("000");
        Npy.WriteFloats(Path.Combine(dir, "input_1.npy"), 2);
        Npy.WriteInt64(Path.Combine(dir, "input_0.npy"), [1], 5);

        var sample = Assert.Single(SampleSet.Open(_dir.Path, [first, second]).Enumerate());

        Assert.Equal(TensorElementType.Float, sample.Inputs[0].ElementType);
        Assert.Equal(TensorElementType.Int64, sample.Inputs[1].ElementType);
    }

    [Theory]
    [InlineData("images/0:0", "images_0_0.npy")]
    [InlineData("serving_default_input:0", "serving_default_input_0.npy")]
    [InlineData("a\\b|c", "a_b_c.pb")]
    public void MapsIllegalFileNameCharactersToUnderscore(string inputName, string fileName)
    {
        var spec = new InputSpec(inputName, TensorElementType.Float, [2]);
        string path = Path.Combine(_dir.Sub("000"), fileName);
        if (fileName.EndsWith(".pb", StringComparison.Ordinal))
        {
            Pb.WriteFloats(path, 2);
        }
        else
        {
            Npy.WriteFloats(path, 2);
        }

        var sample = Assert.Single(SampleSet.Open(_dir.Path, [spec]).Enumerate());

        Assert.Equal(inputName, sample.Inputs[0].Name);
    }

    [UnixFact("':' cannot appear in Windows file names")]
    public void PrefersTheExactNameWhenTheFileSystemAllowsIt()
    {
        var spec = new InputSpec("in:0", TensorElementType.Float, [null]);
        string dir = _dir.Sub("000");
        Npy.WriteFloats(Path.Combine(dir, "in:0.npy"), 3);
        Npy.WriteFloats(Path.Combine(dir, "in_0.npy"), 5);

        var sample = Assert.Single(SampleSet.Open(_dir.Path, [spec]).Enumerate());

        Assert.Equal([3L], sample.Inputs[0].Shape);
    }

    [Fact]
    public void MatchesFileNamesIgnoringCaseWhenUnique()
    {
        Npy.WriteFloats(Path.Combine(_dir.Sub("000"), "X.NPY"), 1, 3, 4, 4);

        var sample = Assert.Single(SampleSet.Open(_dir.Path, [Image]).Enumerate());

        Assert.Equal("x", sample.Inputs[0].Name);
    }

    [Fact]
    public void SingleInputModelsTakeFilesDirectlyInTheFolder()
    {
        Npy.WriteFloats(_dir.File("b.npy"), 1, 3, 4, 4);
        Pb.WriteFloats(_dir.File("a.pb"), 2, 3, 4, 4);
        File.WriteAllText(_dir.File("README.md"), "calibration images");

        var set = SampleSet.Open(_dir.Path, [Image]);
        var samples = set.Enumerate().ToList();

        Assert.Equal(2, set.Count);
        Assert.Equal([_dir.File("a.pb"), _dir.File("b.npy")], samples.Select(s => s.Source));
        Assert.Equal([2L, 3L, 4L, 4L], samples[0].Inputs[0].Shape);
        Assert.All(samples, s => Assert.Equal("x", Assert.Single(s.Inputs).Name));
    }

    [Fact]
    public void DynamicDimsAllowDifferentSizesPerSample()
    {
        var spec = new InputSpec("x", TensorElementType.Float, [null, 3, null, null]);
        Npy.WriteFloats(_dir.File("0.npy"), 1, 3, 8, 16);
        Npy.WriteFloats(_dir.File("1.npy"), 2, 3, 4, 4);

        var shapes = SampleSet.Open(_dir.Path, [spec]).Enumerate().Select(s => s.Inputs[0].Shape).ToList();

        Assert.Equal([[1L, 3L, 8L, 16L], [2L, 3L, 4L, 4L]], shapes);
    }

    [Fact]
    public void MaxSamplesTakesTheFirstSamples()
    {
        for (int i = 0; i < 5; i++)
        {
            Npy.WriteFloats(Path.Combine(_dir.Sub($"{i:D3}"), "x.npy"), 1, 3, 4, 4);
        }

        var set = SampleSet.Open(_dir.Path, [Image], new SampleSetOptions { MaxSamples = 2 });

        Assert.Equal(2, set.Count);
        Assert.Equal(["000", "001"], set.Enumerate().Select(s => Path.GetFileName(s.Source)));
        Assert.Equal(5, SampleSet.Open(_dir.Path, [Image], new SampleSetOptions { MaxSamples = 50 }).Count);
    }

    [Fact]
    public void MaxSamplesMustBePositive()
    {
        Npy.WriteFloats(_dir.File("0.npy"), 1, 3, 4, 4);

        var e = Assert.Throws<QuantizeException>(() => SampleSet.Open(_dir.Path, [Image], new SampleSetOptions { MaxSamples = 0 }));

        Assert.Equal(ErrorCodes.InvalidOption, e.Code);
    }

    [Fact]
    public void OpeningAndCountingReadNoFiles()
    {
        // Garbage in every sample: Open and Count only list the folder; reading happens on enumeration.
        for (int i = 0; i < 3; i++)
        {
            File.WriteAllText(Path.Combine(_dir.Sub($"{i}"), "x.npy"), "not numpy");
        }

        var set = SampleSet.Open(_dir.Path, [Image]);

        Assert.Equal(3, set.Count);
        var e = ThrowsOnEnumerate(set);
        Assert.Equal(ErrorCodes.CalibrationFileUnreadable, e.Code);
    }

    [Fact]
    public void EnumerationIsLazy()
    {
        Npy.WriteFloats(Path.Combine(_dir.Sub("0"), "x.npy"), 1, 3, 4, 4);
        Npy.WriteFloats(Path.Combine(_dir.Sub("1"), "x.npy"), 1, 3, 4, 4);
        var set = SampleSet.Open(_dir.Path, [Image]);

        using var samples = set.Enumerate().GetEnumerator();
        Assert.True(samples.MoveNext());

        // The second sample is read only when reached, so changes made now are seen.
        string second = Path.Combine(_dir.Path, "1", "x.npy");
        Npy.WriteFloats(second, 1, 3, 5, 5);
        var e = Assert.Throws<QuantizeException>(() => samples.MoveNext());
        Assert.Equal(ErrorCodes.CalibrationShapeMismatch, e.Code);
        Assert.Equal(second, e.File);
    }

    [Fact]
    public void ReadSampleReadsOneByIndex()
    {
        Npy.WriteFloats(_dir.File("0.npy"), 1, 3, 4, 4);
        Npy.WriteFloats(_dir.File("1.npy"), 5, 3, 4, 4);
        var set = SampleSet.Open(_dir.Path, [Image]);

        Assert.Equal([5L, 3L, 4L, 4L], set.ReadSample(1).Inputs[0].Shape);
        Assert.Throws<ArgumentOutOfRangeException>(() => set.ReadSample(2));
    }

    [Fact]
    public void MissingFolderIsQnt1101()
    {
        string missing = _dir.File("nope");

        var e = Assert.Throws<QuantizeException>(() => SampleSet.Open(missing, [Image]));

        Assert.Equal(ErrorCodes.CalibrationFolderMissing, e.Code);
        Assert.Equal(missing, e.File);
        Assert.Contains("does not exist", e.Message);
    }

    [Fact]
    public void AFileInsteadOfAFolderIsQnt1101()
    {
        string file = Npy.WriteFloats(_dir.File("x.npy"), 1, 3, 4, 4);

        var e = Assert.Throws<QuantizeException>(() => SampleSet.Open(file, [Image]));

        Assert.Equal(ErrorCodes.CalibrationFolderMissing, e.Code);
        Assert.Contains("is a file", e.Message);
    }

    [Fact]
    public void EmptyFolderIsQnt1102()
    {
        var e = Assert.Throws<QuantizeException>(() => SampleSet.Open(_dir.Path, [Image]));

        Assert.Equal(ErrorCodes.CalibrationFolderEmpty, e.Code);
        Assert.Equal(_dir.Path, e.File);
        Assert.Contains("x.npy", e.Message);
    }

    [Fact]
    public void FolderWithoutSamplesIsQnt1102()
    {
        _dir.Sub("expected");
        File.WriteAllText(_dir.File("notes.json"), "hi");
        File.WriteAllBytes(_dir.File("cat.gif"), [1]);

        // (Image files such as .png are samples now: ImageSampleTests.)
        var e = Assert.Throws<QuantizeException>(() => SampleSet.Open(_dir.Path, [Image]));

        Assert.Equal(ErrorCodes.CalibrationFolderEmpty, e.Code);
    }

    [Fact]
    public void MissingInputFileIsQnt1103NamingTheFolderAndTheExpectedFiles()
    {
        string sample = _dir.Sub("007");
        Npy.WriteFloats(Path.Combine(sample, "x.npy"), 1, 3, 4, 4);
        File.WriteAllText(Path.Combine(sample, "label.txt"), "0");

        var e = ThrowsOnEnumerate(SampleSet.Open(_dir.Path, [Image, Rate]));

        Assert.Equal(ErrorCodes.CalibrationInputMissing, e.Code);
        Assert.Equal(sample, e.File);
        Assert.Contains(sample, e.Message);
        Assert.Contains("'sr'", e.Message);
        Assert.Contains("'sr.npy' or 'sr.pb'", e.Message);
        Assert.Contains("input_1.pb", e.Message);
        Assert.Contains("label.txt", e.Message);
    }

    [Fact]
    public void MissingInputNamesTheSanitizedFileNameToo()
    {
        var spec = new InputSpec("images/0", TensorElementType.Float, [1]);
        string sample = _dir.Sub("000");

        var e = ThrowsOnEnumerate(SampleSet.Open(_dir.Path, [spec]));

        Assert.Equal(ErrorCodes.CalibrationInputMissing, e.Code);
        Assert.Contains("'images_0.npy'", e.Message);
        Assert.Contains("the folder is empty", e.Message);
        Assert.Equal(sample, e.File);
    }

    [Fact]
    public void FlatFilesForAMultiInputModelAreQnt1103()
    {
        Npy.WriteFloats(_dir.File("x.npy"), 1, 3, 4, 4);

        var e = Assert.Throws<QuantizeException>(() => SampleSet.Open(_dir.Path, [Image, Rate]));

        Assert.Equal(ErrorCodes.CalibrationInputMissing, e.Code);
        Assert.Contains("2 inputs", e.Message);
        Assert.Contains("sr.npy", e.Message);
    }

    [Fact]
    public void WrongElementTypeIsQnt1104()
    {
        string file = Npy.WriteInt64(Path.Combine(_dir.Sub("000"), "x.npy"), [1, 3, 4, 4], new long[48]);

        var e = ThrowsOnEnumerate(SampleSet.Open(_dir.Path, [Image]));

        Assert.Equal(ErrorCodes.CalibrationTypeMismatch, e.Code);
        Assert.Equal(file, e.File);
        Assert.Contains(file, e.Message);
        Assert.Contains("int64", e.Message);
        Assert.Contains("float32", e.Message);
        Assert.Contains("astype(numpy.float32)", e.Message);
    }

    [Fact]
    public void WrongDimensionIsQnt1105WithBothShapes()
    {
        var spec = new InputSpec("input", TensorElementType.Float, [null, 3, 96, 96]);
        string file = Npy.WriteFloats(Path.Combine(_dir.Sub("000"), "input.npy"), 1, 3, 48, 48);

        var e = ThrowsOnEnumerate(SampleSet.Open(_dir.Path, [spec]));

        Assert.Equal(ErrorCodes.CalibrationShapeMismatch, e.Code);
        Assert.Equal(file, e.File);
        Assert.Contains("[?,3,96,96]", e.Message);
        Assert.Contains("[1,3,48,48]", e.Message);
    }

    [Fact]
    public void WrongRankIsQnt1105()
    {
        string file = Npy.WriteFloats(_dir.File("s.npy"), 3, 4, 4);

        var e = ThrowsOnEnumerate(SampleSet.Open(_dir.Path, [Image]));

        Assert.Equal(ErrorCodes.CalibrationShapeMismatch, e.Code);
        Assert.Equal(file, e.File);
        Assert.Contains("[3,4,4]", e.Message);
    }

    [Fact]
    public void ScalarInputRejectsAOneElementVector()
    {
        string sample = _dir.Sub("0");
        Npy.WriteFloats(Path.Combine(sample, "x.npy"), 1, 3, 4, 4);
        string file = Npy.WriteInt64(Path.Combine(sample, "sr.npy"), [1], 16000);

        var e = ThrowsOnEnumerate(SampleSet.Open(_dir.Path, [Image, Rate]));

        Assert.Equal(ErrorCodes.CalibrationShapeMismatch, e.Code);
        Assert.Equal(file, e.File);
        Assert.Contains("expects []", e.Message);
    }

    [Fact]
    public void NaNIsQnt1107WithTheElementIndex()
    {
        var values = new float[48];
        values[21] = float.NaN;
        string file = Npy.WriteFloats(Path.Combine(_dir.Sub("000"), "x.npy"), [1, 3, 4, 4], values);

        var e = ThrowsOnEnumerate(SampleSet.Open(_dir.Path, [Image]));

        Assert.Equal(ErrorCodes.CalibrationNonFinite, e.Code);
        Assert.Equal(file, e.File);
        Assert.Contains("NaN", e.Message);
        Assert.Contains("element index 21", e.Message);
        Assert.Contains("[0,1,1,1]", e.Message);
    }

    [Fact]
    public void InfinityInAPbIsQnt1107()
    {
        string file = Pb.Write(_dir.File("s.pb"), Pb.Floats([1, 3, 1, 1], 0f, 1f, float.PositiveInfinity));

        var e = ThrowsOnEnumerate(SampleSet.Open(_dir.Path, [new InputSpec("x", TensorElementType.Float, [1, 3, 1, 1])]));

        Assert.Equal(ErrorCodes.CalibrationNonFinite, e.Code);
        Assert.Equal(file, e.File);
        Assert.Contains("+Inf", e.Message);
        Assert.Contains("element index 2", e.Message);
    }

    [Fact]
    public void UnreadableFileInASampleIsQnt1106()
    {
        string file = Npy.Write(Path.Combine(_dir.Sub("000"), "x.npy"), "<f4", "(1, 3, 4, 4)", new byte[10]);

        var e = ThrowsOnEnumerate(SampleSet.Open(_dir.Path, [Image]));

        Assert.Equal(ErrorCodes.CalibrationFileUnreadable, e.Code);
        Assert.Equal(file, e.File);
    }

    [Fact]
    public void ValidateFindsABadSampleWithoutReadingNpyData()
    {
        for (int i = 0; i < 3; i++)
        {
            // Headers only: the data is missing, which Validate does not read.
            Npy.Write(Path.Combine(_dir.Sub($"{i}"), "x.npy"), "<f4", "(1, 3, 4, 4)", []);
        }

        string bad = Npy.Write(Path.Combine(_dir.Sub("3"), "x.npy"), "<f8", "(1, 3, 4, 4)", []);
        var set = SampleSet.Open(_dir.Path, [Image]);

        var e = Assert.Throws<QuantizeException>(set.Validate);

        Assert.Equal(ErrorCodes.CalibrationTypeMismatch, e.Code);
        Assert.Equal(bad, e.File);
    }

    [Fact]
    public void ValidateRejectsAPbOfTheWrongShapeNamingIt()
    {
        Pb.WriteFloats(Path.Combine(_dir.Sub("0"), "x.pb"), 1, 3, 4, 4);
        string bad = Pb.WriteFloats(Path.Combine(_dir.Sub("1"), "x.pb"), 1, 3, 4);
        _dir.Sub("2"); // lacks its input too: the bad shape is what Validate reports

        var e = Assert.Throws<QuantizeException>(SampleSet.Open(_dir.Path, [Image]).Validate);

        Assert.Equal(ErrorCodes.CalibrationShapeMismatch, e.Code);
        Assert.Equal(bad, e.File);
    }

    [Fact]
    public void ValidateRejectsASampleMissingAnInputNamingTheFolder()
    {
        Pb.WriteFloats(Path.Combine(_dir.Sub("0"), "x.pb"), 1, 3, 4, 4);
        Pb.WriteFloats(Path.Combine(_dir.Sub("1"), "x.pb"), 1, 3, 4, 4);
        _dir.Sub("2");

        var e = Assert.Throws<QuantizeException>(SampleSet.Open(_dir.Path, [Image]).Validate);

        Assert.Equal(ErrorCodes.CalibrationInputMissing, e.Code);
        Assert.Equal(Path.Combine(_dir.Path, "2"), e.File);
    }

    [Fact]
    public void ValidateAcceptsPbSamplesOfTheModelsShape()
    {
        Pb.WriteFloats(Path.Combine(_dir.Sub("0"), "x.pb"), 1, 3, 4, 4);
        Pb.WriteFloats(Path.Combine(_dir.Sub("1"), "x.pb"), 1, 3, 4, 4);
        Pb.WriteFloats(Path.Combine(_dir.Sub("2"), "x.pb"), 2, 3, 4, 4);

        SampleSet.Open(_dir.Path, [Image]).Validate();
    }

    [Fact]
    public void SafeFileNameReplacesIllegalCharacters()
    {
        Assert.Equal("a_b_c_d", SampleSet.SafeFileName("a/b:c*d"));
        Assert.Equal("plain.name-1", SampleSet.SafeFileName("plain.name-1"));
    }
}
