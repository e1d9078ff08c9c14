using Quantize.Onnx.Model;
using Quantize.Onnx.Model.Proto;

namespace Quantize.Onnx.Quantization;

/// <summary>
/// Pads that carry a uint8 input's fixed grid (<see cref="UInt8Input.ExactGrid"/>): an edge, reflect or wrap Pad, or a
/// constant Pad whose value lies on the grid, moves bytes without changing them, so its output gets the input's grid in
/// the plan (<see cref="CarriedGrids"/>) and the shipped model runs it on the bytes (<see cref="Carry"/>). ORT's QDQ
/// transformers do not drop the Q/DQ around a Pad (it is not among their data-movement ops), so this is done here: the
/// shipped graph reads bytes → Pad (ORT's uint8 kernel) → the first QLinearConv, with no float op before it. Exact: every
/// value of the measured Pad's float input is a byte's DequantizeLinear on the grid, so QuantizeLinear of the padded
/// tensor is the padded bytes, the pad value becoming its QuantizeLinear on the same grid.
/// </summary>
internal static class UInt8Pads
{
    /// <summary>The fixed grids of the uint8 inputs and of the Pads (and Pads of Pads) that carry them.</summary>
    public static Dictionary<string, QuantParams> CarriedGrids(GraphProto graph, Dictionary<string, QuantParams> inputGrids)
    {
        var grids = new Dictionary<string, QuantParams>(inputGrids, StringComparer.Ordinal);
        var initializers = Initializers(graph);
        foreach (var node in graph.Node)
        {
            // Nodes are in topological order, so a Pad of a carried Pad's output is seen after it.
            if (node.OpType == "Pad" && grids.TryGetValue(node.Input[0], out var grid) && Carries(node, grid, initializers))
            {
                grids[node.Output[0]] = grid;
            }
        }

        return grids;
    }

    /// <summary>
    /// Rewrites the Pads reading the bytes <paramref name="tensor"/> (on <paramref name="grid"/>) whose output reaches a
    /// QuantizeLinear on the same grid only through such Pads: they run on uint8 and that QuantizeLinear goes. Returns the
    /// Pads that now read the bytes.
    /// </summary>
    public static List<NodeProto> Carry(GraphProto graph, NameAllocator names, string tensor, QuantParams grid)
    {
        var initializers = Initializers(graph);
        var carried = graph.Node.Where(n => n.OpType == "Pad" && n.Input[0] == tensor).ToList()
            .Where(pad => TryCarry(graph, names, initializers, pad, grid)).ToList();
        return carried;
    }

    private static bool TryCarry(GraphProto graph, NameAllocator names, Dictionary<string, TensorProto> initializers, NodeProto pad, QuantParams grid)
    {
        var output = pad.Output[0];
        if (!Carries(pad, grid, initializers) || graph.Output.Any(o => o.Name == output))
        {
            return false;
        }

        var readers = graph.Node.Where(n => n.Input.Contains(output)).ToList();
        if (readers is not [var reader])
        {
            return false;
        }

        if (reader.OpType == "QuantizeLinear" && UInt8FrontEnd.OnGrid(reader, initializers, grid))
        {
            // The Pad produces what the QuantizeLinear did, under its name.
            graph.Node.Remove(reader);
            pad.Output[0] = reader.Output[0];
        }
        else if (!(reader.OpType == "Pad" && reader.Input[0] == output && TryCarry(graph, names, initializers, reader, grid)))
        {
            return false;
        }

        RemoveValueInfo(graph, output);
        PadWithByte(graph, names, pad, grid, initializers);
        return true;
    }

    /// <summary>Whether <paramref name="pad"/> keeps values on <paramref name="grid"/>: not constant mode, or a constant on the grid.</summary>
    private static bool Carries(NodeProto pad, QuantParams grid, Dictionary<string, TensorProto> initializers)
    {
        // The attribute form (opset < 11) has no integer kernel; pads must be an input.
        if (pad.Input.Count < 2 || pad.Input[1].Length == 0)
        {
            return false;
        }

        if (pad.GetString("mode", "constant") != "constant")
        {
            return true;
        }

        if (ConstantValue(pad, initializers) is not { } value)
        {
            return false;
        }

        var level = (value / grid.Scale) + grid.ZeroPoint;
        var rounded = Math.Round(level);
        return Math.Abs(level - rounded) <= 1e-3 && rounded >= grid.QMin && rounded <= grid.QMax;
    }

    /// <summary>The constant Pad's value (0 when absent); null when it is not a float scalar initializer.</summary>
    private static float? ConstantValue(NodeProto pad, Dictionary<string, TensorProto> initializers)
    {
        if (pad.Input.Count < 3 || pad.Input[2].Length == 0)
        {
            return 0f;
        }

        return initializers.TryGetValue(pad.Input[2], out var tensor) && tensor.DataType == (int)TensorProto.Types.DataType.Float
            && TensorValues.ReadFloats(tensor) is [var value] ? value : null;
    }

    /// <summary>A constant Pad pads with the byte QuantizeLinear gives its value (the measured model's padded level); other modes take no value.</summary>
    private static void PadWithByte(GraphProto graph, NameAllocator names, NodeProto pad, QuantParams grid, Dictionary<string, TensorProto> initializers)
    {
        if (pad.GetString("mode", "constant") != "constant")
        {
            if (pad.Input.Count >= 3)
            {
                pad.Input[2] = "";
            }

            return;
        }

        var level = QuantMath.Quantize(ConstantValue(pad, initializers)!.Value, grid.Scale, grid.ZeroPoint, grid.QMin, grid.QMax);
        var name = names.Next(pad.Name + "_byte");
        graph.Initializer.Add(TensorValues.FromUInt8(name, [], [(byte)level]));
        if (pad.Input.Count >= 3)
        {
            pad.Input[2] = name;
        }
        else
        {
            pad.Input.Add(name);
        }
    }

    private static void RemoveValueInfo(GraphProto graph, string tensor)
    {
        for (var i = graph.ValueInfo.Count - 1; i >= 0; i--)
        {
            if (graph.ValueInfo[i].Name == tensor)
            {
                graph.ValueInfo.RemoveAt(i);
            }
        }
    }

    private static Dictionary<string, TensorProto> Initializers(GraphProto graph) => graph.Initializer.ToDictionary(t => t.Name, StringComparer.Ordinal);
}
