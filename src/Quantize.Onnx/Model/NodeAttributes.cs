using Google.Protobuf;
using Quantize.Onnx.Model.Proto;

namespace Quantize.Onnx.Model;

/// <summary>Typed access to node attributes, with the ONNX default when an attribute is absent.</summary>
internal static class NodeAttributes
{
    public static AttributeProto? Find(this NodeProto node, string name) =>
        node.Attribute.FirstOrDefault(a => a.Name == name);

    public static long GetInt(this NodeProto node, string name, long defaultValue) =>
        node.Find(name) is { } a ? a.I : defaultValue;

    public static float GetFloat(this NodeProto node, string name, float defaultValue) =>
        node.Find(name) is { } a ? a.F : defaultValue;

    public static string GetString(this NodeProto node, string name, string defaultValue) =>
        node.Find(name) is { } a ? a.S.ToStringUtf8() : defaultValue;

    public static IReadOnlyList<long>? GetInts(this NodeProto node, string name) =>
        node.Find(name) is { } a ? a.Ints : null;

    public static bool RemoveAttribute(this NodeProto node, string name)
    {
        var a = node.Find(name);
        return a is not null && node.Attribute.Remove(a);
    }

    public static void SetInt(this NodeProto node, string name, long value)
    {
        node.RemoveAttribute(name);
        node.Attribute.Add(new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = value });
    }

    public static void SetString(this NodeProto node, string name, string value)
    {
        node.RemoveAttribute(name);
        node.Attribute.Add(new AttributeProto
        {
            Name = name,
            Type = AttributeProto.Types.AttributeType.String,
            S = ByteString.CopyFromUtf8(value),
        });
    }

    /// <summary>True when the node carries a graph (If/Loop/Scan bodies): such nodes stay float in this slice.</summary>
    public static bool HasSubgraph(this NodeProto node) =>
        node.Attribute.Any(a => a.G is not null || a.Graphs.Count > 0);

    /// <summary>The opset version that binds ops of the default domain.</summary>
    public static long DefaultOpset(this ModelProto model) =>
        model.OpsetImport.Where(o => o.Domain is "" or "ai.onnx").Select(o => o.Version).DefaultIfEmpty(1).Max();
}
