using System.Security.Cryptography;
using Quantize.Onnx.Model.Proto;

namespace Quantize.Onnx.Model;

/// <summary>
/// ORT's constant folding copies a weight that several subgraphs compute from one outer tensor into each of them
/// (torch exports slice the LSTM weights inside both branches of an If on the input's rank), and the int8 rewrites then
/// keep one copy per reader: Silero VAD v5 would carry each LSTM weight twice. Identical tensors that only control-flow
/// bodies read are stored once, in the main graph, which every body sees. Main-graph readers are left alone: ORT's
/// fusions may rewrite an initializer only its own node reads.
/// </summary>
internal static class SharedInitializers
{
    /// <summary>Smaller tensors (scales, zero points, shapes) are not worth a lookup.</summary>
    private const int MinBytes = 256;

    /// <returns>How many copies were removed.</returns>
    public static int Dedupe(ModelProto model)
    {
        var bodies = ControlFlowBodies.Of(model);
        if (bodies.Count == 0)
        {
            return 0;
        }

        var main = model.Graph;
        var graphs = bodies.Select(b => b.Graph).Prepend(main).ToList();
        var pinned = main.Node.SelectMany(n => n.Input).Concat(main.Input.Select(i => i.Name))
            .Concat(graphs.SelectMany(g => g.Output.Select(o => o.Name))).ToHashSet(StringComparer.Ordinal);
        var groups = new Dictionary<string, List<(GraphProto Graph, TensorProto Tensor)>>(StringComparer.Ordinal);
        foreach (var graph in graphs)
        {
            foreach (var tensor in graph.Initializer.Where(t => t.RawData.Length >= MinBytes && !ExternalDataScope.IsExternal(t) && !pinned.Contains(t.Name)))
            {
                var key = $"{tensor.DataType}:{string.Join(',', tensor.Dims)}:{Convert.ToHexString(SHA256.HashData(tensor.RawData.Span))}";
                if (!groups.TryGetValue(key, out var group))
                {
                    groups[key] = group = [];
                }

                group.Add((graph, tensor));
            }
        }

        var renames = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var group in groups.Values.Where(g => g.Count > 1))
        {
            var (holder, kept) = group[0];
            if (holder != main)
            {
                holder.Initializer.Remove(kept);
                main.Initializer.Add(kept);
            }

            foreach (var (graph, copy) in group.Skip(1).Where(c => c.Tensor.RawData.Span.SequenceEqual(kept.RawData.Span)))
            {
                graph.Initializer.Remove(copy);
                renames[copy.Name] = kept.Name;
            }
        }

        // Names of the bodies' own tensors are unique in the model (ControlFlowBodies), so every reader of a copy read it.
        foreach (var node in ControlFlowBodies.AllNodes(main))
        {
            for (var i = 0; i < node.Input.Count; i++)
            {
                if (renames.TryGetValue(node.Input[i], out var name))
                {
                    node.Input[i] = name;
                }
            }
        }

        return renames.Count;
    }
}
