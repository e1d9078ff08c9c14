using Quantize.Onnx.Model;
using Quantize.Onnx.Model.Proto;
using AttributeType = Quantize.Onnx.Model.Proto.AttributeProto.Types.AttributeType;
using DataType = Quantize.Onnx.Model.Proto.TensorProto.Types.DataType;

namespace Quantize.Onnx.Tests.TestModels;

/// <summary>Models with If/Loop subgraphs and recurrent layers, as speech and detection exports have them.</summary>
internal static class ControlFlowNets
{
    /// <summary>
    /// input → conv1 → relu → If(mean(input) &gt; 0): then Conv with weights as Constant nodes inside the branch,
    /// else Conv reading an outer-scope initializer → conv3 (output 1×4×16×16).
    /// </summary>
    public static TestNet ConvIf()
    {
        var b = new TestModelBuilder(13, 23, name: "conv_if");
        var x = b.Input(TestNets.ImageInput, TestNets.ImageShape);
        var a = b.Relu("relu1", b.Conv("conv1", x, 3, 8));
        var cond = Condition(b, x);
        var then = Branch("then", 31, branch => branch.Relu("then_relu", branch.Conv("then_conv", a, 8, 8)), constantNodes: true);
        var outerWeight = b.Constant("else_conv.weight", [8, 8, 3, 3], Normal(new Random(37), 8 * 72, MathF.Sqrt(2f / 72)));
        var elseGraph = new GraphProto { Name = "else" };
        elseGraph.Node.Add(new NodeProto
        {
            OpType = "Conv",
            Name = "else_conv",
            Input = { a, outerWeight },
            Output = { "else_out" },
            Attribute = { TestModelBuilder.Ints("kernel_shape", 3, 3), TestModelBuilder.Ints("pads", 1, 1, 1, 1) },
        });
        elseGraph.Output.Add(TestModelBuilder.FloatValueInfo("else_out", []));
        var branched = If(b, "if1", cond, then, elseGraph);
        b.Conv("conv3", branched, 8, 4);
        b.Output("conv3", 1, 4, 16, 16);
        return new TestNet(b.Build(), TestNets.ImageInput, TestNets.ImageShape, ["conv1", "conv3"]);
    }

    /// <summary>The whole network inside If branches (weights as Constant nodes in each), nothing else in the main graph but the condition.</summary>
    public static TestNet AllInIf()
    {
        var b = new TestModelBuilder(13, 29, name: "all_in_if");
        var x = b.Input(TestNets.ImageInput, TestNets.ImageShape);
        var cond = Condition(b, x);
        var then = Branch("then", 41, branch => branch.Conv("t2", branch.Relu("t1r", branch.Conv("t1", x, 3, 8)), 8, 4), constantNodes: true);
        var other = Branch("else", 43, branch => branch.Conv("e2", branch.Relu("e1r", branch.Conv("e1", x, 3, 8)), 8, 4), constantNodes: true);
        If(b, "if_all", cond, then, other);
        b.Output("if_all", 1, 4, 16, 16);
        return new TestNet(b.Build(), TestNets.ImageInput, TestNets.ImageShape, []);
    }

    public static readonly long[] VoiceShape = [1, 3, 64, 64];

    /// <summary>
    /// As voice-activity exports put their convs in the branches of an If on the sample rate: stem conv → If(mean(input)
    /// &gt; 0): then 3 × (Conv 32→32 + Relu), else 2 × (Conv 32→32 + Relu), every branch weight an initializer of the
    /// main graph read from the outer scope → head conv (output 1×8×64×64).
    /// </summary>
    public static TestNet ConvsInIf()
    {
        var b = new TestModelBuilder(13, 61, name: "convs_in_if");
        var x = b.Input(TestNets.ImageInput, VoiceShape);
        var stem = b.Relu("stem_relu", b.Conv("stem", x, 3, 32));
        var cond = Condition(b, x);
        string Chain(string prefix, int count)
        {
            var h = stem;
            for (var i = 1; i <= count; i++)
            {
                h = b.Relu($"{prefix}_relu{i}", b.Conv($"{prefix}_conv{i}", h, 32, 32));
            }

            return h;
        }

        var (thenOut, elseOut) = (Chain("then", 3), Chain("else", 2));
        b.Conv("head", "if1", 32, 8);
        b.Output("head", 1, 8, 64, 64);
        var model = b.Build();
        IntoIf(model, "if1", cond, thenOut, elseOut, before: "head");
        return new TestNet(model, TestNets.ImageInput, VoiceShape, ["stem", "head"]);
    }

