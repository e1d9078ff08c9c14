using Quantize.Onnx.Model;
using Quantize.Onnx.Model.Proto;

namespace Quantize.Onnx.Preparation;

/// <summary>
/// ORT reports types of main-graph values only, so for type inference the If branches the engine quantizes
/// (<see cref="IfBranches"/>) are copied into the probe's main graph, just before their If: a branch has no inputs and
/// reads only values defined before its If, and its names are unique in the model, so the copy types every branch
/// tensor as the branch would, and the If is replaced by Identity nodes from the then branch's outputs. The probe is never run.
/// </summary>
internal static class BranchTypeProbe
{
    public static void Inline(ModelProto probe)
    {
        var graph = probe.Graph;
        foreach (var group in IfBranches.Of(probe).GroupBy(b => b.If, ReferenceEqualityComparer.Instance))
        {
            var node = (NodeProto)group.Key!;
            var at = graph.Node.IndexOf(node);
            foreach (var branch in group)
            {
                foreach (var inner in branch.Graph.Node)
                {
                    graph.Node.Insert(at++, inner.Clone());
                }

                graph.Initializer.Add(branch.Graph.Initializer.Select(t => t.Clone()));
            }

            // The If itself would now see its branches' names defined in its outer scope (not SSA): its outputs are
            // taken from the first branch's, which have the same types.
            graph.Node.Remove(node);
            var outputs = group.First().Graph.Output;
            for (var i = 0; i < node.Output.Count && i < outputs.Count; i++)
            {
                graph.Node.Insert(at++, new NodeProto { OpType = "Identity", Name = node.Name + "_probe_" + i, Input = { outputs[i].Name }, Output = { node.Output[i] } });
            }
        }
    }
}
