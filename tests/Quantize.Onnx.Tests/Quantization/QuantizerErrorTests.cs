using Google.Protobuf;
using Quantize.Onnx.Model;
using Quantize.Onnx.Tests.Samples;
using Quantize.Onnx.Tests.TestModels;

namespace Quantize.Onnx.Tests.Quantization;

/// <summary>
/// Done-when: a corrupt model, missing or mismatched calibration files and external data outside the
/// model folder each give a clear error, with its code and the file at fault, through
/// <see cref="Quantizer.Run"/> (the readers' own tests cover the variants). No output is written.
/// </summary>
public sealed class QuantizerErrorTests : IDisposable
{
    private readonly TempFolder _folder = new();
    private readonly TestNet _net = TestNets.ConvNet();

    public QuantizerErrorTests() => OutputPath = Path.Combine(_folder.Path, "out", "model.int8.onnx");

    private string OutputPath { get; }

    public void Dispose() => _folder.Dispose();

    private QuantizeException Fails(string model, string calibration)
    {
        var e = Assert.Throws<QuantizeException>(() => new Quantizer(QuantizeTestKit.Options()).Run(model, calibration, OutputPath));
        Assert.False(File.Exists(OutputPath), "an output was written although quantization failed");
        Assert.False(string.IsNullOrWhiteSpace(e.Message));
        return e;
    }

    [Fact]
    public void Corrupt_model_is_QNT1002()
    {
        var (_, calibration) = QuantizeTestKit.Prepare(_net, _folder.Path);
        var model = Path.Combine(_folder.Path, "corrupt.onnx");
        var bytes = new byte[4096];
        new Random(42).NextBytes(bytes);
        File.WriteAllBytes(model, bytes);

        var e = Fails(model, calibration);

        Assert.Equal(ErrorCodes.ModelCorrupt, e.Code);
        Assert.Equal(model, e.File);
    }

    [Fact]
    public void Missing_calibration_folder_is_QNT1101()
    {
        var (model, _) = QuantizeTestKit.Prepare(_net, _folder.Path);
        var missing = Path.Combine(_folder.Path, "no-such-folder");

        var e = Fails(model, missing);

        Assert.Equal(ErrorCodes.CalibrationFolderMissing, e.Code);
        Assert.Equal(missing, e.File);
    }

    [Fact]
    public void Sample_with_the_wrong_shape_is_QNT1105_naming_the_file()
    {
        var (model, calibration) = QuantizeTestKit.Prepare(_net, _folder.Path);
        var bad = Path.Combine(calibration, "sample_003", _net.InputName + ".npy");
        long[] shape = [1, 3, 8, 8];
        Npy.WriteFloats(bad, shape, QuantizeTestKit.Structured(1, shape));

        var e = Fails(model, calibration);

        Assert.Equal(ErrorCodes.CalibrationShapeMismatch, e.Code);
        Assert.Equal(bad, e.File);
        Assert.Contains(bad, e.Message);
    }

    [Fact]
    public void Sample_with_the_wrong_element_type_is_QNT1104_naming_the_file()
    {
        var (model, calibration) = QuantizeTestKit.Prepare(_net, _folder.Path);
        var bad = Path.Combine(calibration, "sample_006", _net.InputName + ".npy");
        var doubles = QuantizeTestKit.Structured(1, _net.InputShape).Select(v => (double)v).ToArray();
        Npy.Write(bad, "<f8", Npy.PyShape(_net.InputShape), doubles.SelectMany(BitConverter.GetBytes).ToArray());

        var e = Fails(model, calibration);

        Assert.Equal(ErrorCodes.CalibrationTypeMismatch, e.Code);
        Assert.Equal(bad, e.File);
    }

    [Fact]
    public void Sample_holding_NaN_is_QNT1107_naming_the_file()
    {
        var (model, calibration) = QuantizeTestKit.Prepare(_net, _folder.Path);
        var bad = Path.Combine(calibration, "sample_002", _net.InputName + ".npy");
        var values = QuantizeTestKit.Structured(1, _net.InputShape);
        values[^1] = float.NaN;
        Npy.WriteFloats(bad, _net.InputShape, values);

        var e = Fails(model, calibration);

        Assert.Equal(ErrorCodes.CalibrationNonFinite, e.Code);
        Assert.Equal(bad, e.File);
    }

