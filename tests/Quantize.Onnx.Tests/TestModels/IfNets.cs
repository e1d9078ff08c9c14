using Quantize.Onnx.Model.Proto;
using AttributeType = Quantize.Onnx.Model.Proto.AttributeProto.Types.AttributeType;

namespace Quantize.Onnx.Tests.TestModels;

/// <summary>If nets beyond <see cref="ControlFlowNets"/>: an If nested in a branch (as Silero VAD nests Ifs on ranks in its If on the sample rate), branches reading a transposed or a sequence value from outside.</summary>
internal static class IfNets
{
    public static readonly long[] Shape = [1, 3, 32, 32];

    /// <summary>
    /// stem conv 3→16 + Relu → If outer (mean(input) &gt; 0): then [Conv t1 16→16 + Relu → If inner (mean of input
    /// channel 0 &gt; 0, computed in the branch): then Conv 16→16, else Conv 16→16 + Relu], else [Conv e1 16→16] →
    /// head conv 16→4 (output 1×4×32×32). Every weight is a main-graph initializer; the inner branches read t1's output,
    /// defined in the outer branch.
    /// </summary>
    public static TestNet Build()
    {
        var b = new TestModelBuilder(13, 89, name: "nested_if");
        var x = b.Input(TestNets.ImageInput, Shape);
        var stem = b.Relu("stem_relu", b.Conv("stem", x, 3, 16));
        var outerCond = b.Node("Greater", "outer_cond", [b.Node("ReduceMean", "outer_mean", [x], TestModelBuilder.Int("keepdims", 0)), b.Constant("zero", [], [0f])]);

        var t1 = b.Relu("then_t1_relu", b.Conv("then_t1", stem, 16, 16));
        var channels = b.Node("ReduceMean", "then_channel_means", [x], TestModelBuilder.Ints("axes", 2, 3), TestModelBuilder.Int("keepdims", 0));
        var first = b.Node("Gather", "then_channel0", [channels, b.ConstantInt64("channel0", [], [0])], TestModelBuilder.Int("axis", 1));
        var innerCond = b.Node("Greater", "then_inner_cond", [b.Node("ReduceMax", "then_channel0_scalar", [first], TestModelBuilder.Int("keepdims", 0)), "zero"]);
        var innerThen = b.Conv("inner_then_conv", t1, 16, 16);
        var innerElse = b.Relu("inner_else_relu", b.Conv("inner_else_conv", t1, 16, 16));
        var elseOut = b.Conv("else_e1", stem, 16, 16);
        b.Conv("head", "outer", 16, 4);
        b.Output("head", 1, 4, 32, 32);
        var model = b.Build();

        var inner = If("inner", innerCond, Move(model, "inner_then", innerThen), Move(model, "inner_else", innerElse));
        var thenBranch = Move(model, "then", "inner");
        thenBranch.Node.Add(inner);
        var outer = If("outer", outerCond, thenBranch, Move(model, "else", elseOut));
        model.Graph.Node.Insert(model.Graph.Node.IndexOf(model.Graph.Node.Single(n => n.Name == "head")), outer);
        return new TestNet(model, TestNets.ImageInput, Shape, []);
    }

    /// <summary>
    /// stem conv → If (mean(input) &gt; 0) whose branches read a sequence from outside (SequenceConstruct of the stem's
    /// output; SequenceAt → Conv 16→16 in each): ORT cannot type the branches on their own, so they stay float, named.
    /// </summary>
    public static TestNet BranchesReadingASequence()
    {
        var b = new TestModelBuilder(13, 97, name: "branches_read_a_sequence");
        var x = b.Input(TestNets.ImageInput, Shape);
        var stem = b.Relu("stem_relu", b.Conv("stem", x, 3, 16));
        var sequence = b.Node("SequenceConstruct", "sequence", [stem]);
        var cond = b.Node("Greater", "cond", [b.Node("ReduceMean", "mean", [x], TestModelBuilder.Int("keepdims", 0)), b.Constant("zero", [], [0f])]);
        var index = b.ConstantInt64("first", [], [0]);
        var thenOut = b.Conv("then_conv", b.Node("SequenceAt", "then_at", [sequence, index]), 16, 16);
        var elseOut = b.Conv("else_conv", b.Node("SequenceAt", "else_at", [sequence, index]), 16, 16);
        b.Conv("head", "seq_if", 16, 4);
        b.Output("head", 1, 4, 32, 32);
        var model = b.Build();
        var node = If("seq_if", cond, Move(model, "then", thenOut), Move(model, "else", elseOut));
        model.Graph.Node.Insert(model.Graph.Node.IndexOf(model.Graph.Node.Single(n => n.Name == "head")), node);
        return new TestNet(model, TestNets.ImageInput, Shape, []);
    }

    /// <summary>
    /// stem conv 3→16 + Relu → Transpose (H and W swapped) → If (mean(input) &gt; 0) whose branches both read the
    /// Transpose's output from outside (Conv 16→16 each) → head conv 16→4: a data-movement op between a quantized
    /// output and a subgraph's outer read, as Silero VAD v4 has before its LSTM If.
    /// </summary>
    public static TestNet TransposeBeforeIf()
    {
        var b = new TestModelBuilder(13, 101, name: "transpose_before_if");
        var x = b.Input(TestNets.ImageInput, Shape);
        var stem = b.Relu("stem_relu", b.Conv("stem", x, 3, 16));
        var turned = b.Node("Transpose", "turn", [stem], TestModelBuilder.Ints("perm", 0, 1, 3, 2));
        var cond = b.Node("Greater", "cond", [b.Node("ReduceMean", "mean", [x], TestModelBuilder.Int("keepdims", 0)), b.Constant("zero", [], [0f])]);
        var thenOut = b.Conv("then_conv", turned, 16, 16);
        var elseOut = b.Conv("else_conv", turned, 16, 16);
        b.Conv("head", "turn_if", 16, 4);
        b.Output("head", 1, 4, 32, 32);
        var model = b.Build();
        var node = If("turn_if", cond, Move(model, "then", thenOut), Move(model, "else", elseOut));
        model.Graph.Node.Insert(model.Graph.Node.IndexOf(model.Graph.Node.Single(n => n.Name == "head")), node);
        return new TestNet(model, TestNets.ImageInput, Shape, []);
    }

    /// <summary>Which branches <see cref="Build"/> takes on <paramref name="input"/>: (outer then, inner then).</summary>
    public static (bool Outer, bool Inner) Takes(float[] input) =>
        (input.Average() > 0, input.Take(input.Length / 3).Average() > 0);

    /// <summary>Moves the nodes named <paramref name="prefix"/>_* into a branch graph with output <paramref name="output"/>.</summary>
    private static GraphProto Move(ModelProto model, string prefix, string output)
    {
        var graph = new GraphProto { Name = prefix };
        foreach (var node in model.Graph.Node.Where(n => n.Name.StartsWith(prefix + "_", StringComparison.Ordinal)).ToList())
        {
            model.Graph.Node.Remove(node);
            graph.Node.Add(node);
        }

        graph.Output.Add(TestModelBuilder.FloatValueInfo(output));
        return graph;
    }

    /// <summary>An If node named and output as <paramref name="name"/>.</summary>
    internal static NodeProto If(string name, string cond, GraphProto then, GraphProto otherwise) => new()
    {
        OpType = "If",
        Name = name,
        Input = { cond },
        Output = { name },
        Attribute =
        {
            new AttributeProto { Name = "then_branch", Type = AttributeType.Graph, G = then },
            new AttributeProto { Name = "else_branch", Type = AttributeType.Graph, G = otherwise },
        },
    };
}
