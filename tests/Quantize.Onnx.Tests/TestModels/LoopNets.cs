using Quantize.Onnx.Model;
using Quantize.Onnx.Model.Proto;
using AttributeType = Quantize.Onnx.Model.Proto.AttributeProto.Types.AttributeType;
using DataType = Quantize.Onnx.Model.Proto.TensorProto.Types.DataType;

namespace Quantize.Onnx.Tests.TestModels;

/// <summary>Models whose convs and MatMuls run inside Loop and Scan bodies, reading their weights from the outer scope.</summary>
internal static class LoopNets
{
    public static readonly long[] ImageShape = [1, 3, 32, 32];

    /// <summary>
    /// stem conv 3→32 + Relu → Loop (3 iterations, a loop-carried v: v ← v + conv2(relu(conv1(v))), conv 32→32, and v
    /// after each iteration as a scan output) → head conv 32→8 on the final v. Outputs: head [1, 8, 32, 32], the
    /// stacked per-iteration values loop1_all [3, 1, 32, 32, 32] and the loop's initial v, stem_relu. The residual makes
    /// v grow from one iteration to the next, so ranges from the first iteration alone would be too narrow.
    /// </summary>
    public static TestNet ConvsInLoop()
    {
        var b = new TestModelBuilder(13, 73, name: "convs_in_loop");
        var x = b.Input(TestNets.ImageInput, ImageShape);
        var stem = b.Relu("stem_relu", b.Conv("stem", x, 3, 32));
        var h = b.Conv("body_conv2", b.Relu("body_relu", b.Conv("body_conv1", "v_in", 32, 32)), 32, 32);
        b.Add("body_add", "v_in", h);
        b.Node("Identity", "body_each", ["body_add"]);
        b.Node("Identity", "body_cond", ["c_in"]);
        var trips = b.ConstantInt64("trips", [], [3]);
        var keepGoing = BoolConstant(b, "keep_going", true);
        b.Conv("head", "loop1", 32, 8);
        b.Output("head", 1, 8, 32, 32);
        b.Output("loop1_all", 3, 1, 32, 32, 32);
        b.Output("stem_relu", 1, 32, 32, 32);
        var model = b.Build();
        Scale(model, "body_conv2.weight", 0.3f); // v grows by about half its range per iteration, not several times
        var body = Body(model, "body_", [Scalar("i", DataType.Int64), Scalar("c_in", DataType.Bool), TestModelBuilder.FloatValueInfo("v_in")],
            [Scalar("body_cond", DataType.Bool), TestModelBuilder.FloatValueInfo("body_add"), TestModelBuilder.FloatValueInfo("body_each")]);
        Insert(model, "head", new NodeProto
        {
            OpType = "Loop",
            Name = "loop1",
            Input = { trips, keepGoing, stem },
            Output = { "loop1", "loop1_all" },
            Attribute = { new AttributeProto { Name = "body", Type = AttributeType.Graph, G = body } },
        });
        return new TestNet(model, TestNets.ImageInput, ImageShape, ["stem", "head"]);
    }