    [Fact]
    public void Sample_missing_the_input_file_is_QNT1103()
    {
        var (model, calibration) = QuantizeTestKit.Prepare(_net, _folder.Path);
        var sample = Path.Combine(calibration, "sample_004");
        File.Move(Path.Combine(sample, _net.InputName + ".npy"), Path.Combine(sample, "other.npy"));

        var e = Fails(model, calibration);

        Assert.Equal(ErrorCodes.CalibrationInputMissing, e.Code);
        Assert.Equal(sample, e.File);
    }

    [Fact]
    public void External_data_outside_the_model_folder_is_QNT1003()
    {
        var (_, calibration) = QuantizeTestKit.Prepare(_net, _folder.Path);
        var modelFolder = Directory.CreateDirectory(Path.Combine(_folder.Path, "external", "model")).FullName;
        var model = Path.Combine(modelFolder, "model.onnx");
        var proto = _net.Model.Clone();
        var weight = proto.Graph.Initializer.First(t => t.Name == "conv2.weight");
        File.WriteAllBytes(Path.Combine(_folder.Path, "external", "weights.bin"), weight.RawData.ToByteArray());
        Model.ModelTestKit.MakeExternal(weight, "../weights.bin");
        File.WriteAllBytes(model, proto.ToByteArray());

        var e = Fails(model, calibration);

        Assert.Equal(ErrorCodes.ExternalDataOutsideModelFolder, e.Code);
        Assert.Equal(model, e.File);
    }

    [Fact]
    public void Model_without_graph_inputs_is_QNT1010()
    {
        var (_, calibration) = QuantizeTestKit.Prepare(_net, _folder.Path);
        var proto = _net.Model.Clone();
        proto.Graph.Input.Clear();
        var model = Path.Combine(_folder.Path, "no-inputs.onnx");
        File.WriteAllBytes(model, proto.ToByteArray());

        var e = Fails(model, calibration);

        Assert.Equal((ErrorCodes.ModelHasNoInputs, model), (e.Code, e.File));
    }

    [Fact]
    public void Truncated_npy_and_pb_samples_are_QNT1106_naming_the_file()
    {
        var (model, calibration) = QuantizeTestKit.Prepare(_net, _folder.Path);
        var npy = Path.Combine(calibration, "sample_005", _net.InputName + ".npy");
        var bytes = File.ReadAllBytes(npy);
        File.WriteAllBytes(npy, bytes[..(bytes.Length - 7)]);
        var e = Fails(model, calibration);
        Assert.Equal((ErrorCodes.CalibrationFileUnreadable, npy), (e.Code, e.File));

        // The same sample as an ONNX TensorProto (.pb), cut in the middle of its raw_data.
        File.WriteAllBytes(npy, bytes);
        var pbSample = Directory.CreateDirectory(Path.Combine(calibration, "sample_999")).FullName;
        var pb = Path.Combine(pbSample, _net.InputName + ".pb");
        var tensor = Onnx.Model.TensorValues.FromFloats(_net.InputName, _net.InputShape, QuantizeTestKit.Structured(3, _net.InputShape)).ToByteArray();
        File.WriteAllBytes(pb, tensor[..(tensor.Length / 2)]);
        e = Fails(model, calibration);
        Assert.Equal((ErrorCodes.CalibrationFileUnreadable, pb), (e.Code, e.File));
    }

    [Fact]
    public void Infinity_in_a_pb_sample_is_QNT1107_naming_the_file()
    {
        var (model, calibration) = QuantizeTestKit.Prepare(_net, _folder.Path);
        var values = QuantizeTestKit.Structured(3, _net.InputShape);
        values[17] = float.NegativeInfinity;
        var pb = Path.Combine(Directory.CreateDirectory(Path.Combine(calibration, "sample_999")).FullName, _net.InputName + ".pb");
        File.WriteAllBytes(pb, Onnx.Model.TensorValues.FromFloats(_net.InputName, _net.InputShape, values).ToByteArray());

        var e = Fails(model, calibration);

        Assert.Equal((ErrorCodes.CalibrationNonFinite, pb), (e.Code, e.File));
    }

