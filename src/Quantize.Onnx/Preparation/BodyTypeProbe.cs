using Quantize.Onnx.Model;
using Quantize.Onnx.Model.Proto;

namespace Quantize.Onnx.Preparation;

/// <summary>
/// ORT reports types of main-graph values only, so the tensors of the bodies the engine quantizes
/// (<see cref="ControlFlowBodies"/>) are typed through probe models, never run: one per body, whose inputs are the
/// body's own (a Loop/Scan body's per-iteration values) and every name it reads from outside (outer values and weights,
/// and its own weights, without their data). Only element types are needed in bodies (which tensors are float), so
/// values from outside carry their element type alone: a branch written for other shapes than the ones a static
/// analysis would give it (torch exports test ranks with If) then never fails shape inference. A body is probed once
/// the graph around it is typed.
/// </summary>
internal static class BodyTypeProbe
{
    /// <summary>The main graph with every node output declared as a graph output.</summary>
    public static ModelProto Main(ModelProto model)
    {
        var graph = new GraphProto { Name = model.Graph.Name, Input = { model.Graph.Input }, Output = { model.Graph.Output }, Node = { model.Graph.Node } };
        graph.Initializer.Add(model.Graph.Initializer);
        return Probe(model, graph);
    }

    /// <summary>The probe of <paramref name="body"/>; null when something it reads has no known tensor type (it then stays untyped, so float).</summary>
    public static ModelProto? Body(ModelProto model, Body body, Func<string, TensorType?> types)
    {
        var graph = new GraphProto { Name = body.Graph.Name, Node = { body.Graph.Node } };
        for (var i = 0; i < body.Graph.Input.Count; i++)
        {
            var input = body.Graph.Input[i];
            if (input.Type?.TensorType is { ElemType: > 0 })
            {
                graph.Input.Add(input);
            }
            else if (CarriedFrom(body, i) is { } outer && types(outer) is { } type)
            {
                // A body input declared without a type has the element type of what the node passes in.
                graph.Input.Add(Typed(input.Name, (int)type.ElementType, null));
            }
            else
            {
                return null;
            }
        }

        var weights = ControlFlowBodies.VisibleInitializers(body, model.Graph, own: true);
        foreach (var read in body.Graph.Initializer.Select(t => t.Name).Concat(ControlFlowBodies.OuterReads(body.Graph)).Distinct(StringComparer.Ordinal))
        {
            if (weights.TryGetValue(read, out var weight))
            {
                graph.Input.Add(Typed(read, weight.DataType, weight.Dims));
            }
            else if (types(read) is { } type)
            {
                graph.Input.Add(Typed(read, (int)type.ElementType, null));
            }
            else
            {
                return null;
            }
        }

        return Probe(model, graph);
    }

    /// <summary>A model around <paramref name="graph"/> whose every node output is a graph output, for ORT to type.</summary>
    private static ModelProto Probe(ModelProto model, GraphProto graph)
    {
        var declared = graph.Output.Select(o => o.Name).ToHashSet(StringComparer.Ordinal);
        declared.UnionWith(graph.Input.Select(i => i.Name));
        foreach (var output in graph.Node.SelectMany(n => n.Output))
        {
            if (output.Length > 0 && declared.Add(output))
            {
                graph.Output.Add(new ValueInfoProto { Name = output });
            }
        }

        var probe = new ModelProto { IrVersion = model.IrVersion, Graph = graph };
        probe.OpsetImport.Add(model.OpsetImport);
        probe.Functions.Add(model.Functions);
        return probe;
    }

    /// <summary>The outer value a body input starts from: Loop inputs 2.. (after the trip count and condition) and Scan inputs map one to one.</summary>
    private static string? CarriedFrom(Body body, int index) =>
        !body.IsBranch && index < body.Owner.Input.Count && index >= (body.Owner.OpType == "Loop" ? 2 : 0) && body.Owner.Input[index].Length > 0
            ? body.Owner.Input[index]
            : null;

    /// <summary>A tensor value of element type <paramref name="elementType"/>, of unknown rank unless <paramref name="dims"/> are given.</summary>
    private static ValueInfoProto Typed(string name, int elementType, IEnumerable<long>? dims)
    {
        var tensor = new TypeProto.Types.Tensor { ElemType = elementType };
        if (dims is not null)
        {
            tensor.Shape = new TensorShapeProto();
            tensor.Shape.Dim.Add(dims.Select(d => new TensorShapeProto.Types.Dimension { DimValue = d }));
        }

        return new ValueInfoProto { Name = name, Type = new TypeProto { TensorType = tensor } };
    }
}
