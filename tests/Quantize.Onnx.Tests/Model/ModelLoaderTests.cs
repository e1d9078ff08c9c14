using Google.Protobuf;
using Quantize.Onnx.Model;
using Quantize.Onnx.Model.Proto;

namespace Quantize.Onnx.Tests.Model;

public sealed class ModelLoaderTests
{
    [Fact]
    public void Load_reads_a_model_written_to_a_file()
    {
        using var folder = new TempFolder();
        var model = ModelTestKit.MatMulModel();
        ModelTestKit.WriteModel(model, folder.File("m.onnx"));

        var loaded = ModelLoader.Load(folder.File("m.onnx"));

        Assert.Equal(model, loaded);
    }

    [Fact]
    public void Missing_file_is_QNT1001()
    {
        using var folder = new TempFolder();
        var e = Assert.Throws<QuantizeException>(() => ModelLoader.Load(folder.File("nope.onnx")));
        Assert.Equal(ErrorCodes.ModelNotFound, e.Code);
        Assert.Contains("nope.onnx", e.Message);
        Assert.Equal(folder.File("nope.onnx"), e.File);
    }

    [Fact]
    public void A_folder_instead_of_a_file_is_QNT1001()
    {
        using var folder = new TempFolder();
        var e = Assert.Throws<QuantizeException>(() => ModelLoader.Load(folder.Path));
        Assert.Equal(ErrorCodes.ModelNotFound, e.Code);
        Assert.Contains("folder", e.Message);
    }

    [Fact]
    public void Garbage_file_is_QNT1002()
    {
        using var folder = new TempFolder();
        File.WriteAllBytes(folder.File("bad.onnx"), [0xFF, 0xFF, 0xFF, 0xFF, 0x0F, 0x01]);
        var e = Assert.Throws<QuantizeException>(() => ModelLoader.Load(folder.File("bad.onnx")));
        Assert.Equal(ErrorCodes.ModelCorrupt, e.Code);
        Assert.Contains("is not a valid ONNX model", e.Message);
        Assert.Contains("re-export", e.Message);
    }

    [Fact]
    public void Empty_file_is_QNT1002_because_it_has_no_graph()
    {
        using var folder = new TempFolder();
        File.WriteAllBytes(folder.File("empty.onnx"), []);
        var e = Assert.Throws<QuantizeException>(() => ModelLoader.Load(folder.File("empty.onnx")));
        Assert.Equal(ErrorCodes.ModelCorrupt, e.Code);
        Assert.Contains("no graph", e.Message);
    }

    [Fact]
    public void Truncated_model_is_QNT1002()
    {
        byte[] bytes = ModelTestKit.MatMulModel().ToByteArray();
        var e = Assert.Throws<QuantizeException>(() => ModelLoader.Parse(bytes[..(bytes.Length / 2)], "half.onnx"));
        Assert.Equal(ErrorCodes.ModelCorrupt, e.Code);
        Assert.Equal("half.onnx", e.File);
    }

    [Fact]
    public void Parse_accepts_subgraphs_nested_deeper_than_the_protobuf_default()
    {
        // Each If level costs three message levels (graph → node → attribute): 50 levels = 150 > 100.
        var bytes = NestedIfModel(50).ToByteArray();
        Assert.Throws<InvalidProtocolBufferException>(() => ModelProto.Parser.ParseFrom(bytes));

        var model = ModelLoader.Parse(bytes, "deep.onnx");

        Assert.Equal(bytes, model.ToByteArray());
    }

    [Fact]
    public void Parse_rejects_absurd_nesting_with_QNT1002()
    {
        var bytes = NestedIfModel(100).ToByteArray();
        var e = Assert.Throws<QuantizeException>(() => ModelLoader.Parse(bytes, "deeper.onnx"));
        Assert.Equal(ErrorCodes.ModelCorrupt, e.Code);
    }

    [Fact]
    public void Unknown_fields_survive_load_and_save_byte_for_byte()
    {
        using var folder = new TempFolder();
        var model = ModelTestKit.MatMulModel();

        // An unknown field inside the graph, and one at the end of the model.
        model.Graph = GraphProto.Parser.ParseFrom(AppendUnknownField(model.Graph.ToByteArray(), 5000, "graph extension"));
        byte[] original = AppendUnknownField(model.ToByteArray(), 1000, "model extension");
        File.WriteAllBytes(folder.File("in.onnx"), original);

        var loaded = ModelLoader.Load(folder.File("in.onnx"));
        ModelWriter.Save(loaded, folder.File("out.onnx"));

        Assert.Equal(original, File.ReadAllBytes(folder.File("out.onnx")));
        Assert.Contains("model extension", System.Text.Encoding.UTF8.GetString(original));
    }

    private static byte[] AppendUnknownField(byte[] message, int fieldNumber, string value)
    {
        using var buffer = new MemoryStream();
        buffer.Write(message);
        var output = new CodedOutputStream(buffer, leaveOpen: true);
        output.WriteTag(fieldNumber, WireFormat.WireType.LengthDelimited);
        output.WriteString(value);
        output.Flush();
        return buffer.ToArray();
    }

    private static ModelProto NestedIfModel(int levels)
    {
        var graph = new GraphProto { Name = "leaf" };
        for (int i = 0; i < levels; i++)
        {
            var node = new NodeProto { OpType = "If", Input = { "cond" }, Output = { "y" } };
            node.Attribute.Add(new AttributeProto { Name = "then_branch", Type = AttributeProto.Types.AttributeType.Graph, G = graph });
            graph = new GraphProto { Name = $"level{i}", Node = { node } };
        }

        var model = ModelTestKit.MatMulModel();
        model.Graph = graph;
        return model;
    }
}