    /// <summary>
    /// An If inside a Loop body: stem conv 3→16 + Relu → Loop (4 iterations; v ← If(i is even): Relu(conv_a(v)), else
    /// conv_b(v)) → head conv 16→4. Every iteration runs one branch, each branch runs on two of them: their ranges come
    /// out through the If's outputs, then the Loop's scan outputs.
    /// </summary>
    public static TestNet IfInLoop()
    {
        var b = new TestModelBuilder(13, 103, name: "if_in_loop");
        var x = b.Input(TestNets.ImageInput, ImageShape);
        var stem = b.Relu("stem_relu", b.Conv("stem", x, 3, 16));
        var parity = b.Node("Mod", "body_parity", ["i", b.ConstantInt64("two", [], [2])]);
        var even = b.Node("Equal", "body_even", [parity, b.ConstantInt64("nought", [], [0])]);
        b.Node("Identity", "body_cond", ["c_in"]);
        var thenOut = b.Relu("even_relu", b.Conv("even_conv", "v_in", 16, 16));
        var elseOut = b.Conv("odd_conv", "v_in", 16, 16);
        var trips = b.ConstantInt64("trips", [], [4]);
        var keepGoing = BoolConstant(b, "keep_going", true);
        b.Conv("head", "loop_if", 16, 4);
        b.Output("head", 1, 4, 32, 32);
        var model = b.Build();
        var branch = new NodeProto
        {
            OpType = "If",
            Name = "body_if",
            Input = { even },
            Output = { "body_if" },
            Attribute =
            {
                new AttributeProto { Name = "then_branch", Type = AttributeType.Graph, G = Body(model, "even_", [], [TestModelBuilder.FloatValueInfo(thenOut)]) },
                new AttributeProto { Name = "else_branch", Type = AttributeType.Graph, G = Body(model, "odd_", [], [TestModelBuilder.FloatValueInfo(elseOut)]) },
            },
        };
        var body = Body(model, "body_", [Scalar("i", DataType.Int64), Scalar("c_in", DataType.Bool), TestModelBuilder.FloatValueInfo("v_in")],
            [Scalar("body_cond", DataType.Bool), TestModelBuilder.FloatValueInfo("body_if")]);
        body.Node.Add(branch);
        Insert(model, "head", new NodeProto
        {
            OpType = "Loop",
            Name = "loop_if",
            Input = { trips, keepGoing, stem },
            Output = { "loop_if" },
            Attribute = { new AttributeProto { Name = "body", Type = AttributeType.Graph, G = body } },
        });
        return new TestNet(model, TestNets.ImageInput, ImageShape, ["stem", "head"]);
    }

    /// <summary>
    /// A Loop that runs only on inputs above 10 (trip count Cast(ReduceMax(input) &gt; 10)): never on the structured
    /// samples in [-1, 1]. stem conv → Loop (v ← conv(v)) → head conv.
    /// </summary>
    public static TestNet RareLoop()
    {
        var b = new TestModelBuilder(13, 79, name: "rare_loop");
        var x = b.Input(TestNets.ImageInput, ImageShape);
        var stem = b.Relu("stem_relu", b.Conv("stem", x, 3, 16));
        var peak = b.Node("ReduceMax", "peak", [x], TestModelBuilder.Int("keepdims", 0));
        var large = b.Node("Greater", "large", [peak, b.Constant("ten", [], [10f])]);
        var trips = b.Node("Cast", "trips", [large], TestModelBuilder.Int("to", (long)DataType.Int64));
        var keepGoing = BoolConstant(b, "keep_going", true);
        b.Conv("body_conv", "v_in", 16, 16);
        b.Node("Identity", "body_cond", ["c_in"]);
        b.Conv("head", "loop_rare", 16, 4);
        b.Output("head", 1, 4, 32, 32);
        var model = b.Build();
        var body = Body(model, "body_", [Scalar("i", DataType.Int64), Scalar("c_in", DataType.Bool), TestModelBuilder.FloatValueInfo("v_in")],
            [Scalar("body_cond", DataType.Bool), TestModelBuilder.FloatValueInfo("body_conv")]);
        Insert(model, "head", new NodeProto
        {
            OpType = "Loop",
            Name = "loop_rare",
            Input = { trips, keepGoing, stem },
            Output = { "loop_rare" },
            Attribute = { new AttributeProto { Name = "body", Type = AttributeType.Graph, G = body } },
        });
        return new TestNet(model, TestNets.ImageInput, ImageShape, ["stem", "head"]);
    }

    /// <summary>
    /// Per step the int8 kernels save less than the step's QuantizeLinear/DequantizeLinear cost below some size: measured
    /// (vnni, T = 16) B 8 × H 128: 0.80× FP32's speed, 1 × 256: 1.04×, 8 × 256: 1.36×, 32 × 256: 1.70×, 8 × 512: 2.15×.
    /// </summary>
    public static readonly long[] SequenceShape = [16, 16, 256];