    [Fact]
    public void Sample_that_cannot_be_opened_is_QNT1106_naming_the_file()
    {
        var (model, calibration) = QuantizeTestKit.Prepare(_net, _folder.Path);
        var bad = Path.Combine(calibration, "sample_001", _net.InputName + ".npy");
        if (OperatingSystem.IsWindows())
        {
            File.Delete(bad);
            Directory.CreateDirectory(bad); // opening a folder as a file is denied
        }
        else if (Environment.UserName != "root")
        {
            File.SetUnixFileMode(bad, UnixFileMode.None);
        }
        else
        {
            // root reads any file whatever its mode: a link to itself cannot be opened by anyone (ELOOP).
            File.Delete(bad);
            File.CreateSymbolicLink(bad, bad);
        }

        var e = Fails(model, calibration);

        Assert.Equal((ErrorCodes.CalibrationFileUnreadable, bad), (e.Code, e.File));
    }

    [Fact]
    public void Pad_that_asks_for_120_GB_on_the_samples_is_QNT1011_before_onnx_runtime_runs_it()
    {
        // A valid model: input [1,3,16,16] -> Pad by 100,000 pixels -> Conv. Its Pad output would be [1,3,200016,200016] floats.
        var b = new TestModelBuilder();
        var x = b.Input(TestNets.ImageInput, TestNets.ImageShape);
        var pads = b.ConstantInt64("pads", [8], [0, 0, 100_000, 100_000, 0, 0, 100_000, 100_000]);
        var padded = b.Node("Pad", "bomb", [x, pads]);
        b.Conv("conv", padded, 3, 4);
        b.Output("conv", 1, 4, 200_014, 200_014);
        var net = new TestNet(b.Build(), TestNets.ImageInput, TestNets.ImageShape, b.ConvNodes);
        var (model, calibration) = QuantizeTestKit.Prepare(net, _folder.Path);

        var watch = System.Diagnostics.Stopwatch.StartNew();
        var e = Fails(model, calibration);

        Assert.Equal((ErrorCodes.ActivationsTooLarge, model), (e.Code, e.File));
        Assert.Contains("'bomb'", e.Message, StringComparison.Ordinal);
        Assert.Contains("[1, 3, 200016, 200016]", e.Message, StringComparison.Ordinal);
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(30), watch.Elapsed.ToString());
    }

    [Fact]
    public void A_model_that_refuses_the_made_up_input_of_a_run_without_samples_is_written_unchanged_with_QNT2503()
    {
        // Frames [1, N] → Reshape to [N/64, 64] → MatMul: N = 32, the made-up free dimension, is no multiple of 64.
        var b = new TestModelBuilder();
        var x = b.SymbolicInput("frames", "1", "samples");
        var rows = b.Node("Reshape", "rows", [x, b.ConstantInt64("row_shape", [2], [-1, 64])]);
        b.MatMul("project", rows, 64, 16);
        b.Output("project");
        var (model, _) = QuantizeTestKit.Prepare(new TestNet(b.Build(), "frames", [1, 128], []), _folder.Path);

        var result = new Quantizer(QuantizeTestKit.Options() with { Mode = QuantizationMode.Dynamic }).Run(model, null, OutputPath);

        Assert.Equal(OutputKind.Unchanged, result.Output);
        var warning = Assert.Single(result.Warnings, w => w.Code == ErrorCodes.CannotMeasureWithoutSamples);
        Assert.Contains("'frames' [1,32]", warning.Message, StringComparison.Ordinal);
        Assert.Contains("--calibration or --validation", warning.Message, StringComparison.Ordinal);
        Assert.Equal(ModelLoader.Load(model).Graph.Node.Count, ModelLoader.Load(OutputPath).Graph.Node.Count);
    }
}
