using Quantize.Onnx.Model.Proto;

namespace Quantize.Onnx.Quantization;

/// <summary>The graph surgery every weight-rewriting writer shares: swap nodes for their rewrites, then drop the float weights nothing reads any more.</summary>
internal static class UnitRewriter
{
    /// <summary>
    /// A copy of <paramref name="graph"/> where each unit's node is replaced by <paramref name="rewrite"/>(unit) and
    /// the bias Adds the units absorbed are gone; then <paramref name="added"/> (filled by the rewrites) joins the
    /// initializers and unread initializers are dropped.
    /// </summary>
    public static GraphProto Rewrite(GraphProto graph, IReadOnlyList<DynamicMatMul> units, Func<DynamicMatMul, IEnumerable<NodeProto>> rewrite, List<TensorProto> added)
    {
        var byNode = new Dictionary<NodeProto, DynamicMatMul>(ReferenceEqualityComparer.Instance);
        var absorbed = new HashSet<NodeProto>(ReferenceEqualityComparer.Instance);
        foreach (var unit in units)
        {
            byNode[unit.Node] = unit;
            if (unit.BiasAdd is { } add)
            {
                absorbed.Add(add);
            }
        }

        var result = graph.Clone();
        result.Node.Clear();
        foreach (var node in graph.Node)
        {
            if (absorbed.Contains(node))
            {
                continue;
            }

            result.Node.Add(byNode.TryGetValue(node, out var unit) ? rewrite(unit) : [node.Clone()]);
        }

        result.Initializer.Add(added);
        DropUnread(result);
        return result;
    }

    /// <summary>
    /// Removes the initializers (of <paramref name="only"/>, when given) that no node reads and no output names,
    /// with their graph inputs. Subgraphs of If/Loop/Scan may read outer-scope tensors by name: what they mention stays.
    /// </summary>
    public static void DropUnread(GraphProto graph, IReadOnlySet<string>? only = null)
    {
        var used = InputsOf(graph).Concat(graph.Output.Select(o => o.Name)).ToHashSet(StringComparer.Ordinal);
        foreach (var unused in graph.Initializer.Where(t => (only is null || only.Contains(t.Name)) && !used.Contains(t.Name)).ToList())
        {
            graph.Initializer.Remove(unused);
            if (graph.Input.FirstOrDefault(i => i.Name == unused.Name) is { } input)
            {
                graph.Input.Remove(input);
            }
        }
    }

    /// <summary>Every tensor name a node of <paramref name="graph"/> or of its subgraphs reads.</summary>
    public static IEnumerable<string> InputsOf(GraphProto graph) =>
        graph.Node.SelectMany(n => n.Input.Concat(n.Attribute.SelectMany(a => a.Graphs.Append(a.G).OfType<GraphProto>()).SelectMany(InputsOf)));
}
