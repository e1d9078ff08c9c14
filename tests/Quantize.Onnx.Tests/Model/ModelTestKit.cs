using Google.Protobuf;
using Quantize.Onnx.Model;
using Quantize.Onnx.Model.Proto;
using Quantize.Onnx.Tests.TestModels;
using DataLocation = Quantize.Onnx.Model.Proto.TensorProto.Types.DataLocation;

namespace Quantize.Onnx.Tests.Model;

/// <summary>Small models built in code for the model I/O tests.</summary>
internal static class ModelTestKit
{
    public const int Size = 16;

    /// <summary>Y = MatMul(X, W) + C with X, W, C, Y all [16, 16] float; W an initializer, C a Constant node (1 KB each).</summary>
    public static ModelProto MatMulModel()
    {
        var graph = new GraphProto { Name = "matmul" };
        graph.Input.Add(TestModelBuilder.FloatValueInfo("X", Size, Size));
        graph.Output.Add(TestModelBuilder.FloatValueInfo("Y", Size, Size));
        graph.Initializer.Add(TensorValues.FromFloats("W", [Size, Size], Weights()));
        graph.Node.Add(new NodeProto
        {
            Name = "const_c",
            OpType = "Constant",
            Output = { "C" },
            Attribute =
            {
                new AttributeProto
                {
                    Name = "value",
                    Type = AttributeProto.Types.AttributeType.Tensor,
                    T = TensorValues.FromFloats("C", [Size, Size], ConstantValues()),
                },
            },
        });
        graph.Node.Add(new NodeProto { Name = "matmul", OpType = "MatMul", Input = { "X", "W" }, Output = { "XW" } });
        graph.Node.Add(new NodeProto { Name = "add", OpType = "Add", Input = { "XW", "C" }, Output = { "Y" } });
        var model = new ModelProto
        {
            IrVersion = 10,
            ProducerName = "Quantize.Onnx.Tests",
            Graph = graph,
        };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = 17 });
        model.MetadataProps.Add(new StringStringEntryProto { Key = "author", Value = "tests" });
        return model;
    }

    public static float[] Weights() => [.. Enumerable.Range(0, Size * Size).Select(i => ((i * 7) % 13 - 6) / 8f)];

    public static float[] ConstantValues() => [.. Enumerable.Range(0, Size * Size).Select(i => (i % 5) * 0.25f)];

    /// <summary>What the MatMul model computes, in plain C#.</summary>
    public static float[] Expected(float[] x)
    {
        var w = Weights();
        var c = ConstantValues();
        var y = new float[Size * Size];
        for (int r = 0; r < Size; r++)
        {
            for (int col = 0; col < Size; col++)
            {
                float sum = 0;
                for (int k = 0; k < Size; k++)
                {
                    sum += x[(r * Size) + k] * w[(k * Size) + col];
                }

                y[(r * Size) + col] = sum + c[(r * Size) + col];
            }
        }

        return y;
    }

    /// <summary>Turns <paramref name="tensor"/> into a reference to external data.</summary>
    public static void MakeExternal(TensorProto tensor, string location, long? offset = null, long? length = null)
    {
        tensor.ClearRawData();
        tensor.ExternalData.Clear();
        tensor.ExternalData.Add(new StringStringEntryProto { Key = "location", Value = location });
        if (offset is long o)
        {
            tensor.ExternalData.Add(new StringStringEntryProto { Key = "offset", Value = o.ToString(System.Globalization.CultureInfo.InvariantCulture) });
        }

        if (length is long l)
        {
            tensor.ExternalData.Add(new StringStringEntryProto { Key = "length", Value = l.ToString(System.Globalization.CultureInfo.InvariantCulture) });
        }

        tensor.DataLocation = DataLocation.External;
    }

    public static byte[] WeightBytes() => TensorValues.FromFloats("W", [Size, Size], Weights()).RawData.ToByteArray();

    public static void WriteModel(ModelProto model, string path) => File.WriteAllBytes(path, model.ToByteArray());
}
