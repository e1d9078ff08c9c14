using static Quantize.Onnx.Tests.TestModels.TestModelBuilder;

namespace Quantize.Onnx.Tests.TestModels;

/// <summary>
/// A one-block transformer encoder as PyTorch exports BERT-style models (opset 13), on embeddings
/// input [1, 16, 32]:
/// <code>
/// ln1 = LayerNorm(x)  decomposed: ReduceMean, Sub, Pow, ReduceMean, Add eps, Sqrt, Div, Mul γ, Add β
/// q, k, v = MatMul(ln1, W) + b              (bias Add with the bias first, as the exports have it)
/// probs = Softmax(MatMul(q, Transpose(k)) / √32)       MatMul of two activations
/// x2 = x + (MatMul(MatMul(probs, v), Wo) + bo)
/// ff = MatMul(GELU(MatMul(LayerNorm(x2), W1) + b1), W2) + b2    GELU = x·0.5·(1 + Erf(x/√2)), 32→64→32
/// out = x2 + ff
/// </code>
/// Six MatMuls with constant weights (q, k, v, o, ff1, ff2) and two between activations (scores, context).
/// </summary>
internal static class TransformerNet
{
    public const string Input = "embeddings";
    public const string Output = "hidden";
    public static readonly long[] Shape = [1, 16, 32];
    public static readonly string[] WeightMatMuls = ["q", "k", "v", "o", "ff1", "ff2"];

    public static TestNet Build(int seed = 23)
    {
        var b = new TestModelBuilder(opset: 13, seed, name: "transformer");
        var x = b.Input(Input, Shape);
        var ln1 = LayerNorm(b, "ln1", x);
        var q = Linear(b, "q", ln1, 32, 32);
        var k = Linear(b, "k", ln1, 32, 32);
        var v = Linear(b, "v", ln1, 32, 32);
        var kt = b.Node("Transpose", "k_t", [k], Ints("perm", 0, 2, 1));
        var scores = b.Node("Div", "scores_scaled", [b.Node("MatMul", "scores", [q, kt]), b.Constant("sqrt_d", [], [MathF.Sqrt(32)])]);
        var probs = b.Softmax("probs", scores);
        var context = b.Node("MatMul", "context", [probs, v]);
        var x2 = b.Add("residual1", x, Linear(b, "o", context, 32, 32));
        var ln2 = LayerNorm(b, "ln2", x2);
        var h = Gelu(b, "gelu", Linear(b, "ff1", ln2, 32, 64));
        b.Add(Output, x2, Linear(b, "ff2", h, 64, 32));
        b.Output(Output, Shape);
        return new TestNet(b.Build(), Input, Shape, []);
    }

    /// <summary>MatMul by a constant [in, out] weight, then Add of a constant bias (bias first).</summary>
    internal static string Linear(TestModelBuilder b, string name, string x, int inFeatures, int outFeatures)
    {
        var y = b.MatMul(name, x, inFeatures, outFeatures);
        var bias = b.Constant(name + "_bias.bias", [outFeatures], Enumerable.Range(0, outFeatures).Select(i => 0.05f * MathF.Sin(i + name.Length)).ToArray());
        return b.Add(name + "_bias", bias, y);
    }

    /// <summary>LayerNorm over the last axis, decomposed as PyTorch exports it before opset 17.</summary>
    internal static string LayerNorm(TestModelBuilder b, string name, string x, int width = 32)
    {
        var mean = b.Node("ReduceMean", name + "_mean", [x], Ints("axes", -1));
        var centered = b.Node("Sub", name + "_sub", [x, mean]);
        var squared = b.Node("Pow", name + "_pow", [centered, b.Constant(name + "_two", [], [2f])]);
        var variance = b.Node("ReduceMean", name + "_var", [squared], Ints("axes", -1));
        var std = b.Node("Sqrt", name + "_sqrt", [b.Node("Add", name + "_eps", [variance, b.Constant(name + "_epsilon", [], [1e-12f])])]);
        var normalized = b.Node("Div", name + "_div", [centered, std]);
        var scaled = b.Node("Mul", name + "_gamma", [normalized, b.Constant(name + "_weight", [width], Enumerable.Repeat(1.1f, width).ToArray())]);
        return b.Node("Add", name + "_beta", [scaled, b.Constant(name + "_bias", [width], Enumerable.Repeat(0.02f, width).ToArray())]);
    }

    /// <summary>GELU = x·0.5·(1 + Erf(x/√2)), decomposed.</summary>
    internal static string Gelu(TestModelBuilder b, string name, string x)
    {
        var erf = b.Node("Erf", name + "_erf", [b.Node("Div", name + "_div", [x, b.Constant(name + "_sqrt2", [], [MathF.Sqrt(2)])])]);
        var onePlus = b.Node("Add", name + "_add", [erf, b.Constant(name + "_one", [], [1f])]);
        var half = b.Node("Mul", name + "_mul", [x, onePlus]);
        return b.Node("Mul", name + "_half", [half, b.Constant(name + "_half_c", [], [0.5f])]);
    }
}
