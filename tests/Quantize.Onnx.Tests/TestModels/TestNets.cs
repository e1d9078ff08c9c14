using Quantize.Onnx.Model.Proto;

namespace Quantize.Onnx.Tests.TestModels;

/// <summary>A model built in code, with what the tests need to know about it.</summary>
internal sealed record TestNet(ModelProto Model, string InputName, long[] InputShape, IReadOnlyList<string> ConvNodes);

/// <summary>The small models the quantization tests run through the engine.</summary>
internal static class TestNets
{
    public const string ImageInput = "input";
    public static readonly long[] ImageShape = [1, 3, 16, 16];

    /// <summary>
    /// A small conv net with every structure the first engine slice must handle:
    /// <code>
    /// input 1×3×16×16
    /// conv1 3→8 3×3 → bn1 → relu1 = a
    /// conv2 8→8 3×3 → bn2 → relu2 = b
    /// add = a + b                                  (residual)
    /// dw  8→8 3×3 group 8 → relu3 = d              (depthwise)
    /// cat = Concat(add, d) → 16 channels
    /// pool = MaxPool 2×2/2 → 16×8×8
    /// conv3 16→16 1×1 → relu4 = e
    /// avg = AveragePool 3×3/1 pad 1 → up = Resize nearest ×2 (scales input) → conv4 16→4 3×3 (output) 1×4×16×16
    /// gap = GlobalAveragePool(e) → head 16→5 1×1 (output) 1×5×1×1
    /// </code>
    /// Six Conv nodes (conv1, conv2, dw, conv3, conv4, head), two BatchNormalization nodes.
    /// <paramref name="width"/> (8 above) scales the channel counts: 32 gives a model whose weights
    /// dominate its size.
    /// </summary>
    public static TestNet ConvNet(bool weightsAsConstantNodes = false, long opset = 13, int seed = 7, int width = 8)
    {
        var b = new TestModelBuilder(opset, seed, weightsAsConstantNodes, "convnet");
        var x = b.Input(ImageInput, ImageShape);
        int w = width, w2 = 2 * width;
        var a = b.Relu("relu1", b.BatchNorm("bn1", b.Conv("conv1", x, 3, w), w));
        var r = b.Relu("relu2", b.BatchNorm("bn2", b.Conv("conv2", a, w, w), w));
        var sum = b.Add("add", a, r);
        var d = b.Relu("relu3", b.Conv("dw", sum, w, w, kernel: 3, group: w));
        var cat = b.Concat("cat", 1, sum, d);
        var pool = b.MaxPool("pool", cat, 2, 2);
        var e = b.Relu("relu4", b.Conv("conv3", pool, w2, w2, kernel: 1));
        var avg = b.AveragePool("avg", e, 3, 1, 1);
        var up = b.ResizeNearest("up", avg, 2f);
        b.Conv("conv4", up, w2, 4);
        var gap = b.GlobalAveragePool("gap", e);
        b.Conv("head", gap, w2, 5, kernel: 1);
        b.Output("conv4", 1, 4, 16, 16);
        b.Output("head", 1, 5, 1, 1);
        return new TestNet(b.Build(), ImageInput, ImageShape, b.ConvNodes);
    }

    /// <summary>
    /// An opset-9 model whose Clip (min/max attributes, opset &lt; 11) and Slice (starts/ends/axes
    /// attributes, opset &lt; 10) must be rewritten when the opset is raised to 13:
    /// conv1 3→8 3×3 → Clip[0, 6] → Slice [2:14, 2:14] → conv2 8→4 3×3 (output) 1×4×12×12.
    /// </summary>
    public static TestNet ClipSliceOpset9(int seed = 11)
    {
        var b = new TestModelBuilder(opset: 9, seed);
        var x = b.Input(ImageInput, ImageShape);
        var c = b.Conv("conv1", x, 3, 8);
        var clipped = b.Node("Clip", "clip", [c], TestModelBuilder.Float("min", 0f), TestModelBuilder.Float("max", 6f));
        var sliced = b.Node("Slice", "slice", [clipped],
            TestModelBuilder.Ints("starts", 2, 2), TestModelBuilder.Ints("ends", 14, 14), TestModelBuilder.Ints("axes", 2, 3));
        b.Conv("conv2", sliced, 8, 4);
        b.Output("conv2", 1, 4, 12, 12);
        return new TestNet(b.Build(), ImageInput, ImageShape, b.ConvNodes);
    }

