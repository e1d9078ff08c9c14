using Quantize.Onnx.Model;
using Quantize.Onnx.Model.Proto;
using Quantize.Onnx.Preparation;

namespace Quantize.Onnx.Calibration;

/// <summary>
/// MinMax calibration of control-flow bodies (<see cref="ControlFlowBodies"/>). A body's values leave it only through
/// its outputs, so each float tensor of a body gets a ReduceMin/ReduceMax inside the body, and the scalars are carried
/// out level by level to the main graph's outputs:
/// <list type="bullet">
/// <item>an If passes them out as extra outputs of both branches and of the If: the branch that lacks a tensor returns
/// the constants +inf/−inf for it, which a running min/max ignores, so a range comes only from the samples whose
/// condition took its branch;</item>
/// <item>a Loop/Scan body passes them out as extra scan outputs (the op's signature fixes the order of a body's inputs
/// and outputs; scan outputs come last, so appended ones move nothing), which the node stacks over the iterations that
/// ran; outside the node they are reduced to a scalar together with +inf/−inf, so zero iterations leave the range empty.</item>
/// </list>
/// A body no sample runs keeps an empty (infinite) range (<see cref="UntakenBodies"/>).
/// </summary>
/// <remarks>
/// Why not flatten the bodies into the main graph for calibration: an untaken branch would run on every sample, on
/// inputs it is never given in use, and a loop body's values depend on the iteration. Reducing inside the body keeps
/// the model's own control flow, the iterations that really run, and memory that of one inference.
/// </remarks>
internal static class BodyRangeOutputs
{
    public static List<RangeOutputs> Add(ModelProto augmented, NameAllocator names, TensorTypes types)
    {
        var outputs = new Threading(ControlFlowBodies.ByOwner(augmented), names, types).Through(augmented.Graph);
        foreach (var entry in outputs)
        {
            augmented.Graph.Output.Add(ScalarFloat(entry.MinOutput));
            augmented.Graph.Output.Add(ScalarFloat(entry.MaxOutput));
        }

        return outputs;
    }

    /// <summary>The float tensors a body computes or is given per run (its inputs: loop-carried values, scan slices); nested bodies have their own.</summary>
    public static IEnumerable<string> FloatTensors(GraphProto body, TensorTypes types) =>
        body.Input.Select(i => i.Name).Concat(body.Node.SelectMany(n => n.Output))
            .Where(o => o.Length > 0 && types.IsFloat32(o)).Distinct(StringComparer.Ordinal);

