using Quantize.Onnx.Model;
using Quantize.Onnx.Model.Proto;

namespace Quantize.Onnx.Preparation;

/// <summary>
/// ORT's offline optimisation turns Constant nodes into initializers in the main graph only; inside If branches and
/// Loop/Scan bodies (torch and paddle2onnx exports put their weights there as Constant nodes) they stay nodes, which
/// the QDQ planner does not see as weights. Those of the bodies the engine quantizes (<see cref="ControlFlowBodies"/>)
/// become initializers of their body, under the same name.
/// </summary>
internal static class BodyConstants
{
    public static void ToInitializers(ModelProto model)
    {
        foreach (var body in ControlFlowBodies.Of(model))
        {
            foreach (var node in body.Graph.Node.Where(IsTensorConstant).ToList())
            {
                var tensor = node.Attribute.Single(a => a.Name == "value").T.Clone();
                tensor.Name = node.Output[0];
                body.Graph.Initializer.Add(tensor);
                body.Graph.Node.Remove(node);
            }
        }
    }

    private static bool IsTensorConstant(NodeProto node) =>
        node.OpType == "Constant" && node.Domain is "" or "ai.onnx" && node.Output.Count == 1
        && node.Attribute.Count == 1 && node.Attribute[0] is { Name: "value", T: not null };
}
