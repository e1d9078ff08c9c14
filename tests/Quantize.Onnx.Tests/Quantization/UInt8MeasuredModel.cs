using Quantize.Onnx.Model;
using Quantize.Onnx.Model.Proto;
using Quantize.Onnx.Tests.TestModels;

namespace Quantize.Onnx.Tests.Quantization;

/// <summary>The float-input model <see cref="UInt8InputTests"/> compare with, rebuilt from the shipped uint8-input model.</summary>
internal static class UInt8MeasuredModel
{
    /// <summary>The model measured: the shipped one with a float input again, quantized on the grid its DequantizeLinear reads, or without the in-graph affine.</summary>
    public static string Rebuild(string shipped, string folder)
    {
        var model = ModelLoader.Load(shipped);
        var graph = model.Graph;
        var input = graph.Input.Single();
        input.Type.TensorType.ElemType = (int)TensorProto.Types.DataType.Float;
        if (graph.Node[0].OpType == "Cast")
        {
            var normalized = graph.Node[2].Output[0];
            for (int i = 0; i < 3; i++)
            {
                graph.Node.RemoveAt(0);
            }

            Rewire(graph, normalized, input.Name);
        }
        else
        {
            // Pads on the bytes pad the float input again (the value back on the grid), then QuantizeLinear on the grid.
            foreach (var pad in graph.Node.Where(n => n.OpType == "Pad" && n.Input[0] == input.Name).ToList())
            {
                var bytesOut = pad.Output[0];
                var grid = graph.Node.First(n => n.OpType == "DequantizeLinear" && n.Input[0] == bytesOut);
                pad.Input[0] = "float_input";
                pad.Output[0] = bytesOut + "_float";
                if (pad.Input.Count >= 3 && pad.Input[2].Length > 0)
                {
                    var level = graph.Initializer(pad.Input[2]).RawData[0];
                    var zeroPoint = graph.Initializer(grid.Input[2]).RawData[0];
                    var value = (level - zeroPoint) * TensorValues.ReadFloats(graph.Initializer(grid.Input[1]))[0];
                    graph.Initializer.Add(TensorValues.FromFloats(pad.Input[2] + "_float", [], [value]));
                    pad.Input[2] += "_float";
                }

                graph.Node.Insert(graph.Node.IndexOf(pad) + 1, new NodeProto { OpType = "QuantizeLinear", Name = pad.Name + "_q", Input = { pad.Output[0], grid.Input[1], grid.Input[2] }, Output = { bytesOut } });
            }

            // Undo the exact form: float readers read the input again, the bytes' readers read QuantizeLinear(input) on the bytes' grid.
            var dequantize = graph.Node.FirstOrDefault(n => n.OpType == "DequantizeLinear" && n.Input[0] == input.Name);
            var front = graph.Node.FirstOrDefault(n => n.OpType == "DequantizeLinear" && n.Input[0] == input.Name && n.Output[0] == input.Name + "_normalized");
            if (front is not null)
            {
                graph.Node.Remove(front);
            }

            Rewire(graph, input.Name, "bytes");
            if (graph.Node.Any(n => n.Input.Contains("bytes")))
            {
                graph.Node.Insert(0, new NodeProto { OpType = "QuantizeLinear", Name = "bytes_quantize", Input = { input.Name, dequantize!.Input[1], dequantize.Input[2] }, Output = { "bytes" } });
            }

            Rewire(graph, "float_input", input.Name);

            if (front is not null)
            {
                Rewire(graph, front.Output[0], input.Name);
            }
        }

        var path = Path.Combine(folder, "measured.onnx");
        ModelWriter.Save(model, path);
        return path;
    }

    private static void Rewire(GraphProto graph, string from, string to)
    {
        foreach (var node in graph.Node)
        {
            for (int i = 0; i < node.Input.Count; i++)
            {
                node.Input[i] = node.Input[i] == from ? to : node.Input[i];
            }
        }
    }
}