    /// <summary>
    /// conv1 3→8 3×3 → Softmax over the channel axis (axis 1 of 4) → conv2 8→4 3×3 (output), at opset 11.
    /// Before opset 13 Softmax flattens at its axis, from 13 it normalises one axis; they differ for
    /// axis 1 of a 4-D tensor, so the upgrade to 13 spells the old meaning out (Flatten → Softmax → Reshape).
    /// <paramref name="opType"/> may also be LogSoftmax or Hardmax, which changed alike.
    /// </summary>
    public static TestNet SoftmaxOverChannelsOpset11(int seed = 13, string opType = "Softmax")
    {
        var b = new TestModelBuilder(opset: 11, seed);
        var x = b.Input(ImageInput, ImageShape);
        var softmax = b.Node(opType, "softmax", [b.Conv("conv1", x, 3, 8)], TestModelBuilder.Int("axis", 1));
        b.Conv("conv2", softmax, 8, 4);
        b.Output("conv2", 1, 4, 16, 16);
        return new TestNet(b.Build(), ImageInput, ImageShape, b.ConvNodes);
    }

    /// <summary>
    /// conv1 3→8 3×3 → Dropout (ratio 0.3 as an attribute, opset &lt; 12) → conv2 8→4 3×3 (output), at
    /// <paramref name="opset"/>. With <paramref name="readMask"/> the mask is a graph output too.
    /// </summary>
    public static TestNet DropoutNet(long opset, bool readMask = false, int seed = 29)
    {
        var b = new TestModelBuilder(opset, seed);
        var x = b.Input(ImageInput, ImageShape);
        var c = b.Conv("conv1", x, 3, 8);
        b.MultiOutputNode("Dropout", "dropout", [c], readMask ? ["dropout", "dropout_mask"] : ["dropout"], TestModelBuilder.Float("ratio", 0.3f));
        b.Conv("conv2", "dropout", 8, 4);
        b.Output("conv2", 1, 4, 16, 16);
        var model = b.Build();
        if (readMask)
        {
            model.Graph.Output.Add(new ValueInfoProto { Name = "dropout_mask" });
        }

        return new TestNet(model, ImageInput, ImageShape, b.ConvNodes);
    }

    /// <summary>
    /// conv1 3→8 3×3 → BatchNormalization at opset 8 with <c>spatial</c> (dropped at 9) → conv2 8→4 3×3
    /// (output). spatial=0 keeps statistics per activation, shaped [8, 16, 16].
    /// </summary>
    public static TestNet BatchNormSpatialOpset8(long spatial, int seed = 31)
    {
        var b = new TestModelBuilder(opset: 8, seed);
        var x = b.Input(ImageInput, ImageShape);
        var c = b.Conv("conv1", x, 3, 8);
        long[] dims = spatial == 0 ? [8, 16, 16] : [8];
        int count = (int)dims.Aggregate(1L, (a, d) => a * d);
        var random = new Random(seed);
        float[] Values(float low, float high) => [.. Enumerable.Range(0, count).Select(_ => low + ((high - low) * (float)random.NextDouble()))];
        var bn = b.Node("BatchNormalization", "bn",
            [c, b.Constant("bn.scale", dims, Values(0.6f, 1.4f)), b.Constant("bn.bias", dims, Values(-0.2f, 0.2f)),
             b.Constant("bn.mean", dims, Values(-0.2f, 0.2f)), b.Constant("bn.var", dims, Values(0.5f, 1.5f))],
            TestModelBuilder.Float("epsilon", 1e-5f), TestModelBuilder.Int("spatial", spatial));
        b.Conv("conv2", bn, 8, 4);
        b.Output("conv2", 1, 4, 16, 16);
        return new TestNet(b.Build(), ImageInput, ImageShape, b.ConvNodes);
    }

