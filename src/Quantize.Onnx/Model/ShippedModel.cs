using Quantize.Onnx.Model.Proto;

namespace Quantize.Onnx.Model;

/// <summary>The write stage: the model that ships, written atomically where the output goes.</summary>
internal static class ShippedModel
{
    public static void Write(ModelProto model, string outputPath)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(outputPath))!);
        ModelWriter.Save(model, outputPath);
    }

    /// <summary>The source graph and weights unchanged; provenance still says what the tool decided (<paramref name="result"/>).</summary>
    public static void WriteSource(ModelProto source, IReadOnlyDictionary<string, string> settings, string result, string outputPath)
    {
        var kept = source.Clone();
        Provenance.Stamp(kept, Quantizer.ToolVersion, new SortedDictionary<string, string>(settings.ToDictionary(), StringComparer.Ordinal) { ["result"] = result });
        Write(kept, outputPath);
    }
}