    /// <summary>
    /// <see cref="ConvsInIf"/>'s shape with a tensor 8 bits cannot carry in each branch: stem conv 3→8 → If(mean(input)
    /// &gt; 0): then and else each conv1 8→8 + Relu, whose channel 0 has a bias of 200, → conv2 8→8 + Relu, which
    /// ignores channel 0 (its weights there are 0) → head conv 8→4 (output 1×4×64×64). conv1's output grid spans
    /// [0, ~200], so the other channels, of order 1, fall on a few levels: only keeping conv1 and conv2 float in the
    /// branch a sample takes brings the output close to FP32.
    /// </summary>
    public static TestNet OutlierInIf()
    {
        var b = new TestModelBuilder(13, 73, name: "outlier_in_if");
        var x = b.Input(TestNets.ImageInput, VoiceShape);
        var stem = b.Relu("stem_relu", b.Conv("stem", x, 3, 8));
        var cond = Condition(b, x);
        string Branch(string prefix) =>
            b.Relu($"{prefix}_relu2", b.Conv($"{prefix}_conv2", b.Relu($"{prefix}_relu1", b.Conv($"{prefix}_conv1", stem, 8, 8)), 8, 8));

        var (thenOut, elseOut) = (Branch("then"), Branch("else"));
        b.Conv("head", "if1", 8, 4);
        b.Output("head", 1, 4, 64, 64);
        var model = b.Build();
        foreach (var prefix in new[] { "then", "else" })
        {
            Edit(model, $"{prefix}_conv1.bias", (values, _) => values[0] = 200f);
            Edit(model, $"{prefix}_conv2.weight", (values, dims) =>
            {
                var (perOutput, perInput) = ((int)(dims[1] * dims[2] * dims[3]), (int)(dims[2] * dims[3]));
                for (var o = 0; o < dims[0]; o++)
                {
                    Array.Clear(values, o * perOutput, perInput);
                }
            });
        }

        IntoIf(model, "if1", cond, thenOut, elseOut, before: "head");
        return new TestNet(model, TestNets.ImageInput, VoiceShape, ["stem", "head"]);
    }

    /// <summary>Rewrites the values of the float initializer <paramref name="name"/> in place.</summary>
    private static void Edit(ModelProto model, string name, Action<float[], long[]> edit)
    {
        var index = model.Graph.Initializer.ToList().FindIndex(t => t.Name == name);
        var tensor = model.Graph.Initializer[index];
        var (values, dims) = (TensorValues.ReadFloats(tensor), tensor.Dims.ToArray());
        edit(values, dims);
        model.Graph.Initializer[index] = TensorValues.FromFloats(name, dims, values);
    }

    /// <summary>
    /// LSTM inside If branches: frames → MatMul → If(mean(frames) &gt; 0): then LSTM (hidden 8), else another LSTM, each
    /// reading its W/R/B from the main graph's initializers → Reshape → MatMul head (output [6, 1, 4]).
    /// </summary>
    public static TestNet LstmInIf()
    {
        var b = new TestModelBuilder(13, 67, name: "lstm_in_if");
        var x = b.Input("frames", SequenceShape);
        var h = b.MatMul("proj", x, 16, 16);
        var cond = Condition(b, x);
        var random = new Random(71);
        string Lstm(string prefix)
        {
            var w = b.Constant($"{prefix}_lstm.W", [1, 32, 16], Normal(random, 32 * 16, 0.3f));
            var r = b.Constant($"{prefix}_lstm.R", [1, 32, 8], Normal(random, 32 * 8, 0.3f));
            var bias = b.Constant($"{prefix}_lstm.B", [1, 64], Normal(random, 64, 0.1f));
            return b.Node("LSTM", $"{prefix}_lstm", [h, w, r, bias], TestModelBuilder.Int("hidden_size", 8));
        }

        var (thenOut, elseOut) = (Lstm("then"), Lstm("else"));
        var shape = b.ConstantInt64("head_shape", [3], [6, 1, 8]);
        b.MatMul("head", b.Node("Reshape", "merge", ["if1", shape]), 8, 4);
        b.Output("head", 6, 1, 4);
        var model = b.Build();
        IntoIf(model, "if1", cond, thenOut, elseOut, before: "merge");
        return new TestNet(model, "frames", SequenceShape, []);
    }

