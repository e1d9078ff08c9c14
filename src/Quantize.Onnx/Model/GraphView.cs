using Quantize.Onnx.Model.Proto;

namespace Quantize.Onnx.Model;

/// <summary>
/// Read-only index over one graph: who produces and who consumes each tensor, which tensors are
/// initializers, inputs and outputs. Build it again after editing the graph.
/// </summary>
internal sealed class GraphView
{
    private static readonly IReadOnlyList<(NodeProto Node, int Index)> NoConsumers = [];

    private readonly Dictionary<string, NodeProto> _producers = new(StringComparer.Ordinal);
    private readonly Dictionary<string, List<(NodeProto Node, int Index)>> _consumers = new(StringComparer.Ordinal);

    public GraphView(GraphProto graph)
    {
        Graph = graph;
        Initializers = graph.Initializer.ToDictionary(t => t.Name, StringComparer.Ordinal);
        Inputs = graph.Input.Select(i => i.Name).Where(n => !Initializers.ContainsKey(n)).ToHashSet(StringComparer.Ordinal);
        Outputs = graph.Output.Select(o => o.Name).ToHashSet(StringComparer.Ordinal);
        var subgraphReads = new HashSet<string>(StringComparer.Ordinal);
        foreach (var node in graph.Node)
        {
            if (node.HasSubgraph())
            {
                // Every name a subgraph mentions may be an outer-scope read (over-approximated: a name the subgraph defines itself is harmless here).
                subgraphReads.UnionWith(SubgraphInputs(node));
            }

            foreach (var output in node.Output.Where(o => o.Length > 0))
            {
                _producers[output] = node;
            }

            for (var i = 0; i < node.Input.Count; i++)
            {
                var input = node.Input[i];
                if (input.Length == 0)
                {
                    continue;
                }

                if (!_consumers.TryGetValue(input, out var list))
                {
                    _consumers[input] = list = [];
                }

                list.Add((node, i));
            }
        }

        SubgraphReads = subgraphReads;
    }

    private HashSet<string>? _keptNames;

    public GraphProto Graph { get; }

    public IReadOnlyDictionary<string, TensorProto> Initializers { get; }

    /// <summary>Graph inputs that are not initializers: the values a caller feeds.</summary>
    public IReadOnlySet<string> Inputs { get; }

    public IReadOnlySet<string> Outputs { get; }

    /// <summary>
    /// Tensors that must still exist, as float values under their names, after the graph is rewritten: graph outputs
    /// and tensors that If/Loop/Scan subgraphs read from the outer scope (by name, invisible as node inputs).
    /// </summary>
    public IReadOnlySet<string> KeptNames => _keptNames ??= Outputs.Union(SubgraphReads).ToHashSet(StringComparer.Ordinal);

    /// <summary>Names mentioned as node inputs inside this graph's subgraphs (any depth).</summary>
    public IReadOnlySet<string> SubgraphReads { get; private set; } = new HashSet<string>();

    public NodeProto? Producer(string tensor) => _producers.GetValueOrDefault(tensor);

    public IReadOnlyList<(NodeProto Node, int Index)> Consumers(string tensor) =>
        _consumers.TryGetValue(tensor, out var list) ? list : NoConsumers;

    public bool IsInitializer(string tensor) => Initializers.ContainsKey(tensor);

    private static IEnumerable<string> SubgraphInputs(NodeProto node) =>
        node.Attribute.SelectMany(a => a.Graphs.Append(a.G)).OfType<GraphProto>()
            .SelectMany(g => g.Node.SelectMany(n => n.HasSubgraph() ? n.Input.Concat(SubgraphInputs(n)) : n.Input))
            .Where(n => n.Length > 0);

    /// <summary>Every tensor name used anywhere in the graph, to make new names unique.</summary>
    public IEnumerable<string> AllNames() =>
        Initializers.Keys.Concat(Inputs).Concat(Outputs).Concat(_producers.Keys).Concat(_consumers.Keys)
            .Concat(Graph.Node.Select(n => n.Name));
}
