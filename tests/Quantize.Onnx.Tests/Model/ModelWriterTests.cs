using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using Quantize.Onnx.Model;
using DataLocation = Quantize.Onnx.Model.Proto.TensorProto.Types.DataLocation;

namespace Quantize.Onnx.Tests.Model;

public sealed class ModelWriterTests
{
    [Fact]
    public void Saving_the_same_model_twice_gives_identical_bytes()
    {
        using var folder = new TempFolder();
        ModelWriter.Save(ModelTestKit.MatMulModel(), folder.File("a.onnx"));
        ModelWriter.Save(ModelTestKit.MatMulModel(), folder.File("b.onnx"));
        ModelWriter.Save(ModelTestKit.MatMulModel(), folder.File("a.onnx")); // overwrite

        Assert.Equal(File.ReadAllBytes(folder.File("a.onnx")), File.ReadAllBytes(folder.File("b.onnx")));
        Assert.Equal(ModelTestKit.MatMulModel().ToByteArray(), File.ReadAllBytes(folder.File("a.onnx")));
        Assert.Equal(["a.onnx", "b.onnx"], Directory.GetFiles(folder.Path).Select(Path.GetFileName).Order());
    }

    [Fact]
    public void Small_model_is_written_without_external_data()
    {
        using var folder = new TempFolder();
        ModelWriter.Save(ModelTestKit.MatMulModel(), folder.File("m.onnx"));

        Assert.False(File.Exists(folder.File("m.onnx.data")));
        Assert.Equal(ModelTestKit.MatMulModel(), ModelLoader.Load(folder.File("m.onnx")));
    }

    [Fact]
    public void Over_the_size_limit_large_tensors_go_to_one_external_file_and_load_back_identically()
    {
        using var folder = new TempFolder();
        var model = ModelTestKit.MatMulModel();
        var small = TensorValues.FromFloats("small", [4], [1, 2, 3, 4]);
        model.Graph.Initializer.Add(small);
        var before = model.Clone();

        ModelWriter.Save(model, folder.File("m.onnx"), inlineSizeLimit: 1000);

        Assert.Equal(before, model); // the caller's model is untouched
        Assert.Equal(["m.onnx", "m.onnx.data"], Directory.GetFiles(folder.Path).Select(Path.GetFileName).Order());
        var written = ModelLoader.Parse(File.ReadAllBytes(folder.File("m.onnx")), "m.onnx");
        var w = written.Graph.Initializer[0];
        var c = written.Graph.Node[0].Attribute[0].T;
        Assert.Equal(DataLocation.External, w.DataLocation);
        Assert.Equal(DataLocation.External, c.DataLocation);
        Assert.False(w.HasRawData);
        Assert.Equal(["location", "offset", "length"], w.ExternalData.Select(e => e.Key));
        Assert.Equal(["m.onnx.data", "0", "1024"], w.ExternalData.Select(e => e.Value));
        Assert.Equal(["m.onnx.data", "4096", "1024"], c.ExternalData.Select(e => e.Value));
        Assert.False(written.Graph.Initializer[1].HasDataLocation); // under 1 KB stays inline
        Assert.Equal(4096 + 1024, new FileInfo(folder.File("m.onnx.data")).Length);

        Assert.Equal(before, ModelLoader.Load(folder.File("m.onnx")));
    }

    [Fact]
    public void External_data_save_is_deterministic()
    {
        using var folder = new TempFolder();
        ModelWriter.Save(ModelTestKit.MatMulModel(), folder.File("a.onnx"), inlineSizeLimit: 1000);
        ModelWriter.Save(ModelTestKit.MatMulModel(), folder.File("b.onnx"), inlineSizeLimit: 1000);

        Assert.Equal(File.ReadAllBytes(folder.File("a.onnx.data")), File.ReadAllBytes(folder.File("b.onnx.data")));
        byte[] a = File.ReadAllBytes(folder.File("a.onnx"));
        byte[] b = File.ReadAllBytes(folder.File("b.onnx"));
        Assert.Equal(a.Length, b.Length); // identical but for the data file's name, which has the same length
        Assert.Equal(
            System.Text.Encoding.UTF8.GetString(a).Replace("a.onnx.data", "X", StringComparison.Ordinal),
            System.Text.Encoding.UTF8.GetString(b).Replace("b.onnx.data", "X", StringComparison.Ordinal));
    }

