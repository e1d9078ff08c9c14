using System.Text.Json;
using System.Text.Json.Serialization;
using Quantize.Onnx.Model;

namespace Quantize.Onnx.Reporting;

/// <summary>Writes the machine-readable report of one quantization (JSON), atomically.</summary>
public static class ReportWriter
{
    private static readonly JsonSerializerOptions Options = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.CamelCase) },
    };

    public static void Write(QuantizeResult result, string path)
    {
        AtomicText.Write(path, JsonSerializer.Serialize(result, Options), "the report");
    }
}