    /// <summary>
    /// conv1 3→8 3×3 → Scatter (opset 9/10; ScatterElements from 11) of constant updates into channels 0
    /// and 5 along axis 1 → conv2 8→4 3×3 (output), at opset 10.
    /// </summary>
    public static TestNet ScatterOpset10(int seed = 37)
    {
        var b = new TestModelBuilder(opset: 10, seed);
        var x = b.Input(ImageInput, ImageShape);
        var c = b.Conv("conv1", x, 3, 8);
        long[] dims = [1, 2, 16, 16];
        var indices = b.ConstantInt64("scatter.indices", dims, [.. Enumerable.Range(0, 512).Select(i => i < 256 ? 0L : 5L)]);
        var updates = b.Constant("scatter.updates", dims, [.. Enumerable.Range(0, 512).Select(i => MathF.Sin(i * 0.1f))]);
        var scattered = b.Node("Scatter", "scatter", [c, indices, updates], TestModelBuilder.Int("axis", 1));
        b.Conv("conv2", scattered, 8, 4);
        b.Output("conv2", 1, 4, 16, 16);
        return new TestNet(b.Build(), ImageInput, ImageShape, b.ConvNodes);
    }

    /// <summary>
    /// Nearest Upsample ×2 at opset 9 whose scales are computed at run time, as paddle2onnx exports an
    /// interpolation to a size: input [1, 3, height, width] (dynamic) → conv1 3→8 3×3 = c →
    /// Upsample(c, Concat([1, 1], 2·hw / hw)) with hw = Cast(Shape(c))[2:4] → conv2 8→4 3×3 (output).
    /// </summary>
    public static TestNet UpsampleWithComputedScalesOpset9(int seed = 41)
    {
        var b = new TestModelBuilder(opset: 9, seed);
        var x = b.SymbolicInput(ImageInput, "1", "3", "height", "width");
        var c = b.Conv("conv1", x, 3, 8);
        var hw = b.Node("Slice", "hw", [b.Node("Cast", "shape_f", [b.Node("Shape", "shape", [c])], TestModelBuilder.Int("to", 1))],
            TestModelBuilder.Ints("starts", 2), TestModelBuilder.Ints("ends", 4), TestModelBuilder.Ints("axes", 0));
        var ratio = b.Node("Div", "ratio", [b.Node("Mul", "target", [hw, b.Constant("two", [], [2f])]), hw]);
        var scales = b.Concat("scales", 0, b.Constant("ones", [2], [1f, 1f]), ratio);
        var up = b.Node("Upsample", "resample", [c, scales], TestModelBuilder.String("mode", "nearest"));
        b.Conv("conv2", up, 8, 4);
        b.Output("conv2");
        return new TestNet(b.Build(), ImageInput, ImageShape, b.ConvNodes);
    }

    public const string TextLineInput = "x";

    /// <summary>A text-line image: batch and width are dynamic in the model; this is the shape of the held-out inputs.</summary>
    public static readonly long[] TextLineShape = [2, 3, 8, 28];

