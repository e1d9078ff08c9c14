using Quantize.Onnx.Model.Proto;

namespace Quantize.Onnx.Model;

/// <summary>
/// A control-flow body the engine calibrates and quantizes: a branch of an If, or the body of a Loop or Scan (run once
/// per iteration), in the main graph or nested in another such body (<paramref name="Parent"/>).
/// </summary>
internal sealed record Body(NodeProto Owner, string Attribute, GraphProto Graph, Body? Parent)
{
    /// <summary>An If branch (runs at most once); else a Loop/Scan body (runs once per iteration, maybe never).</summary>
    public bool IsBranch => Owner.OpType == "If";

    public string Describe() => Parent is null ? Own : $"{Own} (inside {Parent.Describe()})";

    /// <summary>This body's enclosing bodies, innermost first.</summary>
    public IEnumerable<Body> Ancestors()
    {
        for (var b = Parent; b is not null; b = b.Parent)
        {
            yield return b;
        }
    }

    private string Own => IsBranch ? $"{Attribute} of If '{Owner.Name}'" : $"body of {Owner.OpType} '{Owner.Name}'";
}

/// <summary>
/// The bodies the engine calibrates and quantizes: the branches of If nodes and the bodies of Loop and Scan (opset 9+)
/// nodes of the main graph, and of such bodies at any depth, whose own tensor names are unique in the whole model.
/// Calibration and the QDQ plan key ranges by tensor name across all graphs, so a name defined twice (sibling branches
/// may legally reuse one) would mix two tensors' ranges: such a node keeps its bodies float, and so do the bodies
/// nested in them.
/// </summary>
internal static class ControlFlowBodies
{
    /// <summary>The bodies in pre-order: a body before the bodies nested in it.</summary>
    public static List<Body> Of(ModelProto model)
    {
        var result = new List<Body>();
        if (!model.Graph.Node.Any(n => n.HasSubgraph()))
        {
            return result;
        }

        // How often each name is defined anywhere in the model (graph inputs, initializers, node outputs).
        var defined = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var name in Definitions(model.Graph))
        {
            defined[name] = defined.GetValueOrDefault(name) + 1;
        }

        var scanOpset = model.DefaultOpset() >= 9;
        void Visit(GraphProto graph, Body? parent)
        {
            foreach (var node in graph.Node.Where(n => n.HasSubgraph() && n.Domain is "" or "ai.onnx"))
            {
                var bodies = (node.OpType switch
                {
                    "If" => node.Attribute.Where(a => a.G is not null && a.Name is "then_branch" or "else_branch"),
                    "Loop" => node.Attribute.Where(a => a.G is not null && a.Name == "body"),
                    "Scan" when scanOpset => node.Attribute.Where(a => a.G is not null && a.Name == "body"),
                    _ => [],
                }).Select(a => new Body(node, a.Name, a.G, parent)).ToList();
                if (bodies.Count == (node.OpType == "If" ? 2 : 1) && bodies.All(b => OwnDefinitions(b.Graph).All(n => defined[n] == 1)))
                {
                    foreach (var body in bodies)
                    {
                        result.Add(body);
                        Visit(body.Graph, body);
                    }
                }
            }
        }

        Visit(model.Graph, null);
        return result;
    }

    /// <summary>The bodies of <see cref="Of"/> by the node that owns them (an If's two branches, then and else).</summary>
    public static Dictionary<NodeProto, List<Body>> ByOwner(ModelProto model)
    {
        var owners = new Dictionary<NodeProto, List<Body>>(ReferenceEqualityComparer.Instance);
        foreach (var body in Of(model))
        {
            if (!owners.TryGetValue(body.Owner, out var list))
            {
                owners[body.Owner] = list = [];
            }

            list.Add(body);
        }

        return owners;
    }

    /// <summary>
    /// The initializers <paramref name="body"/> reads by name: its own (when <paramref name="own"/>), then those of the
    /// bodies around it, innermost first, and of the main graph.
    /// </summary>
    public static Dictionary<string, TensorProto> VisibleInitializers(Body body, GraphProto main, bool own)
    {
        var visible = new Dictionary<string, TensorProto>(StringComparer.Ordinal);
        var graphs = body.Ancestors().Select(b => b.Graph).Append(main);
        foreach (var tensor in (own ? graphs.Prepend(body.Graph) : graphs).SelectMany(g => g.Initializer))
        {
            visible.TryAdd(tensor.Name, tensor);
        }

        return visible;
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

    /// <summary>The graph-valued attributes of <paramref name="node"/>.</summary>
    public static IEnumerable<GraphProto> Subgraphs(NodeProto node) =>
        node.Attribute.SelectMany(a => a.Graphs.Append(a.G)).OfType<GraphProto>();

    /// <summary>The names <paramref name="graph"/> itself defines (inputs, initializers, node outputs), not its subgraphs.</summary>
    public static IEnumerable<string> OwnDefinitions(GraphProto graph) =>
        graph.Input.Select(i => i.Name).Concat(graph.Initializer.Select(t => t.Name))
            .Concat(graph.Node.SelectMany(n => n.Output).Where(o => o.Length > 0))
            .Distinct(StringComparer.Ordinal);

    /// <summary>Each graph's own names once, so a name defined in two graphs (or twice in one) shows twice.</summary>
    private static IEnumerable<string> Definitions(GraphProto graph) =>
        OwnDefinitions(graph).Concat(graph.Node.SelectMany(Subgraphs).SelectMany(Definitions));
}
