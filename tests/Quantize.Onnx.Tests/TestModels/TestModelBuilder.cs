using Google.Protobuf;
using Quantize.Onnx.Model;
using Quantize.Onnx.Model.Proto;
using AttributeType = Quantize.Onnx.Model.Proto.AttributeProto.Types.AttributeType;
using DataType = Quantize.Onnx.Model.Proto.TensorProto.Types.DataType;

namespace Quantize.Onnx.Tests.TestModels;

/// <summary>
/// Builds small ONNX models in code, one node at a time, with seeded random weights. Weights use a
/// He-like scale (std = sqrt(2 / fan-in)) so activations keep roughly unit size through the layers.
/// Constants (weights, biases, BatchNorm parameters, Resize scales, Slice bounds) are initializers,
/// or — with <c>weightsAsConstantNodes</c> — <c>Constant</c> nodes, as paddle2onnx exports them.
/// </summary>
internal sealed class TestModelBuilder
{
    private readonly GraphProto _graph;
    private readonly Random _random;
    private readonly bool _constantNodes;

    public TestModelBuilder(long opset = 13, int seed = 1, bool weightsAsConstantNodes = false, string name = "test")
    {
        Opset = opset;
        _random = new Random(seed);
        _constantNodes = weightsAsConstantNodes;
        _graph = new GraphProto { Name = name };
    }

    public long Opset { get; }

    /// <summary>Names of the Conv nodes added so far.</summary>
    public List<string> ConvNodes { get; } = [];

    /// <summary>Adds a float graph input.</summary>
    public string Input(string name, params long[] dims)
    {
        _graph.Input.Add(FloatValueInfo(name, dims));
        return name;
    }

    /// <summary>Adds a float graph input with named (dynamic) dimensions: a number is a fixed size, anything else a symbolic one (e.g. "batch").</summary>
    public string SymbolicInput(string name, params string[] dims)
    {
        var shape = new TensorShapeProto();
        foreach (var d in dims)
        {
            shape.Dim.Add(long.TryParse(d, out long value)
                ? new TensorShapeProto.Types.Dimension { DimValue = value }
                : new TensorShapeProto.Types.Dimension { DimParam = d });
        }

        var tensor = new TypeProto.Types.Tensor { ElemType = (int)DataType.Float, Shape = shape };
        _graph.Input.Add(new ValueInfoProto { Name = name, Type = new TypeProto { TensorType = tensor } });
        return name;
    }

    /// <summary>Declares a float graph output (shape may be left out).</summary>
    public void Output(string name, params long[] dims) => _graph.Output.Add(FloatValueInfo(name, dims));

    /// <summary>A float constant, as an initializer or a Constant node.</summary>
    public string Constant(string name, long[] dims, float[] values) => AddConstant(TensorValues.FromFloats(name, dims, values));

    /// <summary>An int64 constant (Slice bounds, shapes), as an initializer or a Constant node.</summary>
    public string ConstantInt64(string name, long[] dims, long[] values) => AddConstant(TensorValues.FromInt64(name, dims, values));

    /// <summary>Any node; returns its (first) output, named after the node.</summary>
    public string Node(string opType, string name, string[] inputs, params AttributeProto[] attributes)
    {
        var node = new NodeProto { OpType = opType, Name = name, Output = { name } };
        node.Input.AddRange(inputs);
        node.Attribute.AddRange(attributes);
        _graph.Node.Add(node);
        return name;
    }

    /// <summary>A node with several outputs, named as given.</summary>
    public void MultiOutputNode(string opType, string name, string[] inputs, string[] outputs, params AttributeProto[] attributes)
    {
        var node = new NodeProto { OpType = opType, Name = name };
        node.Input.AddRange(inputs);
        node.Output.AddRange(outputs);
        node.Attribute.AddRange(attributes);
        _graph.Node.Add(node);
    }

    /// <summary>Conv with a square kernel, "same" padding for odd kernels, He-scaled weights and a small bias.</summary>
    public string Conv(string name, string x, int inChannels, int outChannels, int kernel = 3, int group = 1, int stride = 1, bool bias = true)
    {
        int fanIn = inChannels / group * kernel * kernel;
        var w = Constant(name + ".weight", [outChannels, inChannels / group, kernel, kernel], Normal(outChannels * fanIn, MathF.Sqrt(2f / fanIn)));
        var inputs = new List<string> { x, w };
        if (bias)
        {
            inputs.Add(Constant(name + ".bias", [outChannels], Uniform(outChannels, -0.1f, 0.1f)));
        }

        int pad = kernel / 2;
        ConvNodes.Add(name);
        return Node("Conv", name, [.. inputs],
            Ints("kernel_shape", kernel, kernel), Ints("pads", pad, pad, pad, pad), Ints("strides", stride, stride), Int("group", group));
    }

    /// <summary>BatchNormalization (inference form) with non-trivial statistics, so folding it changes the Conv.</summary>
    public string BatchNorm(string name, string x, int channels)
    {
        var scale = Constant(name + ".scale", [channels], Uniform(channels, 0.6f, 1.4f));
        var b = Constant(name + ".bias", [channels], Uniform(channels, -0.2f, 0.2f));
        var mean = Constant(name + ".mean", [channels], Uniform(channels, -0.2f, 0.2f));
        var variance = Constant(name + ".var", [channels], Uniform(channels, 0.5f, 1.5f));
        return Node("BatchNormalization", name, [x, scale, b, mean, variance], Float("epsilon", 1e-5f));
    }

