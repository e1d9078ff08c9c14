using Quantize.Onnx.Model;
using Quantize.Onnx.Model.Proto;

namespace Quantize.Onnx.Tests.Model;

public sealed class ExternalDataTests
{
    [Theory]
    [InlineData("weights.bin")]
    [InlineData("./weights.bin")]
    [InlineData("sub/../weights.bin")]
    public void External_initializer_is_read_and_inlined(string location)
    {
        using var folder = new TempFolder();
        Directory.CreateDirectory(folder.File("sub"));
        byte[] data = ModelTestKit.WeightBytes();
        File.WriteAllBytes(folder.File("weights.bin"), [.. new byte[100], .. data, .. new byte[10]]);
        var model = ModelTestKit.MatMulModel();
        ModelTestKit.MakeExternal(model.Graph.Initializer[0], location, offset: 100, length: data.Length);
        ModelTestKit.WriteModel(model, folder.File("m.onnx"));

        var loaded = ModelLoader.Load(folder.File("m.onnx"));

        Assert.Equal(ModelTestKit.MatMulModel(), loaded);
        var w = loaded.Graph.Initializer[0];
        Assert.False(w.HasDataLocation);
        Assert.Empty(w.ExternalData);
        Assert.Equal(ModelTestKit.Weights(), TensorValues.ReadFloats(w));
    }

    [Fact]
    public void Without_length_the_size_comes_from_the_shape()
    {
        using var folder = new TempFolder();
        File.WriteAllBytes(folder.File("w.bin"), [.. ModelTestKit.WeightBytes(), .. new byte[64]]);
        var model = ModelTestKit.MatMulModel();
        ModelTestKit.MakeExternal(model.Graph.Initializer[0], "w.bin");
        ModelTestKit.WriteModel(model, folder.File("m.onnx"));

        Assert.Equal(ModelTestKit.MatMulModel(), ModelLoader.Load(folder.File("m.onnx")));
    }

    [Fact]
    public void Tensors_in_constant_nodes_subgraphs_and_functions_are_resolved()
    {
        using var folder = new TempFolder();
        byte[] data = ModelTestKit.WeightBytes();
        File.WriteAllBytes(folder.File("w.bin"), data);
        var model = ModelTestKit.MatMulModel();

        // A Constant node's tensor, an initializer of an If branch, and a tensor in a function body.
        ModelTestKit.MakeExternal(model.Graph.Node[0].Attribute[0].T, "w.bin", 0, data.Length);
        var branch = new GraphProto { Name = "then", Initializer = { TensorValues.FromFloats("B", [16, 16], ModelTestKit.Weights()) } };
        var ifNode = new NodeProto { OpType = "If", Input = { "cond" }, Output = { "z" } };
        ifNode.Attribute.Add(new AttributeProto { Name = "then_branch", Type = AttributeProto.Types.AttributeType.Graph, G = branch });
        model.Graph.Node.Add(ifNode);
        ModelTestKit.MakeExternal(branch.Initializer[0], "w.bin", 0, data.Length);
        var function = new FunctionProto { Name = "f", Domain = "local" };
        function.Node.Add(model.Graph.Node[0].Clone());
        model.Functions.Add(function);
        ModelTestKit.WriteModel(model, folder.File("m.onnx"));

        var loaded = ModelLoader.Load(folder.File("m.onnx"));

        Assert.Equal(ModelTestKit.Weights(), TensorValues.ReadFloats(loaded.Graph.Node[0].Attribute[0].T));
        Assert.Equal(ModelTestKit.Weights(), TensorValues.ReadFloats(loaded.Graph.Node[3].Attribute[0].G.Initializer[0]));
        Assert.Equal(ModelTestKit.Weights(), TensorValues.ReadFloats(loaded.Functions[0].Node[0].Attribute[0].T));
        Assert.Empty(loaded.Graph.Node[0].Attribute[0].T.ExternalData);
        Assert.False(loaded.Functions[0].Node[0].Attribute[0].T.HasDataLocation);
    }

