using Quantize.Onnx.Model.Proto;

namespace Quantize.Onnx.Model;

/// <summary>One branch of a main-graph If: the node, the attribute (then_branch/else_branch) and its graph.</summary>
internal sealed record IfBranch(NodeProto If, string Attribute, GraphProto Graph)
{
    public string Describe() => $"{Attribute} of If '{If.Name}'";
}

/// <summary>
/// The If branches the engine calibrates and quantizes: those of If nodes in the main graph (nested control flow and
/// Loop/Scan bodies stay float) whose tensor names are unique in the whole model. Calibration and the QDQ plan key
/// ranges by tensor name across all graphs, so a name defined twice (sibling branches may legally reuse one) would
/// mix two tensors' ranges: such an If stays float.
/// </summary>
internal static class IfBranches
{
    public static List<IfBranch> Of(ModelProto model)
    {
        var result = new List<IfBranch>();
        var ifs = model.Graph.Node.Where(n => n.OpType == "If" && n.Domain is "" or "ai.onnx").ToList();
        if (ifs.Count == 0)
        {
            return result;
        }

        // How often each name is defined anywhere in the model (graph inputs, initializers, node outputs).
        var defined = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var name in Definitions(model.Graph))
        {
            defined[name] = defined.GetValueOrDefault(name) + 1;
        }

        foreach (var node in ifs)
        {
            var branches = node.Attribute.Where(a => a.G is not null && a.Name is "then_branch" or "else_branch")
                .Select(a => new IfBranch(node, a.Name, a.G)).ToList();
            if (branches.Count == 2 && branches.All(b => Definitions(b.Graph).All(n => defined[n] == 1)))
            {
                result.AddRange(branches);
            }
        }

        return result;
    }

    /// <summary>Every node of <paramref name="graph"/> and of its subgraphs, at any depth.</summary>
    public static IEnumerable<NodeProto> AllNodes(GraphProto graph) =>
        graph.Node.SelectMany(n => n.HasSubgraph() ? Subgraphs(n).SelectMany(AllNodes).Prepend(n) : [n]);

    /// <summary>Every name used anywhere in the model (any graph, any depth): what new names must not collide with.</summary>
    public static IEnumerable<string> AllNames(GraphProto graph) =>
        Definitions(graph).Concat(graph.Output.Select(o => o.Name)).Concat(graph.Node.Select(n => n.Name))
            .Concat(graph.Node.SelectMany(n => n.Input))
            .Concat(graph.Node.SelectMany(Subgraphs).SelectMany(AllNames));

    /// <summary>Names read in <paramref name="graph"/> (any depth) that it does not define itself: its outer-scope reads.</summary>
    public static List<string> OuterReads(GraphProto graph)
    {
        var own = Definitions(graph).ToHashSet(StringComparer.Ordinal);
        return AllNodes(graph).SelectMany(n => n.Input).Where(i => i.Length > 0 && !own.Contains(i)).Distinct(StringComparer.Ordinal).ToList();
    }

    private static IEnumerable<GraphProto> Subgraphs(NodeProto node) =>
        node.Attribute.SelectMany(a => a.Graphs.Append(a.G)).OfType<GraphProto>();

    /// <summary>Each graph's own names once, so a name defined in two graphs (or twice in one) shows twice.</summary>
    private static IEnumerable<string> Definitions(GraphProto graph) =>
        graph.Input.Select(i => i.Name).Concat(graph.Initializer.Select(t => t.Name))
            .Concat(graph.Node.SelectMany(n => n.Output).Where(o => o.Length > 0))
            .Distinct(StringComparer.Ordinal)
            .Concat(graph.Node.SelectMany(Subgraphs).SelectMany(Definitions));
}
