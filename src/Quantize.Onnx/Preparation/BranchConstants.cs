using Quantize.Onnx.Model;
using Quantize.Onnx.Model.Proto;

namespace Quantize.Onnx.Preparation;

/// <summary>
/// ORT's offline optimisation turns Constant nodes into initializers in the main graph only; inside If branches
/// (torch and paddle2onnx exports put branch weights there as Constant nodes) they stay nodes, which the QDQ planner
/// does not see as weights. Those of the branches the engine quantizes (<see cref="IfBranches"/>) become initializers
/// of their branch, under the same name.
/// </summary>
internal static class BranchConstants
{
    public static void ToInitializers(ModelProto model)
    {
        foreach (var branch in IfBranches.Of(model))
        {
            foreach (var node in branch.Graph.Node.Where(IsTensorConstant).ToList())
            {
                var tensor = node.Attribute.Single(a => a.Name == "value").T.Clone();
                tensor.Name = node.Output[0];
                branch.Graph.Initializer.Add(tensor);
                branch.Graph.Node.Remove(node);
            }
        }
    }

    private static bool IsTensorConstant(NodeProto node) =>
        node.OpType == "Constant" && node.Domain is "" or "ai.onnx" && node.Output.Count == 1
        && node.Attribute.Count == 1 && node.Attribute[0] is { Name: "value", T: not null };
}
