using Quantize.Onnx.Preparation;
using Quantize.Onnx.Tests.TestModels;

namespace Quantize.Onnx.Tests.Preparation;

/// <summary>Ranks the opset upgrade relies on: static where ORT knows them, from a sample where only the graph fixes them.</summary>
public sealed class TensorRanksTests
{
    [Theory]
    [InlineData(9)]
    [InlineData(11)]
    public void Ranks_lost_at_a_computed_reshape_are_read_from_a_sample_where_the_graph_fixes_them(long opset)
    {
        var net = TestNets.PaddleRecognizer(opset);
        var types = TensorTypes.Infer(net.Model);
        var ranks = new TensorRanks(net.Model.Graph, types, SampleShapes.For(net.Model, [net.InputName], QuantizeTestKit.StructuredSample(net.InputName, [1, 3, 8, 12])));

        Assert.Equal((4, RankSource.Static), ranks["p2o.Clip.0"]);
        Assert.Equal((null, RankSource.Unknown), ranks["p2o.Mul.0"]); // not asked for yet
        Assert.True(ranks.IsFixedByGraph("p2o.Reshape.0")); // its target shape has 4 elements, whatever the dims
        Assert.True(ranks.IsFixedByGraph("logits"));

        ranks.Observe(["p2o.Mul.0", "logits"]);

        Assert.Equal((4, RankSource.Sample), ranks["p2o.Mul.0"]);
        Assert.Equal((3, RankSource.Sample), ranks["logits"]);
        Assert.Null(ranks.ProbeFailure);
    }

    [Fact]
    public void Without_a_sample_unknown_ranks_stay_unknown()
    {
        var net = TestNets.PaddleRecognizer(opset: 9);
        var ranks = new TensorRanks(net.Model.Graph, TensorTypes.Infer(net.Model), probe: null);

        ranks.Observe(["p2o.Mul.0"]);

        Assert.Equal((null, RankSource.Unknown), ranks["p2o.Mul.0"]);
    }

    [Fact]
    public void A_reshape_to_a_shape_of_data_dependent_length_has_no_fixed_rank()
    {
        // The target shape is a row of NonZero's output: as long as x has non-zero elements.
        var b = new TestModelBuilder(opset: 11);
        var x = b.SymbolicInput("x", "batch", "4");
        var nonZero = b.Node("NonZero", "nonzero", [x]);
        var target = b.Node("Gather", "target", [nonZero, b.ConstantInt64("row", [], [1])], TestModelBuilder.Int("axis", 0));
        b.Node("Reshape", "reshaped", [x, target]);
        var squeezed = b.Node("Squeeze", "squeezed", [x]);
        b.Node("Unsqueeze", "unsqueezed", [x], TestModelBuilder.Ints("axes", 0));
        b.Output("reshaped");
        b.Output(squeezed);
        b.Output("unsqueezed");
        var model = b.Build();

        var fixedRanks = TensorRanks.FixedByGraph(model.Graph, TensorTypes.Infer(model));

        Assert.DoesNotContain("reshaped", fixedRanks);
        Assert.DoesNotContain("squeezed", fixedRanks); // no axes: drops whichever dims are 1
        Assert.Contains("unsqueezed", fixedRanks);
        Assert.Contains("nonzero", fixedRanks); // always 2-D
    }
}
