using Quantize.Onnx.Model;
using Quantize.Onnx.Model.Proto;
using Quantize.Onnx.Preparation;

namespace Quantize.Onnx.Calibration;

/// <summary>
/// MinMax calibration of If branches. A body's values leave it only through its outputs, so each float tensor of a
/// branch gets a ReduceMin/ReduceMax inside the branch, and the scalars become extra outputs of the branch, of the If
/// and of the main graph. Both branches must declare the same outputs: the branch that lacks a tensor returns the
/// constants +inf/−inf for it, which a running min/max ignores, so each tensor's range comes only from the samples
/// whose condition took its branch, and a branch no sample takes keeps an empty (infinite) range.
/// </summary>
/// <remarks>
/// Why not flatten the branches into the main graph for calibration: both branches would then run on every sample,
/// and the untaken one would see inputs it is never given in use (and may fail on them: shapes that only the taken
/// branch expects). Reducing inside the branch keeps the model's own control flow and memory that of one inference.
/// </remarks>
internal static class BranchRangeOutputs
{
    public static List<RangeOutputs> Add(ModelProto augmented, NameAllocator names, TensorTypes types)
    {
        var outputs = new List<RangeOutputs>();
        foreach (var group in IfBranches.Of(augmented).GroupBy(b => b.If, ReferenceEqualityComparer.Instance))
        {
            var node = (NodeProto)group.Key!;
            var branches = group.ToList();
            var tensors = branches.SelectMany(b => FloatTensors(b.Graph, types)).ToList();
            foreach (var tensor in tensors)
            {
                var entry = new RangeOutputs(tensor, names.Next(tensor + "_ReduceMin"), names.Next(tensor + "_ReduceMax"));
                foreach (var branch in branches)
                {
                    var produced = branch.Graph.Node.Any(n => n.Output.Contains(tensor));
                    foreach (var (op, empty) in new[] { ("ReduceMin", float.PositiveInfinity), ("ReduceMax", float.NegativeInfinity) })
                    {
                        var inner = names.Next($"{tensor}_{op}_{branch.Attribute}");
                        branch.Graph.Node.Add(produced ? Reduce(op, tensor, inner, names) : Constant(inner, empty, names));
                        branch.Graph.Output.Add(ScalarFloat(inner));
                    }
                }

                node.Output.Add(entry.MinOutput);
                node.Output.Add(entry.MaxOutput);
                augmented.Graph.Output.Add(ScalarFloat(entry.MinOutput));
                augmented.Graph.Output.Add(ScalarFloat(entry.MaxOutput));
                outputs.Add(entry);
            }
        }

        return outputs;
    }

    /// <summary>The float tensors a branch computes (its own nodes; nested bodies stay float).</summary>
    public static IEnumerable<string> FloatTensors(GraphProto branch, TensorTypes types) =>
        branch.Node.SelectMany(n => n.Output).Where(o => o.Length > 0 && types.IsFloat32(o)).Distinct(StringComparer.Ordinal);

    private static NodeProto Reduce(string op, string tensor, string output, NameAllocator names)
    {
        var node = new NodeProto { OpType = op, Name = names.Next(output), Input = { tensor }, Output = { output } };
        node.SetInt("keepdims", 0);
        return node;
    }

    private static NodeProto Constant(string output, float value, NameAllocator names) => new()
    {
        OpType = "Constant",
        Name = names.Next(output),
        Output = { output },
        Attribute = { new AttributeProto { Name = "value", Type = AttributeProto.Types.AttributeType.Tensor, T = TensorValues.FromFloats(output, [], [value]) } },
    };

    private static ValueInfoProto ScalarFloat(string name) => new()
    {
        Name = name,
        Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Float, Shape = new TensorShapeProto() } },
    };
}
