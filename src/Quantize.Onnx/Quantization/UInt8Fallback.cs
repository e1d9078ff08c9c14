using Quantize.Onnx.Model.Proto;

namespace Quantize.Onnx.Quantization;

/// <summary>
/// The FP32 model that ships instead of the INT8 one (slower, larger, gate failed under ship-fp32) when the model's I/O is
/// uint8: the source graph behind the same front end (<see cref="UInt8FrontEnd"/>: the bytes dequantized on the input
/// grid, or Cast · a + b) and before the same back end (<see cref="UInt8BackEnd.QuantizeOutputs"/>: each output quantized
/// on the INT8 candidate's grid, named in the metadata). An app written for the uint8 contract then works whatever the
/// verdict, which can depend on the build machine's timing.
/// </summary>
internal static class UInt8Fallback
{
    /// <summary>The first opset of the default domain with QuantizeLinear and DequantizeLinear.</summary>
    private const long QdqOpset = 10;

    private const string ContribDomain = "com.microsoft";

    public static ModelProto Keep(ModelProto source, Candidate candidate)
    {
        var kept = candidate.UInt8Inputs is { } bytes ? UInt8FrontEnd.Ship(source, bytes, candidate.Options.ActivationType) : source;
        kept = candidate.UInt8Outputs is { } grids ? UInt8BackEnd.QuantizeOutputs(kept, grids) : kept;
        if (!ReferenceEquals(kept, source) && kept.OpsetImport.Where(o => o.Domain is "" or "ai.onnx").Select(o => o.Version).DefaultIfEmpty(QdqOpset).Single() < QdqOpset)
        {
            // The INT8 model was raised to opset 13; the FP32 one keeps its own opset, where the Q/DQ ops do not exist yet:
            // ORT's contrib ops of the same name compute the same (round half to even, saturate), at any opset.
            foreach (var node in kept.Graph.Node.Where(n => n.OpType is "QuantizeLinear" or "DequantizeLinear" && n.Domain is "" or "ai.onnx"))
            {
                node.Domain = ContribDomain;
            }

            if (!kept.OpsetImport.Any(o => o.Domain == ContribDomain))
            {
                kept.OpsetImport.Add(new OperatorSetIdProto { Domain = ContribDomain, Version = 1 });
            }
        }

        return kept;
    }
}
