using System.Text;
using Quantize.Onnx.Model;
using static Quantize.Onnx.Reporting.HtmlText;

namespace Quantize.Onnx.Reporting;

/// <summary>
/// The human-readable report of one quantization: a self-contained HTML page (inline CSS, inline SVG,
/// images as PNG data URIs; no scripts, no external assets) with sizes, latency, the accuracy checks and
/// metrics, a per-layer SQNR chart, the fusion report, the warnings and, for image-like outputs, a few
/// validation samples side by side (FP32 | INT8 | amplified difference).
/// </summary>
public static class HtmlReport
{
    /// <summary>The difference images show |FP32 − INT8| multiplied by this.</summary>
    public const int DifferenceGain = 10;

    /// <summary>Layers drawn in the chart (the worst ones; the rest are counted).</summary>
    public const int MaxChartLayers = 80;

    /// <summary>Layers highlighted as the worst.</summary>
    public const int HighlightedLayers = 3;

    /// <summary>Longest side of an embedded image; larger outputs are subsampled.</summary>
    public const int MaxImageSide = 512;


    private const string Style = """
        :root { color-scheme: light; }
        body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: #1f2328; background: #f6f8fa; margin: 0; }
        main { max-width: 1180px; margin: 0 auto; padding: 24px 28px 48px; }
        h1 { font-size: 24px; margin: 0 0 4px; word-break: break-all; }
        h2 { font-size: 18px; margin: 28px 0 10px; padding-bottom: 4px; border-bottom: 1px solid #d0d7de; }
        h3 { font-size: 15px; margin: 14px 0 6px; }
        .sub { color: #59636e; margin: 0 0 16px; word-break: break-all; }
        .badge { display: inline-block; padding: 2px 10px; border-radius: 12px; font-weight: 600; font-size: 13px; vertical-align: middle; margin-left: 8px; }
        .ok { background: #dafbe1; color: #116329; }
        .fail { background: #ffebe9; color: #a40e26; }
        .warn { background: #fff8c5; color: #7d4e00; }
        .cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(250px, 1fr)); gap: 12px; }
        .card { background: #fff; border: 1px solid #d0d7de; border-radius: 8px; padding: 10px 14px; }
        .card .label { color: #59636e; font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
        .card .value { font-size: 19px; font-weight: 600; white-space: nowrap; }
        .card .detail { color: #59636e; font-size: 12px; }
        table { border-collapse: collapse; background: #fff; border: 1px solid #d0d7de; margin: 4px 0 8px; }
        th, td { padding: 5px 10px; border-bottom: 1px solid #eaeef2; text-align: left; vertical-align: top; }
        th { background: #f6f8fa; font-weight: 600; font-size: 13px; }
        td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
        tr.failed td { background: #fff5f5; }
        tr.checked td { font-weight: 600; }
        code { font: 12px ui-monospace, "DejaVu Sans Mono", monospace; background: #eff1f3; padding: 1px 4px; border-radius: 4px; word-break: break-all; }
        ul { margin: 4px 0; padding-left: 22px; }
        li { margin: 3px 0; }
        .warning { background: #fff; border: 1px solid #d4a72c; border-left-width: 4px; border-radius: 6px; padding: 8px 12px; margin: 8px 0; word-break: break-word; }
        .chart { background: #fff; border: 1px solid #d0d7de; border-radius: 8px; padding: 8px; overflow-x: auto; }
        .samples { display: grid; grid-template-columns: repeat(3, minmax(0, 300px)); gap: 12px; margin-bottom: 12px; }
        figure { margin: 0; background: #fff; border: 1px solid #d0d7de; border-radius: 8px; padding: 8px; }
        figure img { width: 100%; height: auto; image-rendering: pixelated; display: block; background: #000; }
        figcaption { color: #59636e; font-size: 12px; margin-top: 6px; }
        .muted { color: #59636e; }
        .ci { color: #59636e; font-size: 12px; }
        """;

    /// <summary>Writes the page atomically (temporary file, then rename), like the JSON report.</summary>
    public static void Write(QuantizeResult result, string path)
    {
        AtomicText.Write(path, Render(result), "the HTML report");
    }

    /// <summary>The page's HTML.</summary>
    public static string Render(QuantizeResult r)
    {
        var name = Path.GetFileName(r.ModelPath);
        var html = new StringBuilder(64 * 1024);
        html.Append("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
        html.Append("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
        html.Append(C, $"<title>Quantize report: {E(name)}</title>\n<style>\n{Style}\n</style>\n</head>\n<body>\n<main>\n");

        var (verdict, verdictClass) = r.Output switch
        {
            OutputKind.Quantized => ("INT8 shipped", "ok"),
            OutputKind.KeptFloat when r.Warnings.Any(w => w.Code == ErrorCodes.NoIntegerKernels) => ("FP32 kept: no integer kernels", "warn"),
            OutputKind.KeptFloat when r.Warnings.Any(w => w.Code == ErrorCodes.LargerThanSource) => ("FP32 kept: INT8 not smaller", "warn"),
            OutputKind.KeptFloat => ("FP32 kept: INT8 not faster", "warn"),
            OutputKind.NotWritten => ("nothing written: the gate failed", "fail"),
            OutputKind.Unchanged => ("written unchanged: see the warnings", "warn"),
            _ => ("FP32 kept: a check failed", "fail"),
        };
        html.Append(C, $"<h1>{E(name)} <span class=\"badge {verdictClass}\">{E(verdict)}</span>");
        if (r.Validation is { } gate)
        {
            html.Append(gate.Passed ? " <span class=\"badge ok\">accuracy checks passed</span>" : " <span class=\"badge fail\">accuracy checks failed</span>");
        }

        html.Append("</h1>\n");
        html.Append(C, $"<p class=\"sub\">{E(r.ModelPath)} &rarr; {E(r.OutputPath)}{(r.Output == OutputKind.NotWritten ? " (not written)" : "")}</p>\n");

        HtmlReportSummary.Overview(html, r);
        HtmlReportSummary.Targets(html, r);
        HtmlReportAccuracy.Validation(html, r);
        HtmlReportAccuracy.Tuning(html, r.Tuning);
        HtmlReportImages.Images(html, r);
        HtmlReportAccuracy.Metrics(html, r.Validation);
        HtmlReportLayers.Layers(html, r.Validation);
        HtmlReportAccuracy.Coverage(html, r.Validation?.Coverage);
        HtmlReportAccuracy.Fidelity(html, r);
        HtmlReportSummary.Fusion(html, r.Fusion);
        HtmlReportSummary.Warnings(html, r.Warnings);
        HtmlReportSummary.Settings(html, r);

        html.Append("</main>\n</body>\n</html>\n");
        return html.ToString();
    }

    /// <inheritdoc cref="HtmlReportImages.SampleImages"/>
    internal static (byte[] Fp32, byte[] Int8, byte[] Diff, string Stats) SampleImages(OutputSample s) => HtmlReportImages.SampleImages(s);
}