    /// <summary>
    /// An RNN as tf2onnx-style exports write it, a Scan over time: frames [T, B, H] → Scan (state h [B, H],
    /// h ← tanh(x_t·W + h·R + b), h also the per-step scan output) → MatMul head H→16 on the stacked states
    /// (output [T, B, 16]); W, R and b are main-graph initializers the body reads from the outer scope.
    /// </summary>
    public static TestNet ScanRnn(long[]? shape = null)
    {
        shape ??= SequenceShape;
        var b = new TestModelBuilder(13, 83, name: "scan_rnn");
        var x = b.Input("frames", shape);
        var (batch, hidden) = (shape[1], (int)shape[2]);
        var h0 = b.Constant("h0", [batch, hidden], new float[batch * hidden]);
        var input = b.MatMul("body_input", "x_t", hidden, hidden);
        var recurrent = b.MatMul("body_recurrent", "h_in", hidden, hidden);
        var sum = b.AddBias("body_bias", b.Add("body_sum", input, recurrent), hidden);
        b.Node("Tanh", "body_tanh", [sum]);
        b.Node("Identity", "body_y", ["body_tanh"]);
        b.MatMul("head", "states", hidden, 16);
        b.Output("head", shape[0], batch, 16);
        var model = b.Build();

        Scale(model, "body_recurrent.weight", 0.3f); // the state stays in tanh's linear region instead of saturating

        var body = Body(model, "body_", [TestModelBuilder.FloatValueInfo("h_in", batch, hidden), TestModelBuilder.FloatValueInfo("x_t", batch, hidden)],
            [TestModelBuilder.FloatValueInfo("body_tanh", batch, hidden), TestModelBuilder.FloatValueInfo("body_y", batch, hidden)]);
        Insert(model, "head", new NodeProto
        {
            OpType = "Scan",
            Name = "rnn",
            Input = { h0, x },
            Output = { "h_last", "states" },
            Attribute =
            {
                new AttributeProto { Name = "body", Type = AttributeType.Graph, G = body },
                TestModelBuilder.Int("num_scan_inputs", 1),
            },
        });
        return new TestNet(model, "frames", shape, []);
    }

    /// <summary>Moves the nodes named <paramref name="prefix"/>* of <paramref name="model"/> into a body graph (their weights stay main-graph initializers).</summary>
    private static GraphProto Body(ModelProto model, string prefix, ValueInfoProto[] inputs, ValueInfoProto[] outputs)
    {
        var graph = new GraphProto { Name = prefix + "graph", Input = { inputs }, Output = { outputs } };
        foreach (var node in model.Graph.Node.Where(n => n.Name.StartsWith(prefix, StringComparison.Ordinal)).ToList())
        {
            model.Graph.Node.Remove(node);
            graph.Node.Add(node);
        }

        return graph;
    }

    private static void Scale(ModelProto model, string weight, float factor)
    {
        var tensor = model.Graph.Initializer.Single(t => t.Name == weight);
        var scaled = TensorValues.ReadFloats(tensor).Select(v => v * factor).ToArray();
        model.Graph.Initializer[model.Graph.Initializer.IndexOf(tensor)] = TensorValues.FromFloats(weight, [.. tensor.Dims], scaled);
    }

    private static void Insert(ModelProto model, string before, NodeProto node) =>
        model.Graph.Node.Insert(model.Graph.Node.IndexOf(model.Graph.Node.Single(n => n.Name == before)), node);

    private static string BoolConstant(TestModelBuilder b, string name, bool value) =>
        b.Node("Constant", name, [], new AttributeProto
        {
            Name = "value",
            Type = AttributeType.Tensor,
            T = new TensorProto { Name = name, DataType = (int)DataType.Bool, Int32Data = { value ? 1 : 0 } },
        });

    private static ValueInfoProto Scalar(string name, DataType type) =>
        new() { Name = name, Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)type, Shape = new TensorShapeProto() } } };
}