    [Fact]
    public void OnnxRuntime_runs_the_model_saved_inline_and_with_external_data()
    {
        using var folder = new TempFolder();
        float[] x = [.. Enumerable.Range(0, ModelTestKit.Size * ModelTestKit.Size).Select(i => (i % 11) - 5f)];
        float[] expected = ModelTestKit.Expected(x);
        ModelWriter.Save(ModelTestKit.MatMulModel(), folder.File("inline.onnx"));
        ModelWriter.Save(ModelTestKit.MatMulModel(), folder.File("external.onnx"), inlineSizeLimit: 1000);
        Assert.True(File.Exists(folder.File("external.onnx.data")));

        using (var fromBytes = new InferenceSession(File.ReadAllBytes(folder.File("inline.onnx"))))
        {
            Assert.Equal(expected, Run(fromBytes, x), new FloatTolerance(1e-4f));
        }

        using (var fromPath = new InferenceSession(folder.File("external.onnx")))
        {
            Assert.Equal(expected, Run(fromPath, x), new FloatTolerance(1e-4f));
        }
    }

    [Fact]
    public void Missing_output_folder_is_QNT1006()
    {
        using var folder = new TempFolder();
        string path = Path.Combine(folder.Path, "missing", "m.onnx");
        var e = Assert.Throws<QuantizeException>(() => ModelWriter.Save(ModelTestKit.MatMulModel(), path));
        Assert.Equal(ErrorCodes.OutputNotWritable, e.Code);
        Assert.Equal(path, e.File);
        Assert.Contains("does not exist", e.Message);
    }

    [Fact]
    public void Output_path_that_is_a_folder_is_QNT1006_and_leaves_no_temp_file()
    {
        using var folder = new TempFolder();
        Directory.CreateDirectory(folder.File("m.onnx"));

        var e = Assert.Throws<QuantizeException>(() => ModelWriter.Save(ModelTestKit.MatMulModel(), folder.File("m.onnx")));

        Assert.Equal(ErrorCodes.OutputNotWritable, e.Code);
        Assert.Empty(Directory.GetFiles(folder.Path));
    }

    [Fact]
    public void Failed_save_leaves_the_previous_model_intact_and_no_temp_files()
    {
        using var folder = new TempFolder();
        ModelWriter.Save(ModelTestKit.MatMulModel(), folder.File("m.onnx"));
        byte[] previous = File.ReadAllBytes(folder.File("m.onnx"));
        Directory.CreateDirectory(folder.File("m.onnx.data")); // the data file cannot replace a folder

        var changed = ModelTestKit.MatMulModel();
        changed.ProducerName = "changed";
        var e = Assert.Throws<QuantizeException>(() => ModelWriter.Save(changed, folder.File("m.onnx"), inlineSizeLimit: 1000));

        Assert.Equal(ErrorCodes.OutputNotWritable, e.Code);
        Assert.Contains("m.onnx.data", e.Message);
        Assert.Equal(previous, File.ReadAllBytes(folder.File("m.onnx")));
        Assert.Equal(["m.onnx"], Directory.GetFiles(folder.Path).Select(Path.GetFileName));
    }

    [Fact]
    public void Saving_a_model_that_still_refers_to_external_data_is_a_programming_error()
    {
        using var folder = new TempFolder();
        var model = ModelTestKit.MatMulModel();
        ModelTestKit.MakeExternal(model.Graph.Initializer[0], "w.bin");
        Assert.Throws<ArgumentException>(() => ModelWriter.Save(model, folder.File("m.onnx")));
    }

    private static float[] Run(InferenceSession session, float[] x)
    {
        using var input = OrtValue.CreateTensorValueFromMemory(x, [ModelTestKit.Size, ModelTestKit.Size]);
        using var runOptions = new RunOptions();
        using var outputs = session.Run(runOptions, ["X"], [input], ["Y"]);
        return outputs[0].GetTensorDataAsSpan<float>().ToArray();
    }

    private sealed class FloatTolerance(float tolerance) : IEqualityComparer<float>
    {
        public bool Equals(float a, float b) => Math.Abs(a - b) <= tolerance;

        public int GetHashCode(float value) => 0;
    }
}
