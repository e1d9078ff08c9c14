using System.Text;
using Quantize.Onnx.Validation;
using static Quantize.Onnx.Reporting.HtmlText;

namespace Quantize.Onnx.Reporting;

/// <summary>The per-layer error section of the <see cref="HtmlReport"/>: the worst layers as an SVG bar chart, and how to keep them float.</summary>
internal static class HtmlReportLayers
{
    public static void Layers(StringBuilder html, ValidationReport? v)
    {
        if (v is null)
        {
            return;
        }

        html.Append("<h2>Per-layer error</h2>\n");
        if (v.WorstLayers.Count == 0)
        {
            html.Append("<p class=\"muted\">No per-layer measurement (no quantized activation could be compared).</p>\n");
            return;
        }

        html.Append(C, $"<p class=\"sub\">SQNR of each quantized layer's output, INT8 (through its DequantizeLinear) vs FP32, on {v.LayerSamples} validation sample(s); ");
        html.Append(C, $"layers ranked by the noise they add, worst first. The {Math.Min(HtmlReport.HighlightedLayers, v.WorstLayers.Count)} worst are red; the dark part of each bar is the SQNR its inputs had, the light tail what this layer lost.</p>\n");
        html.Append("<div class=\"chart\">\n");
        html.Append(Chart(v.WorstLayers));
        html.Append("</div>\n");
        if (v.WorstLayers.Count > HtmlReport.MaxChartLayers)
        {
            html.Append(C, $"<p class=\"muted\">{v.WorstLayers.Count - HtmlReport.MaxChartLayers} more layer(s) add less noise and are not drawn (they are in the JSON report).</p>\n");
        }

        var worst = v.WorstLayers.Take(HtmlReport.HighlightedLayers).Select(l => l.Node).ToList();
        html.Append(C, $"<p>To keep the worst layers in float: <code>QuantizeExcludeNodes=\"{E(string.Join(";", worst))}\"</code> (or <code>--exclude-nodes \"{E(string.Join(";", worst))}\"</code>).</p>\n");
    }

    /// <summary>A horizontal bar chart of the layers' SQNR (inline SVG, no scripts).</summary>
    private static string Chart(IReadOnlyList<LayerError> layers)
    {
        var shown = layers.Take(HtmlReport.MaxChartLayers).ToList();
        const int labelWidth = 330, barWidth = 600, valueWidth = 180, rowHeight = 20, top = 26, bottom = 8;
        var width = labelWidth + barWidth + valueWidth;
        var height = top + (shown.Count * rowHeight) + bottom;
        var max = Math.Max(10, Math.Ceiling(shown.Max(l => Math.Min(100, l.SqnrDb + l.LossDb)) / 10) * 10);
        double X(double db) => labelWidth + (barWidth * Math.Clamp(db, 0, max) / max);

        var svg = new StringBuilder();
        svg.Append(C, $"<svg width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" role=\"img\" aria-label=\"Per-layer SQNR in dB\" font-family=\"system-ui, sans-serif\" font-size=\"12\">\n");
        for (var db = 0.0; db <= max + 1e-9; db += max <= 50 ? 5 : 10)
        {
            var x = X(db);
            svg.Append(C, $"<line x1=\"{x:F1}\" y1=\"{top - 4}\" x2=\"{x:F1}\" y2=\"{height - bottom}\" stroke=\"#eaeef2\"/>");
            svg.Append(C, $"<text x=\"{x:F1}\" y=\"{top - 8}\" text-anchor=\"{(db + 1e-9 >= max ? "end" : "middle")}\" fill=\"#59636e\">{db:0}</text>\n");
        }

        svg.Append(C, $"<text x=\"{labelWidth + barWidth + 12}\" y=\"{top - 8}\" fill=\"#59636e\">SQNR dB (lost here)</text>\n");
        for (var i = 0; i < shown.Count; i++)
        {
            var l = shown[i];
            var worst = i < HtmlReport.HighlightedLayers;
            var y = top + (i * rowHeight);
            var label = l.Node.Length > 44 ? string.Concat(l.Node.AsSpan(0, 43), "…") : l.Node;
            svg.Append(C, $"<g><title>{E(l.Node)} ({E(l.OpType)}), tensor {E(l.Tensor)}: SQNR {l.SqnrDb:F1} dB, {l.LossDb:F1} dB lost in this layer</title>");
            svg.Append(C, $"<text x=\"{labelWidth - 8}\" y=\"{y + 14}\" text-anchor=\"end\" fill=\"{(worst ? "#a40e26" : "#1f2328")}\"{(worst ? " font-weight=\"600\"" : "")}>{E(label)} <tspan fill=\"#59636e\" font-weight=\"400\">{E(l.OpType)}</tspan></text>");
            var end = X(l.SqnrDb);
            var before = X(Math.Min(100, l.SqnrDb + l.LossDb));
            svg.Append(C, $"<rect x=\"{labelWidth}\" y=\"{y + 3}\" width=\"{Math.Max(1, end - labelWidth):F1}\" height=\"{rowHeight - 6}\" rx=\"2\" fill=\"{(worst ? "#cf222e" : "#0969da")}\"/>");
            if (before - end >= 0.5)
            {
                svg.Append(C, $"<rect x=\"{end:F1}\" y=\"{y + 3}\" width=\"{before - end:F1}\" height=\"{rowHeight - 6}\" rx=\"2\" fill=\"{(worst ? "#ffcecb" : "#b6d7ff")}\"/>");
            }

            svg.Append(C, $"<text x=\"{labelWidth + barWidth + 12}\" y=\"{y + 14}\" fill=\"{(worst ? "#a40e26" : "#1f2328")}\">{l.SqnrDb:F1} dB <tspan fill=\"#59636e\">(−{l.LossDb:F1})</tspan></text></g>\n");
        }

        svg.Append("</svg>\n");
        return svg.ToString();
    }
}
