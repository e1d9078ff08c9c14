using Quantize.Onnx.Model;
using Quantize.Onnx.Model.Proto;

namespace Quantize.Onnx.Preparation;

/// <summary>
/// ORT's basic optimisations fuse a 2-D MatMul and the Add after it into a Gemm even when the Add's other input is an
/// activation (an RNN step: x·W + h·R, as Scan and Loop bodies compute it). The QDQ form has no Gemm with a computed C
/// (QGemm's C is an int32 bias), so such a Gemm would stay float: it is split back into the MatMul, which is then
/// quantized like any other, and a float Add. Only the form the fusion writes (constant B, alpha = beta = 1, no
/// transposes) is split, in the main graph and in the bodies the engine quantizes.
/// </summary>
internal static class GemmSplitter
{
    public static int Split(ModelProto model)
    {
        var split = 0;
        var names = new NameAllocator(ControlFlowBodies.AllNames(model.Graph));
        var scopes = ControlFlowBodies.Of(model).Select(b => (b.Graph, Weights: ControlFlowBodies.VisibleInitializers(b, model.Graph, own: true)))
            .Prepend((model.Graph, Weights: model.Graph.Initializer.ToDictionary(t => t.Name, StringComparer.Ordinal)));
        foreach (var (graph, weights) in scopes)
        {
            for (var i = 0; i < graph.Node.Count; i++)
            {
                var gemm = graph.Node[i];
                if (!IsFusedMatMulAdd(gemm, weights))
                {
                    continue;
                }

                var product = names.Next(gemm.Output[0] + "_matmul");
                graph.Node[i] = new NodeProto { OpType = "MatMul", Name = gemm.Name, Input = { gemm.Input[0], gemm.Input[1] }, Output = { product } };
                graph.Node.Insert(i + 1, new NodeProto { OpType = "Add", Name = names.Next(gemm.Name + "_add"), Input = { product, gemm.Input[2] }, Output = { gemm.Output[0] } });
                split++;
            }
        }

        return split;
    }

    private static bool IsFusedMatMulAdd(NodeProto node, Dictionary<string, TensorProto> weights) =>
        node.OpType == "Gemm" && node.Domain is "" or "ai.onnx" && node.Input.Count == 3 && node.Output.Count == 1
        && weights.TryGetValue(node.Input[1], out var b) && b.DataType == (int)TensorProto.Types.DataType.Float && b.Dims.Count == 2
        && node.Input[2].Length > 0 && !weights.ContainsKey(node.Input[2])
        && node.GetFloat("alpha", 1f) == 1f && node.GetFloat("beta", 1f) == 1f && node.GetInt("transA", 0) == 0 && node.GetInt("transB", 0) == 0;
}