    public string Relu(string name, string x) => Node("Relu", name, [x]);

    public string Add(string name, string a, string b) => Node("Add", name, [a, b]);

    public string Concat(string name, int axis, params string[] inputs) => Node("Concat", name, inputs, Int("axis", axis));

    public string MaxPool(string name, string x, int kernel, int stride) =>
        Node("MaxPool", name, [x], Ints("kernel_shape", kernel, kernel), Ints("strides", stride, stride));

    public string AveragePool(string name, string x, int kernel, int stride, int pad) =>
        Node("AveragePool", name, [x], Ints("kernel_shape", kernel, kernel), Ints("strides", stride, stride), Ints("pads", pad, pad, pad, pad));

    public string GlobalAveragePool(string name, string x) => Node("GlobalAveragePool", name, [x]);

    /// <summary>Nearest-neighbour Resize of the two spatial axes by <paramref name="factor"/>, given as a scales input.</summary>
    public string ResizeNearest(string name, string x, float factor)
    {
        // Opset 11/12 Resize needs a roi input (an empty tensor); from 13 it is optional.
        var roi = Opset < 13 ? Constant(name + ".roi", [0], []) : "";
        var scales = Constant(name + ".scales", [4], [1f, 1f, factor, factor]);
        return Node("Resize", name, [x, roi, scales], String("mode", "nearest"));
    }

    /// <summary>Gemm(x, W, b) with W stored [out, in] and transB=1, as PyTorch's Linear exports it.</summary>
    public string Gemm(string name, string x, int inFeatures, int outFeatures)
    {
        var w = Constant(name + ".weight", [outFeatures, inFeatures], Normal(outFeatures * inFeatures, MathF.Sqrt(2f / inFeatures)));
        var b = Constant(name + ".bias", [outFeatures], Uniform(outFeatures, -0.1f, 0.1f));
        return Node("Gemm", name, [x, w, b], Int("transB", 1));
    }

    /// <summary>MatMul(x, W) with W an initializer [in, out].</summary>
    public string MatMul(string name, string x, int inFeatures, int outFeatures)
    {
        var w = Constant(name + ".weight", [inFeatures, outFeatures], Normal(inFeatures * outFeatures, MathF.Sqrt(2f / inFeatures)));
        return Node("MatMul", name, [x, w]);
    }

    /// <summary>Add of a constant bias vector.</summary>
    public string AddBias(string name, string x, int features) =>
        Add(name, x, Constant(name + ".bias", [features], Uniform(features, -0.1f, 0.1f)));

    public string Softmax(string name, string x, int axis = -1) => Node("Softmax", name, [x], Int("axis", axis));

    public ModelProto Build(long irVersion = 7)
    {
        var model = new ModelProto
        {
            IrVersion = irVersion,
            ProducerName = "Quantize.Onnx.Tests",
            ProducerVersion = "1",
            Graph = _graph.Clone(),
        };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = Opset });
        return model;
    }

    public static AttributeProto Int(string name, long value) => new() { Name = name, Type = AttributeType.Int, I = value };

    public static AttributeProto Float(string name, float value) => new() { Name = name, Type = AttributeType.Float, F = value };

    public static AttributeProto String(string name, string value) =>
        new() { Name = name, Type = AttributeType.String, S = ByteString.CopyFromUtf8(value) };

    public static AttributeProto Ints(string name, params long[] values)
    {
        var attribute = new AttributeProto { Name = name, Type = AttributeType.Ints };
        attribute.Ints.AddRange(values);
        return attribute;
    }

    /// <summary>
    /// A float tensor value of fixed <paramref name="dims"/>: the tests' one builder of graph inputs and outputs. With no
    /// dims it carries no shape at all (rank unknown, as the control-flow bodies want), not the rank-0 shape of a scalar.
    /// </summary>
    public static ValueInfoProto FloatValueInfo(string name, params long[] dims)
    {
        var tensor = new TypeProto.Types.Tensor { ElemType = (int)DataType.Float };
        if (dims.Length > 0)
        {
            tensor.Shape = new TensorShapeProto();
            foreach (long d in dims)
            {
                tensor.Shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = d });
            }
        }

        return new ValueInfoProto { Name = name, Type = new TypeProto { TensorType = tensor } };
    }

    private string AddConstant(TensorProto tensor)
    {
        if (_constantNodes)
        {
            var value = new AttributeProto { Name = "value", Type = AttributeType.Tensor, T = tensor };
            _graph.Node.Add(new NodeProto { OpType = "Constant", Name = tensor.Name + ".const", Output = { tensor.Name }, Attribute = { value } });
        }
        else
        {
            _graph.Initializer.Add(tensor);
        }

        return tensor.Name;
    }

    private float[] Normal(int count, float std)
    {
        var values = new float[count];
        for (int i = 0; i < count; i++)
        {
            // Box-Muller.
            double u1 = 1.0 - _random.NextDouble();
            double u2 = _random.NextDouble();
            values[i] = (float)(std * Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2));
        }

        return values;
    }

    private float[] Uniform(int count, float low, float high)
    {
        var values = new float[count];
        for (int i = 0; i < count; i++)
        {
            values[i] = low + ((high - low) * (float)_random.NextDouble());
        }

        return values;
    }
}
