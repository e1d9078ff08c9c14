using System.Globalization;
using System.Net;

namespace Quantize.Onnx.Reporting;

/// <summary>What every part of the <see cref="HtmlReport"/> writes text with: the invariant culture and HTML encoding.</summary>
internal static class HtmlText
{
    /// <summary>Numbers and dates are written the same on every machine.</summary>
    public static readonly CultureInfo C = CultureInfo.InvariantCulture;

    /// <summary>HTML-encodes text (element content and attribute values).</summary>
    public static string E(string? text) => WebUtility.HtmlEncode(text ?? "");
}
