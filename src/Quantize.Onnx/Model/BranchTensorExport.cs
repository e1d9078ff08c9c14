using Quantize.Onnx.Model.Proto;

namespace Quantize.Onnx.Model;

/// <summary>
/// Makes whole tensors of If branches readable as main-graph outputs, for the passes that need the values themselves
/// (histogram calibration, the per-layer analysis; MinMax reduces inside the body instead, <c>BodyRangeOutputs</c>).
/// The branch that defines a tensor returns it as an extra output (through an Identity: the tensor may already be an
/// output of its branch), the other branch returns an empty float tensor, and the If passes it on, level by level out
/// of nested Ifs: a sample whose condition skips the branch yields no values, so only the samples that take a branch
/// shape what is measured there. Bodies of Loop/Scan (and branches inside them) are not exported: their values would
/// be stacked over iterations whose shapes may differ; they keep what the MinMax pass sees.
/// </summary>
internal static class BranchTensorExport
{
    /// <summary>The bodies whose own node outputs can be exported: If branches nested (if at all) in If branches only.</summary>
    public static List<Body> Exportable(ModelProto model) =>
        [.. ControlFlowBodies.Of(model).Where(b => b.IsBranch && b.Ancestors().All(a => a.IsBranch))];

    /// <summary>The tensors (node outputs) of <see cref="Exportable"/> bodies.</summary>
    public static IEnumerable<string> Tensors(ModelProto model) =>
        Exportable(model).SelectMany(b => b.Graph.Node.SelectMany(n => n.Output)).Where(o => o.Length > 0);

    /// <summary>
    /// A copy of <paramref name="model"/> whose graph outputs are <paramref name="tensors"/> (float, of the main graph
    /// or of an exportable branch), and the output each is read from. Tensors it cannot reach are left out of the map.
    /// </summary>
    public static (ModelProto Model, Dictionary<string, string> Outputs) WithOutputs(ModelProto model, IEnumerable<string> tensors)
    {
        var clone = model.Clone();
        clone.Graph.Output.Clear();
        var outputs = new Dictionary<string, string>(StringComparer.Ordinal);
        var mainNames = clone.Graph.Input.Select(i => i.Name).Concat(clone.Graph.Initializer.Select(t => t.Name))
            .Concat(clone.Graph.Node.SelectMany(n => n.Output)).ToHashSet(StringComparer.Ordinal);
        var bodies = Exportable(clone);
        var definedIn = new Dictionary<string, Body>(StringComparer.Ordinal);
        foreach (var body in bodies)
        {
            foreach (var output in body.Graph.Node.SelectMany(n => n.Output).Where(o => o.Length > 0))
            {
                definedIn.TryAdd(output, body);
            }
        }

        var names = definedIn.Count == 0 ? null : new NameAllocator(ControlFlowBodies.AllNames(clone.Graph));
        foreach (var tensor in tensors.Distinct(StringComparer.Ordinal))
        {
            if (mainNames.Contains(tensor))
            {
                outputs[tensor] = tensor;
            }
            else if (definedIn.TryGetValue(tensor, out var body))
            {
                outputs[tensor] = Route(tensor, body, bodies, names!);
            }
            else
            {
                continue;
            }

            clone.Graph.Output.Add(new ValueInfoProto { Name = outputs[tensor] });
        }

        return (clone, outputs);
    }

    /// <summary>Threads <paramref name="tensor"/> out of <paramref name="body"/> and the branches around it; returns its name in the main graph.</summary>
    private static string Route(string tensor, Body body, List<Body> bodies, NameAllocator names)
    {
        var current = tensor;
        for (Body? b = body; b is not null; b = b.Parent)
        {
            var exported = names.Next($"{tensor}_export");
            b.Graph.Node.Add(new NodeProto { OpType = "Identity", Name = names.Next(exported), Input = { current }, Output = { exported } });
            b.Graph.Output.Add(Float(exported));

            // The other branch of the same If returns nothing for it; both gain one output, in the same place.
            var sibling = bodies.Single(s => ReferenceEquals(s.Owner, b.Owner) && !ReferenceEquals(s, b));
            var empty = names.Next($"{tensor}_not_taken");
            sibling.Graph.Node.Add(new NodeProto
            {
                OpType = "Constant",
                Name = names.Next(empty),
                Output = { empty },
                Attribute = { new AttributeProto { Name = "value", Type = AttributeProto.Types.AttributeType.Tensor, T = TensorValues.FromFloats(empty, [0], []) } },
            });
            sibling.Graph.Output.Add(Float(empty));

            current = names.Next($"{tensor}_exported");
            b.Owner.Output.Add(current);
        }

        return current;
    }

    private static ValueInfoProto Float(string name) => new()
    {
        Name = name,
        Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Float } },
    };
}