    /// <summary>Moves the nodes named then_* / else_* of <paramref name="model"/> into the branches of a new If (their weights stay main-graph initializers, read from the outer scope).</summary>
    private static void IntoIf(ModelProto model, string name, string cond, string thenOut, string elseOut, string before)
    {
        GraphProto Move(string prefix, string output)
        {
            var graph = new GraphProto { Name = prefix };
            foreach (var node in model.Graph.Node.Where(n => n.Name.StartsWith(prefix + "_", StringComparison.Ordinal)).ToList())
            {
                model.Graph.Node.Remove(node);
                graph.Node.Add(node);
            }

            graph.Output.Add(TestModelBuilder.FloatValueInfo(output, []));
            return graph;
        }

        var (then, otherwise) = (Move("then", thenOut), Move("else", elseOut));
        var next = model.Graph.Node.Single(n => n.Name == before);
        model.Graph.Node.Insert(model.Graph.Node.IndexOf(next), IfNets.If(name, cond, then, otherwise));
    }

    /// <summary>Whether <see cref="ConvsInIf"/> (and the other nets' If on mean(input) &gt; 0) takes its then branch on <paramref name="input"/>.</summary>
    public static bool TakesThen(float[] input) => input.Average() > 0;

    /// <summary>conv1 → Loop (3 iterations: v ← v + 0.1·Relu(v), reading an outer-scope scale) → conv2 (output).</summary>
    public static TestNet ConvLoop()
    {
        var b = new TestModelBuilder(13, 47, name: "conv_loop");
        var x = b.Input(TestNets.ImageInput, TestNets.ImageShape);
        var a = b.Conv("conv1", x, 3, 8);
        var trips = b.ConstantInt64("trips", [], [3]);
        var keepGoing = BoolConstant(b, "keep_going", true);
        var scale = b.Constant("loop_scale", [1], [0.1f]);
        var body = new GraphProto { Name = "body" };
        body.Input.Add(new ValueInfoProto { Name = "i", Type = Scalar(DataType.Int64) });
        body.Input.Add(new ValueInfoProto { Name = "c_in", Type = Scalar(DataType.Bool) });
        body.Input.Add(TestModelBuilder.FloatValueInfo("v_in", []));
        body.Node.Add(new NodeProto { OpType = "Relu", Name = "body_relu", Input = { "v_in" }, Output = { "body_r" } });
        body.Node.Add(new NodeProto { OpType = "Mul", Name = "body_mul", Input = { "body_r", scale }, Output = { "body_m" } });
        body.Node.Add(new NodeProto { OpType = "Add", Name = "body_add", Input = { "v_in", "body_m" }, Output = { "v_out" } });
        body.Node.Add(new NodeProto { OpType = "Identity", Name = "body_cond", Input = { "c_in" }, Output = { "c_out" } });
        body.Output.Add(new ValueInfoProto { Name = "c_out", Type = Scalar(DataType.Bool) });
        body.Output.Add(TestModelBuilder.FloatValueInfo("v_out", []));
        var loop = b.Node("Loop", "loop1", [trips, keepGoing, a], new AttributeProto { Name = "body", Type = AttributeType.Graph, G = body });
        b.Conv("conv2", loop, 8, 4);
        b.Output("conv2", 1, 4, 16, 16);
        return new TestNet(b.Build(), TestNets.ImageInput, TestNets.ImageShape, ["conv1", "conv2"]);
    }

    public static readonly long[] SequenceShape = [6, 1, 16];