    private static ValueInfoProto ScalarFloat(string name) => new()
    {
        Name = name,
        Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Float, Shape = new TensorShapeProto() } },
    };

    private sealed class Threading(Dictionary<NodeProto, List<Body>> bodies, NameAllocator names, TensorTypes types)
    {
        /// <summary>The ranges of the tensors of the bodies of <paramref name="graph"/>'s nodes (any depth), as scalars defined in <paramref name="graph"/>.</summary>
        public List<RangeOutputs> Through(GraphProto graph)
        {
            var result = new List<RangeOutputs>();
            foreach (var node in graph.Node.ToList())
            {
                if (bodies.TryGetValue(node, out var owned))
                {
                    result.AddRange(node.OpType == "If" ? ThroughIf(node, owned) : ThroughLoop(graph, node, owned[0]));
                }
            }

            return result;
        }

        /// <summary>One run's scalars inside <paramref name="body"/>: its own float tensors reduced, and what its nested bodies pass out.</summary>
        private List<RangeOutputs> Inside(Body body)
        {
            var own = FloatTensors(body.Graph, types).ToList();
            var nested = Through(body.Graph);
            var result = new List<RangeOutputs>();
            foreach (var tensor in own)
            {
                var entry = new RangeOutputs(tensor, names.Next($"{tensor}_ReduceMin_{body.Attribute}"), names.Next($"{tensor}_ReduceMax_{body.Attribute}"));
                body.Graph.Node.Add(Reduce("ReduceMin", tensor, entry.MinOutput));
                body.Graph.Node.Add(Reduce("ReduceMax", tensor, entry.MaxOutput));
                result.Add(entry);
            }

            return [.. result, .. nested];
        }

        private List<RangeOutputs> ThroughIf(NodeProto node, List<Body> branches)
        {
            var inside = branches.Select(b => Inside(b).ToDictionary(e => e.Tensor, StringComparer.Ordinal)).ToList();
            var result = new List<RangeOutputs>();
            foreach (var tensor in inside.SelectMany(d => d.Keys).Distinct(StringComparer.Ordinal).ToList())
            {
                var entry = new RangeOutputs(tensor, names.Next(tensor + "_ReduceMin"), names.Next(tensor + "_ReduceMax"));
                for (var b = 0; b < branches.Count; b++)
                {
                    var graph = branches[b].Graph;
                    if (!inside[b].TryGetValue(tensor, out var scalars))
                    {
                        scalars = new RangeOutputs(tensor, Constant(graph, tensor, float.PositiveInfinity, []), Constant(graph, tensor, float.NegativeInfinity, []));
                    }

                    graph.Output.Add(ScalarFloat(scalars.MinOutput));
                    graph.Output.Add(ScalarFloat(scalars.MaxOutput));
                }

                node.Output.Add(entry.MinOutput);
                node.Output.Add(entry.MaxOutput);
                result.Add(entry);
            }

            return result;
        }

        private List<RangeOutputs> ThroughLoop(GraphProto graph, NodeProto node, Body body)
        {
            var inside = Inside(body);

            // Outputs left off the end of the node would shift the appended ones: name them.
            ScanOutputs.NameTrailing(node, body.Graph, names);

            var result = new List<RangeOutputs>();
            foreach (var scalars in inside)
            {
                var entry = new RangeOutputs(scalars.Tensor, names.Next(scalars.Tensor + "_ReduceMin"), names.Next(scalars.Tensor + "_ReduceMax"));
                foreach (var (op, scalar, output, empty) in new[]
                {
                    ("ReduceMin", scalars.MinOutput, entry.MinOutput, float.PositiveInfinity),
                    ("ReduceMax", scalars.MaxOutput, entry.MaxOutput, float.NegativeInfinity),
                })
                {
                    body.Graph.Output.Add(ScalarFloat(scalar));
                    var stacked = names.Next(scalar + "_iterations");
                    node.Output.Add(stacked);
                    var withEmpty = names.Next(stacked + "_or_empty");
                    graph.Node.Add(new NodeProto
                    {
                        OpType = "Concat",
                        Name = names.Next(withEmpty),
                        Input = { Constant(graph, scalars.Tensor, empty, [1]), stacked },
                        Output = { withEmpty },
                        Attribute = { new AttributeProto { Name = "axis", Type = AttributeProto.Types.AttributeType.Int, I = 0 } },
                    });
                    graph.Node.Add(Reduce(op, withEmpty, output));
                }

                ScanOutputs.ExtendScanAttributes(node, 2);
                result.Add(entry);
            }

            return result;
        }

        private NodeProto Reduce(string op, string tensor, string output)
        {
            var node = new NodeProto { OpType = op, Name = names.Next(output), Input = { tensor }, Output = { output } };
            node.SetInt("keepdims", 0);
            return node;
        }

        /// <summary>A float constant node in <paramref name="graph"/>; returns its output.</summary>
        private string Constant(GraphProto graph, string tensor, float value, long[] dims)
        {
            var output = names.Next($"{tensor}_{(value > 0 ? "no_min" : "no_max")}");
            graph.Node.Add(new NodeProto
            {
                OpType = "Constant",
                Name = names.Next(output),
                Output = { output },
                Attribute = { new AttributeProto { Name = "value", Type = AttributeProto.Types.AttributeType.Tensor, T = TensorValues.FromFloats(output, dims, [value]) } },
            });
            return output;
        }
    }
}
