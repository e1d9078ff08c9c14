using Quantize.Onnx.Calibration;
using Quantize.Onnx.Model;
using Quantize.Onnx.Model.Proto;
using Quantize.Onnx.Preparation;

namespace Quantize.Onnx.Quantization;

/// <summary>
/// QDQ inside If branches (<see cref="IfBranches"/>), run after the main graph is written: each branch is planned and
/// written like a graph of its own, with its calibrated ranges, by the same <see cref="QdqPlanner"/>/<see cref="QdqWriter"/>.
/// The branch is seen with its outer-scope reads resolved: main-graph initializers it reads (shared weights) as its
/// initializers, other outer values as its inputs (a QuantizeLinear at the start of the branch). Every initializer the
/// writer adds (int8 weights, scales, zero points) is placed in the main graph, which both branches see, so a weight
/// read by both is stored where either can read it; names are allocated across the whole model. A float weight no
/// graph reads any more is then removed.
/// </summary>
internal static class BranchQuantizer
{
    /// <returns>The branch nodes that run quantized.</returns>
    public static List<NodeProto> Quantize(
        ModelProto quantized, TensorTypes types, IReadOnlyDictionary<string, TensorRange> ranges, QuantizationOptions options, bool perChannel)
    {
        var result = new List<NodeProto>();
        var branches = IfBranches.Of(quantized);
        if (branches.Count == 0)
        {
            return result;
        }

        var main = quantized.Graph;
        var names = new NameAllocator(IfBranches.AllNames(main));
        var mainInitializers = main.Initializer.ToDictionary(t => t.Name, StringComparer.Ordinal);
        var outerWeights = new HashSet<string>(StringComparer.Ordinal);
        foreach (var branch in branches)
        {
            var scoped = branch.Graph.Clone();
            foreach (var read in IfBranches.OuterReads(branch.Graph))
            {
                if (mainInitializers.TryGetValue(read, out var weight))
                {
                    scoped.Initializer.Add(weight);
                    outerWeights.Add(read);
                }
                else
                {
                    scoped.Input.Add(new ValueInfoProto { Name = read });
                }
            }

            var view = new GraphView(scoped);
            var plan = new QdqPlanner(view, types, ranges, options).Plan();
            if (plan.QuantizedNodes.Count == 0)
            {
                continue;
            }

            var written = new QdqWriter(view, plan, options, perChannel, names).Write();
            written.Input.Clear();
            written.Input.Add(branch.Graph.Input);
            var own = branch.Graph.Initializer.Select(t => t.Name).ToHashSet(StringComparer.Ordinal);
            foreach (var tensor in written.Initializer.Where(t => !own.Contains(t.Name)).ToList())
            {
                written.Initializer.Remove(tensor);
                if (!mainInitializers.ContainsKey(tensor.Name))
                {
                    main.Initializer.Add(tensor);
                }
            }

            branch.If.Attribute.Single(a => a.Name == branch.Attribute).G = written;
            result.AddRange(plan.QuantizedNodes);
        }

        RemoveUnread(main, outerWeights);
        return result;
    }

    private static void RemoveUnread(GraphProto main, HashSet<string> candidates)
    {
        var read = IfBranches.AllNodes(main).SelectMany(n => n.Input).Concat(main.Output.Select(o => o.Name)).ToHashSet(StringComparer.Ordinal);
        foreach (var tensor in main.Initializer.Where(t => candidates.Contains(t.Name) && !read.Contains(t.Name)).ToList())
        {
            main.Initializer.Remove(tensor);
        }

        foreach (var input in main.Input.Where(i => candidates.Contains(i.Name) && !read.Contains(i.Name)).ToList())
        {
            main.Input.Remove(input);
        }
    }
}