    /// <summary>
    /// input [T=6, N=1, 16] → MatMul 16→16 → LSTM (hidden 8, forward or bidirectional) → Squeeze → MatMul → output
    /// [6, 1, 4]; bidirectional outputs are [T, 2, N, H], so the head reads a Reshape to [T, N, 2H].
    /// <paramref name="layout"/> adds opset 14's layout attribute, which DynamicQuantizeLSTM lacks (0, sequence first, the
    /// default and the only one ORT's CPU provider runs).
    /// </summary>
    public static TestNet Lstm(bool bidirectional = false, int? layout = null) => Recurrent("LSTM", bidirectional, layout);

    /// <summary>The same network with a GRU (3 gates), which ORT has no integer kernel for.</summary>
    public static TestNet Gru() => Recurrent("GRU", bidirectional: false, layout: null);

    private static TestNet Recurrent(string op, bool bidirectional, int? layout)
    {
        var (gates, directions, hidden) = (op == "LSTM" ? 4 : 3, bidirectional ? 2 : 1, 8);
        var b = new TestModelBuilder(layout is null ? 13 : 14, 53, name: op.ToLowerInvariant());
        var x = b.Input("frames", SequenceShape);
        var h = b.MatMul("proj", x, 16, 16);
        var random = new Random(59);
        var w = b.Constant($"{op}.W", [directions, gates * hidden, 16], Normal(random, directions * gates * hidden * 16, 0.3f));
        var r = b.Constant($"{op}.R", [directions, gates * hidden, hidden], Normal(random, directions * gates * hidden * hidden, 0.3f));
        var bias = b.Constant($"{op}.B", [directions, 2 * gates * hidden], Normal(random, directions * 2 * gates * hidden, 0.1f));
        var attributes = new List<AttributeProto> { TestModelBuilder.Int("hidden_size", hidden) };
        if (bidirectional)
        {
            attributes.Add(TestModelBuilder.String("direction", "bidirectional"));
        }

        if (layout is { } value)
        {
            attributes.Add(TestModelBuilder.Int("layout", value));
        }

        var y = b.Node(op, op.ToLowerInvariant(), [h, w, r, bias], [.. attributes]);
        var shape = b.ConstantInt64("head_shape", [3], [6, 1, directions * hidden]);
        var flat = b.Node("Transpose", "directions_last", [y], TestModelBuilder.Ints("perm", 0, 2, 1, 3));
        var reshaped = b.Node("Reshape", "merge_directions", [flat, shape]);
        b.MatMul("head", reshaped, directions * hidden, 4);
        b.Output("head", 6, 1, 4);
        return new TestNet(b.Build(), "frames", SequenceShape, []);
    }

    private static string Condition(TestModelBuilder b, string x)
    {
        var mean = b.Node("ReduceMean", "cond_mean", [x], TestModelBuilder.Int("keepdims", 0));
        var zero = b.Constant("cond_zero", [], [0f]);
        return b.Node("Greater", "cond", [mean, zero]);
    }

    private static GraphProto Branch(string name, int seed, Func<TestModelBuilder, string> body, bool constantNodes)
    {
        var branch = new TestModelBuilder(13, seed, constantNodes, name);
        var output = body(branch);
        branch.Output(output);
        return branch.Build().Graph;
    }

    private static string If(TestModelBuilder b, string name, string cond, GraphProto then, GraphProto otherwise) =>
        b.Node("If", name, [cond],
            new AttributeProto { Name = "then_branch", Type = AttributeType.Graph, G = then },
            new AttributeProto { Name = "else_branch", Type = AttributeType.Graph, G = otherwise });

    private static string BoolConstant(TestModelBuilder b, string name, bool value) =>
        b.Node("Constant", name, [], new AttributeProto
        {
            Name = "value",
            Type = AttributeType.Tensor,
            T = new TensorProto { Name = name, DataType = (int)DataType.Bool, Int32Data = { value ? 1 : 0 } },
        });

    private static TypeProto Scalar(DataType type) => new() { TensorType = new TypeProto.Types.Tensor { ElemType = (int)type, Shape = new TensorShapeProto() } };

    private static float[] Normal(Random random, int count, float std)
    {
        var values = new float[count];
        for (var i = 0; i < count; i++)
        {
            values[i] = std * MathF.Sqrt(-2 * MathF.Log(1 - random.NextSingle())) * MathF.Cos(2 * MathF.PI * random.NextSingle());
        }

        return values;
    }
}