    [Theory]
    [InlineData("/etc/passwd")]
    [InlineData("\\\\server\\share\\w.bin")]
    [InlineData("C:\\weights\\w.bin")]
    [InlineData("c:w.bin")]
    public void Absolute_location_is_QNT1003(string location)
    {
        var e = LoadWithLocation(location);
        Assert.Equal(ErrorCodes.ExternalDataOutsideModelFolder, e.Code);
        Assert.Contains("absolute", e.Message);
        Assert.Contains("'W'", e.Message);
    }

    [Theory]
    [InlineData("../w.bin")]
    [InlineData("..\\w.bin")]
    [InlineData("sub/../../w.bin")]
    [InlineData("..")]
    public void Location_escaping_with_dot_dot_is_QNT1003(string location)
    {
        var e = LoadWithLocation(location);
        Assert.Equal(ErrorCodes.ExternalDataOutsideModelFolder, e.Code);
    }

    [Theory]
    [InlineData(".")]
    [InlineData("sub/..")]
    public void Location_naming_the_folder_itself_is_QNT1003(string location)
    {
        var e = LoadWithLocation(location);
        Assert.Equal(ErrorCodes.ExternalDataOutsideModelFolder, e.Code);
    }

    [Fact]
    public void Symlinked_file_pointing_outside_the_folder_is_QNT1003()
    {
        using var outside = new TempFolder();
        using var folder = new TempFolder();
        File.WriteAllBytes(outside.File("secret.bin"), ModelTestKit.WeightBytes());
        File.CreateSymbolicLink(folder.File("w.bin"), outside.File("secret.bin"));

        var e = LoadWithLocation("w.bin", folder);

        Assert.Equal(ErrorCodes.ExternalDataOutsideModelFolder, e.Code);
        Assert.Contains("symbolic link", e.Message);
    }

    [Fact]
    public void Symlinked_folder_pointing_outside_is_QNT1003()
    {
        using var outside = new TempFolder();
        using var folder = new TempFolder();
        File.WriteAllBytes(outside.File("secret.bin"), ModelTestKit.WeightBytes());
        Directory.CreateSymbolicLink(folder.File("data"), outside.Path);

        var e = LoadWithLocation("data/secret.bin", folder);

        Assert.Equal(ErrorCodes.ExternalDataOutsideModelFolder, e.Code);
    }

    [Fact]
    public void Relative_symlink_that_stays_inside_the_folder_is_accepted()
    {
        using var folder = new TempFolder();
        Directory.CreateDirectory(folder.File("real"));
        File.WriteAllBytes(folder.File("real/w.bin"), ModelTestKit.WeightBytes());
        File.CreateSymbolicLink(folder.File("w.bin"), "real/w.bin");
        var model = ModelTestKit.MatMulModel();
        ModelTestKit.MakeExternal(model.Graph.Initializer[0], "w.bin");
        ModelTestKit.WriteModel(model, folder.File("m.onnx"));

        Assert.Equal(ModelTestKit.MatMulModel(), ModelLoader.Load(folder.File("m.onnx")));
    }

    [Fact]
    public void Model_reached_through_a_symlinked_folder_still_loads_its_data()
    {
        using var folder = new TempFolder();
        using var links = new TempFolder();
        File.WriteAllBytes(folder.File("w.bin"), ModelTestKit.WeightBytes());
        var model = ModelTestKit.MatMulModel();
        ModelTestKit.MakeExternal(model.Graph.Initializer[0], "w.bin");
        ModelTestKit.WriteModel(model, folder.File("m.onnx"));
        Directory.CreateSymbolicLink(links.File("models"), folder.Path);

        Assert.Equal(ModelTestKit.MatMulModel(), ModelLoader.Load(Path.Combine(links.File("models"), "m.onnx")));
    }

    [Fact]
    public void Missing_data_file_is_QNT1004()
    {
        using var folder = new TempFolder();
        var e = LoadWithLocation("absent.bin", folder, writeData: false);
        Assert.Equal(ErrorCodes.ExternalDataUnreadable, e.Code);
        Assert.Contains("does not exist", e.Message);
        Assert.Equal(folder.File("absent.bin"), e.File);
    }

