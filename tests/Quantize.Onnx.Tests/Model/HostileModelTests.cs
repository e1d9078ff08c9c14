using Google.Protobuf;
using Quantize.Onnx.Model;
using Quantize.Onnx.Model.Proto;

namespace Quantize.Onnx.Tests.Model;

/// <summary>Models crafted to make the engine allocate, recurse or load code are refused by the loader with a code.</summary>
public sealed class HostileModelTests
{
    [Fact]
    public void Tensor_declaring_a_terabyte_in_a_few_bytes_is_QNT1007_without_allocating_it()
    {
        var model = ModelTestKit.MatMulModel();
        model.Graph.Initializer[0].Dims.Clear();
        model.Graph.Initializer[0].Dims.Add([1L << 20, 1L << 18]); // 2^38 floats = 1 TB, in 1 KB of raw_data

        long before = GC.GetAllocatedBytesForCurrentThread();
        var e = Load(model);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal((ErrorCodes.TensorDataMismatch, "W"), (e.Code, Named(e.Message, "W")));
        Assert.Contains("1024 bytes", e.Message);
        Assert.True(allocated < 16 << 20, $"{allocated} bytes allocated");
    }

    [Theory]
    [InlineData(-1L, "negative value")]
    [InlineData(long.MaxValue, "more elements")]
    public void Negative_or_overflowing_dims_are_QNT1007(long dim, string why)
    {
        var model = ModelTestKit.MatMulModel();
        model.Graph.Initializer[0].Dims.Add(dim);
        model.Graph.Initializer[0].Dims.Add(dim);

        var e = Load(model);

        Assert.Equal(ErrorCodes.TensorDataMismatch, e.Code);
        Assert.Contains(why, e.Message);
    }

    [Fact]
    public void Raw_data_shorter_than_the_dims_and_typed_data_of_the_wrong_count_are_QNT1007()
    {
        var shortRaw = ModelTestKit.MatMulModel();
        shortRaw.Graph.Initializer[0].RawData = ByteString.CopyFrom(new byte[100]);
        Assert.Contains("holds 100 bytes", Load(shortRaw).Message);

        // The Constant node's tensor, in float_data with one value too many.
        var typed = ModelTestKit.MatMulModel();
        var constant = typed.Graph.Node[0].Attribute[0].T;
        constant.ClearRawData();
        constant.FloatData.Add(new float[(ModelTestKit.Size * ModelTestKit.Size) + 1]);
        var e = Load(typed);
        Assert.Equal(ErrorCodes.TensorDataMismatch, e.Code);
        Assert.Contains("'C'", e.Message);
        Assert.Contains("float_data", e.Message);
    }

    [Fact]
    public void Undefined_element_type_is_QNT1007()
    {
        var model = ModelTestKit.MatMulModel();
        model.Graph.Initializer[0].DataType = 99;

        Assert.Equal(ErrorCodes.TensorDataMismatch, Load(model).Code);
    }

    [Fact]
    public void Subgraphs_nested_beyond_the_limit_are_QNT1008()
    {
        Assert.Equal(ErrorCodes.SubgraphsTooDeep, Load(NestedIf(ModelChecker.MaxSubgraphDepth + 2)).Code);
    }

    [Fact]
    public void Subgraphs_nested_to_the_limit_load()
    {
        using var folder = new TempFolder();
        ModelTestKit.WriteModel(NestedIf(ModelChecker.MaxSubgraphDepth), folder.File("ok.onnx"));
        ModelLoader.Load(folder.File("ok.onnx"));
    }

    [Fact]
    public void Operator_of_an_unknown_domain_is_QNT1009_naming_node_op_and_domain()
    {
        var model = ModelTestKit.MatMulModel();
        model.Graph.Node[2].Domain = "com.example.customops";
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "com.example.customops", Version = 1 });

        var e = Load(model);

        Assert.Equal(ErrorCodes.UnknownOperatorDomain, e.Code);
        Assert.Contains("'add'", e.Message);
        Assert.Contains("com.example.customops", e.Message);
        Assert.Contains("custom-op library", e.Message);
    }

    [Fact]
    public void Domains_of_onnx_onnx_runtime_and_the_models_own_functions_are_accepted()
    {
        var model = ModelTestKit.MatMulModel();
        model.Graph.Node[1].Domain = "ai.onnx";
        model.Graph.Node[2].Domain = "local.functions";
        model.Graph.Node[2].OpType = "MyAdd";
        model.Functions.Add(new FunctionProto
        {
            Name = "MyAdd",
            Domain = "local.functions",
            Input = { "a", "b" },
            Output = { "c" },
            Node = { new NodeProto { OpType = "Add", Input = { "a", "b" }, Output = { "c" } } },
        });
        using var folder = new TempFolder();
        ModelTestKit.WriteModel(model, folder.File("m.onnx"));

        Assert.Equal(model, ModelLoader.Load(folder.File("m.onnx")));
    }

    [Fact]
    public void Two_versions_of_one_opset_domain_are_QNT1002()
    {
        // Fuzz (models, seed 12): opset 13 and 11 both imported; the engine wrote per-channel DequantizeLinear, which
        // ORT then refused at opset 11 ("Unrecognized attribute: axis").
        var model = ModelTestKit.MatMulModel();
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "ai.onnx", Version = model.OpsetImport[0].Version - 2 });

        var e = Load(model);

        Assert.Equal(ErrorCodes.ModelCorrupt, e.Code);
        Assert.Contains("domain 'ai.onnx'", e.Message);
    }

    [Fact]
    public void Tensor_written_by_two_nodes_is_QNT1002_naming_both()
    {
        var model = ModelTestKit.MatMulModel();
        var copy = model.Graph.Node[0].Clone();
        copy.Name = "const_c_again";
        model.Graph.Node.Add(copy);

        var e = Load(model);

        Assert.Equal(ErrorCodes.ModelCorrupt, e.Code);
        Assert.Contains("'C' is written by node 'const_c' and again by node 'const_c_again'", e.Message);
    }

    private static QuantizeException Load(ModelProto model)
    {
        using var folder = new TempFolder();
        string path = folder.File("hostile.onnx");
        ModelTestKit.WriteModel(model, path);
        var e = Assert.Throws<QuantizeException>(() => ModelLoader.Load(path));
        Assert.Equal(path, e.File);
        return e;
    }

    private static string? Named(string message, string tensor) => message.Contains($"'{tensor}'", StringComparison.Ordinal) ? tensor : null;

    private static ModelProto NestedIf(int levels)
    {
        var graph = new GraphProto { Name = "leaf" };
        for (int i = 0; i < levels; i++)
        {
            var node = new NodeProto { OpType = "If", Input = { "cond" }, Output = { "y" } };
            node.Attribute.Add(new AttributeProto { Name = "then_branch", Type = AttributeProto.Types.AttributeType.Graph, G = graph });
            graph = new GraphProto { Name = $"level{i}", Node = { node } };
        }

        var model = ModelTestKit.MatMulModel();
        model.Graph.Node.Add(graph.Node[0]);
        return model;
    }
}
