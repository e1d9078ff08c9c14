using Quantize.Onnx.Calibration;
using Quantize.Onnx.Model;
using Quantize.Onnx.Tests.TestModels;

namespace Quantize.Onnx.Tests.Calibration;

/// <summary>Where a tensor's consumers saturate, read from the graph (saturation-aware ranges).</summary>
public sealed class ConsumerResponseTests
{
    [Fact]
    public void Relu_clip_and_hard_sigmoid_consumers_give_their_flat_ends()
    {
        var b = new TestModelBuilder();
        var x = b.Input("x", 1, 4);
        var y = b.Input("y", 1, 4);
        var z = b.Input("z", 1, 4);
        b.Relu("relu", x);
        b.Node("Clip", "clip", [y, b.Constant("low", [], [-1f]), b.Constant("high", [], [2f])]);
        b.Node("HardSigmoid", "hs", [z]);
        var graph = new GraphView(b.Build().Graph);

        Assert.Equal((0.0, double.PositiveInfinity), Bounds(graph, x));
        Assert.Equal((-1.0, 2.0), Bounds(graph, y));
        Assert.Equal((-2.5, 2.5), Bounds(graph, z), new ToleranceComparer());
    }

    [Fact]
    public void A_tensor_is_cut_only_where_every_consumer_saturates()
    {
        var b = new TestModelBuilder();
        var x = b.Input("x", 1, 4);
        b.Relu("relu", x);
        b.Node("Clip", "clip", [x, b.Constant("low", [], [-1f]), b.Constant("high", [], [2f])]);
        var both = new GraphView(b.Build().Graph);
        b.Node("Exp", "exp", [x]);
        var withPlainConsumer = new GraphView(b.Build().Graph);

        Assert.Equal((-1.0, double.PositiveInfinity), Bounds(both, x)); // union of [0, ∞) and [−1, 2]
        Assert.Equal((double.NegativeInfinity, double.PositiveInfinity), Bounds(withPlainConsumer, x));
    }

    [Fact]
    public void Hard_swish_written_out_saturates_below_minus_three_and_scalar_affine_ops_are_looked_through()
    {
        // x → Mul(2) → Add(1) → t;  t · Clip(t + 3, 0, 6) / 6
        var b = new TestModelBuilder();
        var x = b.Input("x", 1, 4);
        var scaled = b.Node("Mul", "scale", [x, b.Constant("two", [1], [2f])]);
        var t = b.Node("Add", "shift", [scaled, b.Constant("one", [1], [1f])]);
        var gate = b.Node("Clip", "gate", [b.Node("Add", "plus3", [t, b.Constant("three", [], [3f])]), b.Constant("zero", [], [0f]), b.Constant("six", [], [6f])]);
        b.Node("Div", "out", [b.Node("Mul", "swish", [t, gate]), b.Constant("six2", [], [6f])]);
        var graph = new GraphView(b.Build().Graph);

        var responses = ConsumerResponses.Of(graph, t);
        Assert.Equal("hard-swish", Assert.Single(responses).Kind);
        Assert.Equal((-3.0, double.PositiveInfinity), Bounds(graph, t));
        Assert.Equal((-2.0, double.PositiveInfinity), Bounds(graph, x)); // 2x + 1 ≤ −3 ⇔ x ≤ −2
        var throughAffine = Assert.Single(ConsumerResponses.Of(graph, x));
        Assert.Equal(0, throughAffine.Apply(-5));
        Assert.Equal(24, throughAffine.Apply(1.5), 6); // t = 4: 4 · clip(4 + 3, 0, 6) (the response leaves out the constant / 6)
    }

    [Fact]
    public void A_sigmoid_saturates_beyond_seventeen_where_the_cut_moves_its_output_by_less_than_a_float32_step_near_one()
    {
        var b = new TestModelBuilder();
        var x = b.Input("x", 1, 4);
        b.Node("Sigmoid", "sig", [x]);
        var graph = new GraphView(b.Build().Graph);

        Assert.Equal((-17.0, 17.0), Bounds(graph, x));
        var sigmoid = ConsumerResponse.Sigmoid;
        Assert.True(sigmoid.Apply(-17) < Math.Pow(2, -24), $"{sigmoid.Apply(-17):E2}");
        Assert.True(1 - sigmoid.Apply(17) < Math.Pow(2, -24));
        Assert.True(sigmoid.Apply(-17) < 0.5 / 255 / 1000); // and far below half a uint8 step of [0, 1]
    }

