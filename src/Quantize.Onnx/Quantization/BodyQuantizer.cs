using Quantize.Onnx.Calibration;
using Quantize.Onnx.Model;
using Quantize.Onnx.Model.Proto;
using Quantize.Onnx.Preparation;

namespace Quantize.Onnx.Quantization;

/// <summary>
/// Quantization inside control-flow bodies (<see cref="ControlFlowBodies"/>: If branches, Loop/Scan bodies, at any depth), run
/// after the main graph is written: each body is planned and written like a graph of its own, with its calibrated
/// ranges, by the same <see cref="QdqPlanner"/>/<see cref="QdqWriter"/> (dynamic mode: the same
/// <see cref="DynamicMatMulPlanner"/>/<see cref="DynamicQuantizeWriter"/>). The body is seen with its outer-scope reads
/// resolved: initializers of the graphs around it (shared weights) as its initializers, other outer values as its
/// inputs (a QuantizeLinear at the start of the body, run per iteration in a loop). Every initializer the writer adds
/// (int8 weights, scales, zero points) is placed in the main graph, which every body sees, so a weight read by both
/// branches is stored where either can read it; names are allocated across the whole model. Float weights no graph
/// reads any more are then removed, wherever they were.
/// </summary>
internal static class BodyQuantizer
{
    /// <summary>Static mode: QDQ by the main graph's planner and writer, with the calibrated ranges.</summary>
    /// <returns>The body nodes that run quantized.</returns>
    public static List<NodeProto> Quantize(
        ModelProto quantized, TensorTypes types, IReadOnlyDictionary<string, TensorRange> ranges, QuantizationOptions options, bool perChannel) =>
        Rewrite(quantized, (view, names) =>
        {
            var plan = new QdqPlanner(view, types, ranges, options).Plan();
            return plan.QuantizedNodes.Count == 0 ? null : (new QdqWriter(view, plan, options, perChannel, quantized.DefaultOpset(), names).Write(), plan.QuantizedNodes);
        });

    /// <summary>Dynamic mode: MatMul/Gemm with constant weights as DynamicQuantizeMatMul, as in the main graph (<see cref="DynamicQuantizeWriter"/>).</summary>
    /// <returns>The body nodes that run quantized.</returns>
    public static List<NodeProto> QuantizeDynamic(ModelProto quantized, TensorTypes types, QuantizationOptions options, bool perChannel) =>
        Rewrite(quantized, (view, names) =>
        {
            var units = new DynamicMatMulPlanner(view, types, options).Plan();
            return units.Count == 0 ? null : (new DynamicQuantizeWriter(view, units, options, perChannel, names).Write(), units.Select(u => u.Node));
        });

    /// <summary>
    /// Rewrites each body with <paramref name="write"/>, which sees it with its outer reads resolved and returns the
    /// rewritten graph and the nodes it quantized, or null to leave the body as it is.
    /// </summary>
    private static List<NodeProto> Rewrite(ModelProto quantized, Func<GraphView, NameAllocator, (GraphProto Graph, IEnumerable<NodeProto> Nodes)?> write)
    {
        var result = new List<NodeProto>();
        var bodies = ControlFlowBodies.Of(quantized);
        if (bodies.Count == 0)
        {
            return result;
        }

        var main = quantized.Graph;
        var names = new NameAllocator(ControlFlowBodies.AllNames(main));
        var inMain = main.Initializer.Select(t => t.Name).ToHashSet(StringComparer.Ordinal);
        var outerWeights = new HashSet<string>(StringComparer.Ordinal);

        // Innermost first: a body's writer copies the bodies nested in it as they are, so they must be written already
        // (and the graphs around a body are still the ones its record holds).
        foreach (var body in Enumerable.Reverse(bodies))
        {
            var visible = ControlFlowBodies.VisibleInitializers(body, main, own: false);
            var scoped = body.Graph.Clone();
            var outer = new HashSet<string>(StringComparer.Ordinal);
            foreach (var read in ControlFlowBodies.OuterReads(body.Graph))
            {
                outer.Add(read);
                if (visible.TryGetValue(read, out var weight))
                {
                    scoped.Initializer.Add(weight);
                    outerWeights.Add(read);
                }
                else
                {
                    scoped.Input.Add(new ValueInfoProto { Name = read });
                }
            }

            if (write(new GraphView(scoped), names) is not var (written, nodes))
            {
                continue;
            }

            written.Input.Clear();
            written.Input.Add(body.Graph.Input);
            var own = body.Graph.Initializer.Select(t => t.Name).ToHashSet(StringComparer.Ordinal);
            foreach (var tensor in written.Initializer.Where(t => !own.Contains(t.Name)).ToList())
            {
                written.Initializer.Remove(tensor);
                if (!outer.Contains(tensor.Name) && inMain.Add(tensor.Name))
                {
                    main.Initializer.Add(tensor);
                }
            }

            body.Owner.Attribute.Single(a => a.Name == body.Attribute).G = written;
            result.AddRange(nodes);
        }

        RemoveUnread(quantized, outerWeights);
        return result;
    }

    /// <summary>Removes the initializers named in <paramref name="candidates"/> from every graph whose nodes (at any depth) no longer read them.</summary>
    internal static void RemoveUnread(ModelProto model, IReadOnlySet<string> candidates)
    {
        if (candidates.Count == 0)
        {
            return;
        }

        foreach (var graph in ControlFlowBodies.Of(model).Select(b => b.Graph).Prepend(model.Graph))
        {
            var read = ControlFlowBodies.AllNodes(graph).SelectMany(n => n.Input).Concat(graph.Output.Select(o => o.Name)).ToHashSet(StringComparer.Ordinal);
            foreach (var tensor in graph.Initializer.Where(t => candidates.Contains(t.Name) && !read.Contains(t.Name)).ToList())
            {
                graph.Initializer.Remove(tensor);
            }

            // A main-graph initializer may also be listed as an input (IR < 4); a body's inputs are fixed by its op.
            foreach (var input in graph == model.Graph ? graph.Input.Where(i => candidates.Contains(i.Name) && !read.Contains(i.Name)).ToList() : [])
            {
                graph.Input.Remove(input);
            }
        }
    }
}
