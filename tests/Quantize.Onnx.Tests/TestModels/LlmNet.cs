using Quantize.Onnx.Model.Proto;
using static Quantize.Onnx.Tests.TestModels.TestModelBuilder;

namespace Quantize.Onnx.Tests.TestModels;

/// <summary>
/// A one-block decoder shaped like a small language model (opset 13), on token ids [1, 16]:
/// <code>
/// x = Gather(token_embeddings [512, 256], ids)                  embedding table (131K values: stored int8 per row)
/// q, k, v = MatMul(LayerNorm(x), W 256×256) + b
/// context = MatMul(Softmax(MatMul(q, Transpose(k)) / 16), v)   two MatMuls of activations: stay float
/// x2 = x + MatMul(context, Wo) + bo
/// x3 = x2 + MatMul(GELU(MatMul(LayerNorm(x2), W1 256×400) + b1), W2 400×256) + b2     K = 400: not a multiple of 32
/// logits = MatMul(LayerNorm(x3), lm_head 256×512)               no bias
/// classes = MatMul(x3, head 256×8)                              N = 8, smaller than a block: stays float
/// </code>
/// Seven weight MatMuls worth 4-bit blocks (q, k, v, o, ff1, ff2, lm_head), six of them with a bias Add.
/// </summary>
internal static class LlmNet
{
    public const string Input = "ids";
    public const string Logits = "logits";
    public const string Classes = "classes";
    public const int Hidden = 256;
    public const int FeedForward = 400;
    public const int Vocabulary = 512;
    public const int Tokens = 16;
    public static readonly long[] InputShape = [1, Tokens];
    public static readonly string[] BlockMatMuls = ["q", "k", "v", "o", "ff1", "ff2", "lm_head"];

    public static ModelProto Build(int seed = 31)
    {
        var b = new TestModelBuilder(opset: 13, seed, name: "llm");
        var random = new Random(seed);
        var table = b.Constant("token_embeddings", [Vocabulary, Hidden], Enumerable.Range(0, Vocabulary * Hidden).Select(_ => (float)(random.NextDouble() - 0.5)).ToArray());
        var x = b.Node("Gather", "embed", [table, Input]);
        var ln1 = TransformerNet.LayerNorm(b, "ln1", x, Hidden);
        var q = TransformerNet.Linear(b, "q", ln1, Hidden, Hidden);
        var k = TransformerNet.Linear(b, "k", ln1, Hidden, Hidden);
        var v = TransformerNet.Linear(b, "v", ln1, Hidden, Hidden);
        var kt = b.Node("Transpose", "k_t", [k], Ints("perm", 0, 2, 1));
        var scores = b.Node("Div", "scores_scaled", [b.Node("MatMul", "scores", [q, kt]), b.Constant("sqrt_d", [], [MathF.Sqrt(Hidden)])]);
        var context = b.Node("MatMul", "context", [b.Softmax("probs", scores), v]);
        var x2 = b.Add("residual1", x, TransformerNet.Linear(b, "o", context, Hidden, Hidden));
        var h = TransformerNet.Gelu(b, "gelu", TransformerNet.Linear(b, "ff1", TransformerNet.LayerNorm(b, "ln2", x2, Hidden), Hidden, FeedForward));
        var x3 = b.Add("residual2", x2, TransformerNet.Linear(b, "ff2", h, FeedForward, Hidden));
        b.Node("Identity", Logits, [b.MatMul("lm_head", TransformerNet.LayerNorm(b, "ln3", x3, Hidden), Hidden, Vocabulary)]);
        b.Node("Identity", Classes, [b.MatMul("head", x3, Hidden, 8)]);
        b.Output(Logits, 1, Tokens, Vocabulary);
        b.Output(Classes, 1, Tokens, 8);
        var model = b.Build();
        model.Graph.Input.Add(new ValueInfoProto
        {
            Name = Input,
            Type = new TypeProto
            {
                TensorType = new TypeProto.Types.Tensor
                {
                    ElemType = (int)TensorProto.Types.DataType.Int64,
                    Shape = new TensorShapeProto { Dim = { InputShape.Select(d => new TensorShapeProto.Types.Dimension { DimValue = d }) } },
                },
            },
        });
        return model;
    }

    /// <summary>Seeded token sequences of <see cref="Tokens"/> ids.</summary>
    public static long[] TokenIds(int seed)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, Tokens).Select(_ => (long)random.Next(Vocabulary)).ToArray();
    }

    /// <summary>One validation/calibration sample folder per seed with ids.npy.</summary>
    public static string WriteSamples(string folder, IEnumerable<int> seeds)
    {
        foreach (var seed in seeds)
        {
            var sample = Directory.CreateDirectory(Path.Combine(folder, $"sample_{seed}")).FullName;
            Samples.Npy.WriteInt64(Path.Combine(sample, Input + ".npy"), InputShape, TokenIds(seed));
        }

        return folder;
    }

    /// <summary>Every output of the model for each token sequence.</summary>
    public static List<Dictionary<string, float[]>> Run(string modelPath, IEnumerable<long[]> sequences)
    {
        using var options = new Microsoft.ML.OnnxRuntime.SessionOptions { IntraOpNumThreads = 1 };
        using var session = new Microsoft.ML.OnnxRuntime.InferenceSession(modelPath, options);
        using var runOptions = new Microsoft.ML.OnnxRuntime.RunOptions();
        var results = new List<Dictionary<string, float[]>>();
        foreach (var ids in sequences)
        {
            using var input = Microsoft.ML.OnnxRuntime.OrtValue.CreateTensorValueFromMemory(ids, InputShape);
            var names = session.OutputNames.ToArray();
            using var outputs = session.Run(runOptions, new Dictionary<string, Microsoft.ML.OnnxRuntime.OrtValue> { [Input] = input }, names);
            results.Add(names.Select((n, i) => (n, outputs[i].GetTensorDataAsSpan<float>().ToArray())).ToDictionary(p => p.n, p => p.Item2, StringComparer.Ordinal));
        }

        return results;
    }
}
