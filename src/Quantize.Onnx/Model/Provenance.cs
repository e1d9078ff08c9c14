using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using Quantize.Onnx.Model.Proto;

namespace Quantize.Onnx.Model;

/// <summary>Records in a model's <c>metadata_props</c> which tool produced it, and with which settings.</summary>
public static class Provenance
{
    public const string ToolKey = "quantize.tool";
    public const string VersionKey = "quantize.version";
    public const string SettingsKey = "quantize.settings";
    public const string ToolName = "Quantize.Onnx";

    /// <summary>
    /// Sets <see cref="ToolKey"/>, <see cref="VersionKey"/> and <see cref="SettingsKey"/> (replacing
    /// earlier values of those keys, appended after all other metadata, which is kept as it is).
    /// </summary>
    public static void Stamp(ModelProto model, string toolVersion, IReadOnlyDictionary<string, string> settings)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(toolVersion);
        ArgumentNullException.ThrowIfNull(settings);

        string canonical = CanonicalSettings(settings);
        for (int i = model.MetadataProps.Count - 1; i >= 0; i--)
        {
            if (model.MetadataProps[i].Key is ToolKey or VersionKey or SettingsKey)
            {
                model.MetadataProps.RemoveAt(i);
            }
        }

        model.MetadataProps.Add(new StringStringEntryProto { Key = ToolKey, Value = ToolName });
        model.MetadataProps.Add(new StringStringEntryProto { Key = VersionKey, Value = toolVersion });
        model.MetadataProps.Add(new StringStringEntryProto { Key = SettingsKey, Value = canonical });
    }

    /// <summary>
    /// The settings as a compact JSON object with keys in ordinal order, e.g.
    /// <c>{"activations":"uint8","perChannel":"true"}</c>: the same settings always give the same string.
    /// </summary>
    public static string CanonicalSettings(IReadOnlyDictionary<string, string> settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping, Indented = false }))
        {
            writer.WriteStartObject();
            foreach (var pair in settings.OrderBy(p => p.Key, StringComparer.Ordinal))
            {
                writer.WriteString(pair.Key, pair.Value ?? string.Empty);
            }

            writer.WriteEndObject();
        }

        return Encoding.UTF8.GetString(buffer.ToArray());
    }
}
