using Quantize.Onnx.Model.Proto;

namespace Quantize.Onnx.Model;

/// <summary>
/// Appending scan outputs to a Loop or Scan: they come last in the body's outputs and in the node's (the op's signature
/// fixes the order), so an appended one moves nothing — once the node's outputs left off its end are named.
/// </summary>
internal static class ScanOutputs
{
    /// <summary>Names the outputs <paramref name="node"/> left off its end, so an appended one lines up with <paramref name="body"/>'s next output.</summary>
    public static void NameTrailing(NodeProto node, GraphProto body, NameAllocator names)
    {
        var declared = body.Output.Count - (node.OpType == "Loop" ? 1 : 0);
        while (node.Output.Count < declared)
        {
            node.Output.Add(names.Next(node.Name + "_unused_output"));
        }
    }

    /// <summary>Scan's per-scan-output attributes, when given, need an entry for each appended scan output (axis 0, forward).</summary>
    public static void ExtendScanAttributes(NodeProto node, int count)
    {
        if (node.OpType != "Scan")
        {
            return;
        }

        foreach (var attribute in node.Attribute.Where(a => a.Name is "scan_output_axes" or "scan_output_directions"))
        {
            attribute.Ints.Add(new long[count]);
        }
    }
}