    /// <summary>
    /// A text recogniser as paddle2onnx exports it at <paramref name="opset"/> (9 or 11): dynamic batch and
    /// width (symbolic dims), node names <c>p2o.&lt;Op&gt;.&lt;n&gt;</c>, shapes computed at run time:
    /// <code>
    /// x [batch, 3, 8, width] → conv1 3→8 → Relu → conv2 8→16 → Clip[0, 6] (opset 9: attributes) = h [N, 16, 8, W]
    /// n = Shape(h)[0:1]  (opset 9: Slice with attributes; 11: Unsqueeze(Gather(Shape(h), 0)))
    /// tokens = Reshape(Transpose(h, [0,2,3,1]), Concat(n, [-1, 2, 8]))   [N, T=8W, 2, 8]: rank unknown to ORT's inference
    /// q = Transpose(tokens, [0,2,1,3]) [N,2,T,8]; k = Transpose(tokens, [0,2,3,1]) [N,2,8,T]
    /// attn = p2o.Softmax.0(MatMul(q, k) · 8^-½, axis 3) → MatMul(attn, q) → Transpose [0,2,1,3]
    ///   → Reshape(·, Shape(Transpose(h))) → Transpose [0,3,1,2] → + h → conv3 16→8 1×1 → Relu
    ///   → ReduceMean over H (axes attribute, keepdims 0) → Transpose [0,2,1] [N, W, 8]
    ///   → MatMul 8→10 + bias = "logits" → Softmax(axis 2) = "probs" (outputs)
    /// </code>
    /// Static shape inference loses the rank at the first Reshape, so neither Softmax's rank is known
    /// before a sample runs; both normalise their input's last axis.
    /// </summary>
    public static TestNet PaddleRecognizer(long opset, int seed = 23)
    {
        var b = new TestModelBuilder(opset, seed, name: "p2o_rec");
        static AttributeProto Perm(params long[] p) => TestModelBuilder.Ints("perm", p);
        var x = b.SymbolicInput(TextLineInput, "batch", "3", "8", "width");
        var h1 = b.Relu("p2o.Relu.0", b.Conv("p2o.Conv.0", x, 3, 8));
        var c2 = b.Conv("p2o.Conv.1", h1, 8, 16);
        var h = opset < 11
            ? b.Node("Clip", "p2o.Clip.0", [c2], TestModelBuilder.Float("min", 0f), TestModelBuilder.Float("max", 6f))
            : b.Node("Clip", "p2o.Clip.0", [c2, b.Constant("p2o.Clip.0.min", [], [0f]), b.Constant("p2o.Clip.0.max", [], [6f])]);
        var hT = b.Node("Transpose", "p2o.Transpose.0", [h], Perm(0, 2, 3, 1));
        var shape = b.Node("Shape", "p2o.Shape.0", [h]);
        var n = opset < 10
            ? b.Node("Slice", "p2o.Slice.0", [shape], TestModelBuilder.Ints("starts", 0), TestModelBuilder.Ints("ends", 1), TestModelBuilder.Ints("axes", 0))
            : b.Node("Unsqueeze", "p2o.Unsqueeze.0", [b.Node("Gather", "p2o.Gather.0", [shape, b.ConstantInt64("p2o.Gather.0.index", [], [0])], TestModelBuilder.Int("axis", 0))],
                TestModelBuilder.Ints("axes", 0));
        var tokenShape = b.Concat("p2o.Concat.0", 0, n, b.ConstantInt64("p2o.Concat.0.rest", [3], [-1, 2, 8]));
        var tokens = b.Node("Reshape", "p2o.Reshape.0", [hT, tokenShape]);
        var q = b.Node("Transpose", "p2o.Transpose.1", [tokens], Perm(0, 2, 1, 3));
        var k = b.Node("Transpose", "p2o.Transpose.2", [tokens], Perm(0, 2, 3, 1));
        var scores = b.Node("Mul", "p2o.Mul.0", [b.Node("MatMul", "p2o.MatMul.0", [q, k]), b.Constant("p2o.Mul.0.scale", [], [1f / MathF.Sqrt(8f)])]);
        var attention = b.Softmax("p2o.Softmax.0", scores, axis: 3);
        var context = b.Node("Transpose", "p2o.Transpose.3", [b.Node("MatMul", "p2o.MatMul.1", [attention, q])], Perm(0, 2, 1, 3));
        var back = b.Node("Reshape", "p2o.Reshape.1", [context, b.Node("Shape", "p2o.Shape.1", [hT])]);
        var mixed = b.Add("p2o.Add.0", b.Node("Transpose", "p2o.Transpose.4", [back], Perm(0, 3, 1, 2)), h);
        var c3 = b.Relu("p2o.Relu.1", b.Conv("p2o.Conv.2", mixed, 16, 8, kernel: 1));
        var pooled = b.Node("ReduceMean", "p2o.ReduceMean.0", [c3], TestModelBuilder.Ints("axes", 2), TestModelBuilder.Int("keepdims", 0));
        var sequence = b.Node("Transpose", "p2o.Transpose.5", [pooled], Perm(0, 2, 1));
        b.AddBias("logits", b.MatMul("p2o.MatMul.2", sequence, 8, 10), 10);
        b.Softmax("probs", "logits", axis: 2);
        b.Output("logits");
        b.Output("probs");
        return new TestNet(b.Build(), TextLineInput, TextLineShape, b.ConvNodes);
    }

