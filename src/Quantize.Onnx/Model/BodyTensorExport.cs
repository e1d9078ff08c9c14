using Quantize.Onnx.Model.Proto;

namespace Quantize.Onnx.Model;

/// <summary>
/// Makes whole tensors of control-flow bodies readable as main-graph outputs, for the passes that need the values
/// themselves (histogram calibration, the per-layer analysis; MinMax reduces inside the body instead, <c>BodyRangeOutputs</c>).
/// <list type="bullet">
/// <item>Out of an If branch: the branch returns the tensor as an extra output (through an Identity: it may already be an
/// output of its branch), the other branch an empty float tensor, and the If passes it on. A sample whose condition
/// skips the branch yields no values, so only the samples that take a branch shape what is measured there.</item>
/// <item>Out of a Loop/Scan body: as an extra scan output, which the node stacks over the iterations that ran (zero
/// iterations: no values). ONNX Runtime refuses scan outputs whose shape changes between iterations, so only tensors
/// whose shape is fully known (<c>staticShape</c>) leave a loop.</item>
/// </list>
/// A body nested in a Loop/Scan body is not exported: its values would be stacked twice, a branch's with an empty tensor
/// in the iterations that skip it. Such tensors keep what the MinMax pass sees.
/// </summary>
internal static class BodyTensorExport
{
    /// <summary>The bodies whose own node outputs can be exported: those with no Loop/Scan body around them.</summary>
    public static List<Body> Exportable(ModelProto model) => [.. ControlFlowBodies.Of(model).Where(b => b.Ancestors().All(a => a.IsBranch))];

    /// <summary>The tensors (node outputs) of <see cref="Exportable"/> bodies, a Loop/Scan body's only with a static shape.</summary>
    public static IEnumerable<string> Tensors(ModelProto model, Func<string, bool> staticShape) =>
        Exportable(model).SelectMany(b => b.Graph.Node.SelectMany(n => n.Output).Where(o => o.Length > 0 && (b.IsBranch || staticShape(o))));

    /// <summary>
    /// A copy of <paramref name="model"/> whose graph outputs are <paramref name="tensors"/> (float, of the main graph or
    /// of an exportable body; a Loop/Scan body's with a static shape, as <see cref="Tensors"/> picks them), and the
    /// output each is read from. Tensors it cannot reach are left out of the map.
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
            if (b.IsBranch)
            {
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
            }
            else
            {
                ScanOutputs.NameTrailing(b.Owner, b.Graph, names);
                ScanOutputs.ExtendScanAttributes(b.Owner, 1);
            }

            b.Graph.Output.Add(Float(exported));
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
