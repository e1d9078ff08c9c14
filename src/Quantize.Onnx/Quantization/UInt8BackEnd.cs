using System.Globalization;
using Quantize.Onnx.Model;
using Quantize.Onnx.Model.Proto;

namespace Quantize.Onnx.Quantization;

/// <summary>
/// The model that ships with uint8 outputs (<see cref="QuantizationOptions.UInt8Outputs"/>), made from the one that was
/// measured: each graph output there is DequantizeLinear(QuantizeLinear(y)); the shipped model drops that
/// DequantizeLinear, so the output (same name) is the QuantizeLinear's uint8 tensor, and writes its grid into the
/// metadata (<see cref="ScaleKey"/>, <see cref="ZeroPointKey"/>). The app's (u − zero point) · scale is then what was
/// measured, bit for bit (ORT's DequantizeLinear computes exactly that in float32).
/// </summary>
/// <remarks>
/// An output with no QuantizeLinear before it (a float op produces it) is refused (QNT1532) rather than given a new
/// QuantizeLinear on its calibrated range: that rounding would ship without ever having been measured (the measured
/// model is the float one), and the app could not tell an output the gate saw from one it did not.
/// </remarks>
internal static class UInt8BackEnd
{
    public static string ScaleKey(string output) => $"quantize.output.{output}.scale";

    public static string ZeroPointKey(string output) => $"quantize.output.{output}.zero_point";

    public static (ModelProto Model, IReadOnlyDictionary<string, QuantParams> Grids) Ship(ModelProto measured, string modelPath)
    {
        var model = measured.Clone();
        var graph = model.Graph;
        var names = Names(graph);
        var initializers = graph.Initializer.ToDictionary(t => t.Name, StringComparer.Ordinal);
        var grids = new Dictionary<string, QuantParams>(StringComparer.Ordinal);
        foreach (var output in graph.Output)
        {
            var dequantize = graph.Node.FirstOrDefault(n => n.Output.Contains(output.Name));
            var quantize = dequantize is { OpType: "DequantizeLinear" } ? graph.Node.FirstOrDefault(n => n.Output.Contains(dequantize.Input[0])) : null;
            if (quantize is not { OpType: "QuantizeLinear" } || Grid(dequantize!, initializers) is not { } grid)
            {
                var producer = dequantize is null ? "a graph input or initializer" : $"'{dequantize.Name}' ({dequantize.OpType})";
                throw new QuantizeException(ErrorCodes.UInt8OutputNotQuantized, modelPath,
                    $"--uint8-outputs (QuantizeUInt8Outputs): model output '{output.Name}' is not produced by a uint8 QuantizeLinear → DequantizeLinear (its producer is {producer}, " +
                    "left float or not on a per-tensor uint8 grid), so there are no bytes to ship that were measured. Quantize without the option, or make the op producing it quantized.");
            }

            var bytes = dequantize!.Input[0];
            var floatReaders = graph.Node.Where(n => n.Input.Contains(output.Name)).ToList();
            if (floatReaders.Count > 0)
            {
                // A node that reads the output inside the graph keeps reading its float value.
                var kept = names.Next(output.Name + "_float");
                dequantize.Output[0] = kept;
                Rename(floatReaders, output.Name, kept);
            }
            else
            {
                graph.Node.Remove(dequantize);
            }

            quantize.Output[0] = output.Name;
            Rename(graph.Node, bytes, output.Name);
            output.Type.TensorType.ElemType = (int)TensorProto.Types.DataType.Uint8;
            grids[output.Name] = grid;
        }

        Describe(model, grids);
        return (model, grids);
    }

    /// <summary>The FP32 model that ships instead (gate failed under ship-fp32): each output quantized on the INT8 candidate's grid, so the app's contract holds.</summary>
    public static ModelProto QuantizeOutputs(ModelProto fp32, IReadOnlyDictionary<string, QuantParams> grids)
    {
        var model = fp32.Clone();
        var graph = model.Graph;
        var names = Names(graph);
        foreach (var output in graph.Output.Where(o => grids.ContainsKey(o.Name)))
        {
            var grid = grids[output.Name];
            var real = names.Next(output.Name + "_float");
            foreach (var node in graph.Node)
            {
                for (var i = 0; i < node.Output.Count; i++)
                {
                    node.Output[i] = node.Output[i] == output.Name ? real : node.Output[i];
                }
            }

            Rename(graph.Node, output.Name, real);
            var (scale, zeroPoint) = (names.Next(output.Name + "_bytes_scale"), names.Next(output.Name + "_bytes_zero_point"));
            graph.Initializer.Add(TensorValues.FromFloats(scale, [], [grid.Scale]));
            graph.Initializer.Add(TensorValues.FromUInt8(zeroPoint, [], [(byte)grid.ZeroPoint]));
            graph.Node.Add(new NodeProto { OpType = "QuantizeLinear", Name = names.Next(output.Name + "_bytes_quantize"), Input = { real, scale, zeroPoint }, Output = { output.Name } });
            output.Type.TensorType.ElemType = (int)TensorProto.Types.DataType.Uint8;
        }

        Describe(model, grids);
        return model;
    }

    /// <summary>A per-tensor uint8 grid read from a DequantizeLinear's constant scale and zero point; null otherwise.</summary>
    private static QuantParams? Grid(NodeProto dequantize, Dictionary<string, TensorProto> initializers) =>
        dequantize.Input.Count == 3
        && initializers.TryGetValue(dequantize.Input[1], out var scale) && TensorValues.ReadFloats(scale) is [var s]
        && initializers.TryGetValue(dequantize.Input[2], out var zeroPoint) && zeroPoint.DataType == (int)TensorProto.Types.DataType.Uint8
        && zeroPoint.RawData.Length == 1
            ? new QuantParams(s, zeroPoint.RawData[0], QuantType.UInt8)
            : null;

    private static void Describe(ModelProto model, IReadOnlyDictionary<string, QuantParams> grids)
    {
        foreach (var (name, grid) in grids.OrderBy(g => g.Key, StringComparer.Ordinal))
        {
            model.MetadataProps.Add(new StringStringEntryProto { Key = ScaleKey(name), Value = grid.Scale.ToString("R", CultureInfo.InvariantCulture) });
            model.MetadataProps.Add(new StringStringEntryProto { Key = ZeroPointKey(name), Value = grid.ZeroPoint.ToString(CultureInfo.InvariantCulture) });
        }
    }

    private static NameAllocator Names(GraphProto graph) => new(graph.Node.SelectMany(n => n.Output.Concat(n.Input).Append(n.Name))
        .Concat(graph.Initializer.Select(t => t.Name)).Concat(graph.Input.Select(i => i.Name)).Concat(graph.Output.Select(o => o.Name)));

    private static void Rename(IEnumerable<NodeProto> nodes, string from, string to)
    {
        foreach (var node in nodes)
        {
            for (var i = 0; i < node.Input.Count; i++)
            {
                if (node.Input[i] == from)
                {
                    node.Input[i] = to;
                }
            }
        }
    }
}