    /// <summary>conv1 3→8 3×3 → depthwise 8→8 <paramref name="kernel"/>×<paramref name="kernel"/> (group 8) → Relu → conv2 8→4 1×1 (output).</summary>
    public static TestNet Depthwise(int kernel, int seed = 17)
    {
        var b = new TestModelBuilder(opset: 13, seed);
        var x = b.Input(ImageInput, ImageShape);
        var d = b.Relu("relu", b.Conv("dw", b.Conv("conv1", x, 3, 8), 8, 8, kernel, group: 8));
        b.Conv("conv2", d, 8, 4, kernel: 1);
        b.Output("conv2", 1, 4, 16, 16);
        return new TestNet(b.Build(), ImageInput, ImageShape, b.ConvNodes);
    }

    /// <summary>
    /// conv1 3→8 3×3 → <paramref name="opType"/> (Resize or, before opset 10, Upsample) of the spatial axes
    /// by <paramref name="factor"/> (the width by <paramref name="widthFactor"/> if given) with a scales input → conv2 8→4 3×3 (output).
    /// </summary>
    public static TestNet Resampling(long opset, string mode, float factor, string opType = "Resize", int seed = 19, float? widthFactor = null)
    {
        var b = new TestModelBuilder(opset, seed);
        var x = b.Input(ImageInput, ImageShape);
        var c = b.Conv("conv1", x, 3, 8);
        var scales = b.Constant("resample.scales", [4], [1f, 1f, factor, widthFactor ?? factor]);
        string[] inputs = opType == "Resize" && opset >= 11 ? [c, opset < 13 ? b.Constant("resample.roi", [0], []) : "", scales] : [c, scales];
        var resampled = b.Node(opType, "resample", inputs, TestModelBuilder.String("mode", mode));
        b.Conv("conv2", resampled, 8, 4);
        b.Output("conv2");
        return new TestNet(b.Build(), ImageInput, ImageShape, b.ConvNodes);
    }

    public static readonly long[] LargeImageShape = [1, 1, 256, 256];

    /// <summary>
    /// One 1×1 ConvTranspose on a 1×1×256×256 input ("deconv" is the output). ORT's CPU provider has
    /// no integer ConvTranspose, so quantizing it (with FastKernelsOnly off) only adds Q/DQ passes
    /// over 65,536 values: INT8 is reliably slower than FP32.
    /// </summary>
    public static TestNet ConvTransposeOnly()
    {
        var b = new TestModelBuilder(opset: 13, seed: 3, name: "deconv");
        var x = b.Input(ImageInput, LargeImageShape);
        var w = b.Constant("deconv.weight", [1, 1, 1, 1], [0.75f]);
        var bias = b.Constant("deconv.bias", [1], [0.05f]);
        b.Node("ConvTranspose", "deconv", [x, w, bias], TestModelBuilder.Ints("kernel_shape", 1, 1));
        b.Output("deconv", LargeImageShape);
        return new TestNet(b.Build(), ImageInput, LargeImageShape, []);
    }

    public const string VectorInput = "features";
    public static readonly long[] VectorShape = [8, 32];

    /// <summary>
    /// An MLP: Gemm fc1 32→64 (transB=1, bias) → Relu → MatMul fc2 64→32 (initializer weight) → Add
    /// (bias) → Relu → MatMul fc3 32→10 (no bias) → Softmax "probs" (output) 1×10. ORT's basic
    /// optimisation turns fc2's MatMul + Add into a Gemm; fc3 stays a MatMul.
    /// </summary>
    public static TestNet Mlp(int seed = 5)
    {
        var b = new TestModelBuilder(opset: 13, seed, name: "mlp");
        var x = b.Input(VectorInput, VectorShape);
        var h = b.Relu("relu", b.Gemm("fc1", x, 32, 64));
        var h2 = b.Relu("relu2", b.AddBias("fc2_bias", b.MatMul("fc2", h, 64, 32), 32));
        b.Softmax("probs", b.MatMul("fc3", h2, 32, 10));
        b.Output("probs", 1, 10);
        return new TestNet(b.Build(), VectorInput, VectorShape, b.ConvNodes);
    }
}