    [Fact]
    public void Short_data_file_is_QNT1004()
    {
        using var folder = new TempFolder();
        File.WriteAllBytes(folder.File("w.bin"), ModelTestKit.WeightBytes()[..1000]);
        var model = ModelTestKit.MatMulModel();
        ModelTestKit.MakeExternal(model.Graph.Initializer[0], "w.bin", offset: 0, length: 1024);
        ModelTestKit.WriteModel(model, folder.File("m.onnx"));

        var e = Assert.Throws<QuantizeException>(() => ModelLoader.Load(folder.File("m.onnx")));

        Assert.Equal(ErrorCodes.ExternalDataUnreadable, e.Code);
        Assert.Contains("only 1000 bytes", e.Message);
    }

    [Fact]
    public void Offset_past_the_end_is_QNT1004()
    {
        using var folder = new TempFolder();
        File.WriteAllBytes(folder.File("w.bin"), ModelTestKit.WeightBytes());
        var model = ModelTestKit.MatMulModel();
        ModelTestKit.MakeExternal(model.Graph.Initializer[0], "w.bin", offset: 4096);
        ModelTestKit.WriteModel(model, folder.File("m.onnx"));

        var e = Assert.Throws<QuantizeException>(() => ModelLoader.Load(folder.File("m.onnx")));
        Assert.Equal(ErrorCodes.ExternalDataUnreadable, e.Code);
    }

    [Fact]
    public void Length_that_does_not_match_the_shape_is_QNT1004()
    {
        using var folder = new TempFolder();
        File.WriteAllBytes(folder.File("w.bin"), [.. ModelTestKit.WeightBytes(), .. ModelTestKit.WeightBytes()]);
        var model = ModelTestKit.MatMulModel();
        ModelTestKit.MakeExternal(model.Graph.Initializer[0], "w.bin", offset: 0, length: 2048);
        ModelTestKit.WriteModel(model, folder.File("m.onnx"));

        var e = Assert.Throws<QuantizeException>(() => ModelLoader.Load(folder.File("m.onnx")));
        Assert.Equal(ErrorCodes.ExternalDataUnreadable, e.Code);
        Assert.Contains("needs 1024", e.Message);
    }

    [Fact]
    public void External_tensor_without_location_is_QNT1002()
    {
        var e = LoadWithLocation("");
        Assert.Equal(ErrorCodes.ModelCorrupt, e.Code);
        Assert.Contains("location", e.Message);
    }

    [Fact]
    public void Non_numeric_offset_is_QNT1002()
    {
        using var folder = new TempFolder();
        File.WriteAllBytes(folder.File("w.bin"), ModelTestKit.WeightBytes());
        var model = ModelTestKit.MatMulModel();
        ModelTestKit.MakeExternal(model.Graph.Initializer[0], "w.bin");
        model.Graph.Initializer[0].ExternalData.Add(new StringStringEntryProto { Key = "offset", Value = "-5" });
        ModelTestKit.WriteModel(model, folder.File("m.onnx"));

        var e = Assert.Throws<QuantizeException>(() => ModelLoader.Load(folder.File("m.onnx")));
        Assert.Equal(ErrorCodes.ModelCorrupt, e.Code);
    }

    private static QuantizeException LoadWithLocation(string location, TempFolder? folder = null, bool writeData = true)
    {
        using var own = folder is null ? new TempFolder() : null;
        var target = folder ?? own!;
        if (writeData && !File.Exists(target.File("w.bin")))
        {
            File.WriteAllBytes(target.File("w.bin"), ModelTestKit.WeightBytes());
        }

        Directory.CreateDirectory(target.File("sub"));
        var model = ModelTestKit.MatMulModel();
        ModelTestKit.MakeExternal(model.Graph.Initializer[0], location);
        ModelTestKit.WriteModel(model, target.File("m.onnx"));
        return Assert.Throws<QuantizeException>(() => ModelLoader.Load(target.File("m.onnx")));
    }
}