    [Fact]
    public void Reshapes_max_pool_and_nearest_resize_are_looked_through_to_any_saturating_consumer()
    {
        // x → Reshape → MaxPool → Resize(nearest) → Relu: clamping x at 0 first changes nothing downstream.
        var b = new TestModelBuilder();
        var x = b.Input("x", 1, 2, 4, 4);
        var reshaped = b.Node("Reshape", "reshape", [x, b.ConstantInt64("shape", [4], [1, 2, 4, 4])]);
        var pooled = b.MaxPool("pool", reshaped, 2, 2);
        b.Relu("relu", b.ResizeNearest("up", pooled, 2));
        var y = b.Input("y", 1, 1, 4, 4);
        b.Node("Sigmoid", "sig", [b.Node("Transpose", "t", [y], TestModelBuilder.Ints("perm", 0, 1, 3, 2))]);
        var graph = new GraphView(b.Build().Graph);

        Assert.Equal((0.0, double.PositiveInfinity), Bounds(graph, x));
        Assert.Equal((-17.0, 17.0), Bounds(graph, y));
    }

    [Fact]
    public void A_linear_resize_is_looked_through_to_a_sigmoid_only_and_a_cubic_one_not_at_all()
    {
        // Clamping before a linear interpolation moves outputs next to a clamped neighbour: harmless deep in a
        // sigmoid's flat tail (see ValueMovingOps), not at a Relu's kink.
        var b = new TestModelBuilder();
        var x = b.Input("x", 1, 1, 4, 4);
        var y = b.Input("y", 1, 1, 4, 4);
        var z = b.Input("z", 1, 1, 4, 4);
        var scales = b.Constant("scales", [4], [1f, 1f, 2f, 2f]);
        b.Node("Sigmoid", "sig", [b.Node("Resize", "up_x", [x, "", scales], TestModelBuilder.String("mode", "linear"))]);
        b.Relu("relu", b.Node("Resize", "up_y", [y, "", scales], TestModelBuilder.String("mode", "linear")));
        b.Node("Sigmoid", "sig_z", [b.Node("Resize", "up_z", [z, "", scales], TestModelBuilder.String("mode", "cubic"))]);
        var graph = new GraphView(b.Build().Graph);

        Assert.Equal((-17.0, 17.0), Bounds(graph, x));
        Assert.Equal((double.NegativeInfinity, double.PositiveInfinity), Bounds(graph, y));
        Assert.Equal((double.NegativeInfinity, double.PositiveInfinity), Bounds(graph, z));
    }

    [Fact]
    public void A_looked_through_op_whose_output_is_also_read_elsewhere_is_not_cut()
    {
        var b = new TestModelBuilder();
        var x = b.Input("x", 1, 1, 4, 4);
        var up = b.ResizeNearest("up", x, 2);
        b.Node("Sigmoid", "sig", [up]);
        b.Output(up, 1, 1, 8, 8);

        Assert.Equal((double.NegativeInfinity, double.PositiveInfinity), Bounds(new GraphView(b.Build().Graph), x));
    }

    [Fact]
    public void A_graph_output_is_never_cut()
    {
        var b = new TestModelBuilder();
        var x = b.Input("x", 1, 4);
        var r = b.Relu("relu", x);
        b.Output(x, 1, 4);
        b.Output(r, 1, 4);

        Assert.Equal((double.NegativeInfinity, double.PositiveInfinity), Bounds(new GraphView(b.Build().Graph), x));
    }

    private static (double, double) Bounds(GraphView graph, string tensor) => ConsumerResponses.SaturationBounds(ConsumerResponses.Of(graph, tensor));

    private sealed class ToleranceComparer : IEqualityComparer<(double, double)>
    {
        public bool Equals((double, double) a, (double, double) b) => Math.Abs(a.Item1 - b.Item1) < 1e-6 && Math.Abs(a.Item2 - b.Item2) < 1e-6;

        public int GetHashCode((double, double) obj) => 0;
    }
}
