using System.Globalization;
using System.Net;
using System.Text;
using Quantize.Onnx.Model;
using Quantize.Onnx.Reporting;
using Quantize.Onnx.Validation;

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

    private static readonly CultureInfo C = CultureInfo.InvariantCulture;

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

        Overview(html, r);
        Targets(html, r);
        Validation(html, r);
        Tuning(html, r.Tuning);
        Images(html, r);
        Metrics(html, r.Validation);
        Layers(html, r.Validation);
        Coverage(html, r.Validation?.Coverage);
        Fidelity(html, r);
        Fusion(html, r.Fusion);
        Warnings(html, r.Warnings);
        Settings(html, r);

        html.Append("</main>\n</body>\n</html>\n");
        return html.ToString();
    }

    private static void Overview(StringBuilder html, QuantizeResult r)
    {
        html.Append("<h2>Overview</h2>\n<div class=\"cards\">\n");
        var smaller = r.Int8Bytes > 0 ? (double)r.Fp32Bytes / r.Int8Bytes : 0;
        Card(html, "Size", $"{Mb(r.Fp32Bytes)} &rarr; {Mb(r.Int8Bytes)}",
            r.Output == OutputKind.Quantized ? string.Format(C, "{0:F1}x smaller", smaller)
            : string.Format(C, "INT8 would be {0:F1}x smaller; {1}", smaller, r.Output == OutputKind.NotWritten ? "nothing written" : "FP32 shipped"));
        Card(html, $"Latency ({r.Latency.ThreadsText}, median, {r.Machine.Architecture} {r.Machine.Features})", string.Format(C, "{0:F2} &rarr; {1:F2} ms", r.Latency.Fp32Milliseconds, r.Latency.Int8Milliseconds),
            string.Format(C, "speed-up {0:F2}x{1}{2}{3}", r.Latency.Speedup, r.Latency.SpeedupInterval is { } ci ? $" {ci}" : "",
                r.Latency.Verdict == SpeedVerdict.WithinNoise ? ", within noise" : "",
                r.Latency.SingleThread is { } one ? string.Format(C, "; 1 thread: {0:F2}x", one.Speedup) : "") + string.Format(C, "{0}", r.Latency.Prepacked ? "" : " (measured without weight pre-packing, over 1 GiB of weights: an application's session differs)"));
        Card(html, "Integer kernels", r.Fusion.FusedCount.ToString(C),
            string.Format(C, "{0} quantized nodes, {1} un-fused group(s)", r.QuantizedNodes, r.Fusion.UnfusedNodes.Count));
        if (r.Fidelity.Count > 0)
        {
            Card(html, "SQNR vs FP32 (calibration)", string.Format(C, "{0:F1} dB", r.Fidelity.Min(f => f.SqnrDb)), string.Format(C, "on {0} sample(s)", r.FidelitySamples));
        }

        if (r.Validation is { } v)
        {
            var passed = v.Checks.Count(c => c.Passed);
            Card(html, "Accuracy checks", string.Format(C, "{0} / {1} passed", passed, v.Checks.Count), string.Format(C, "on {0} validation sample(s)", v.Samples));
        }

        var calibration = r.Settings.GetValueOrDefault("mode") switch
        {
            "dynamic" => "none: dynamic (ranges at run time)",
            "weight4" => string.Format(C, "none: 4-bit weights, blocks of {0}", r.Settings.GetValueOrDefault("block-size")),
            _ => string.Format(C, "{0} sample(s)", r.CalibrationSamples),
        };
        Card(html, "Calibration", calibration,
            string.Format(C, "{0:F1} s calibrating, {1:F1} s in total", r.CalibrationTime.TotalSeconds, r.TotalTime.TotalSeconds));
        html.Append("</div>\n");
    }

    /// <summary>The build machine every figure ran on, and per declared target whether its integer arithmetic was validated.</summary>
    private static void Targets(StringBuilder html, QuantizeResult r)
    {
        html.Append("<h2>Target hardware</h2>\n");
        html.Append(C, $"<p class=\"sub\">Every figure on this page ran on {E(r.Machine.Cpu)}: {E(r.Machine.ClassLabel)}{(r.Int8Arithmetic == Hardware.Int8Arithmetic.ExactReference ? "; INT8 accuracy figures are the exact class's reference (unfused QDQ graph), as this machine's kernels saturate" : "")}.</p>\n");
        html.Append(r.DecidedHere.Count == 0
            ? "<p class=\"sub\">Ranges and the ship decision come from the lock file: every build machine writes the same bytes.</p>\n"
            : $"<p class=\"sub\">Decided on this machine: {E(string.Join(", ", r.DecidedHere))}. Another machine may decide differently; a committed lock file (QuantizeLock / --lock) makes every machine write the same bytes.</p>\n");
        if (r.Targets.Count == 0)
        {
            return;
        }

        html.Append("<table>\n<tr><th>target</th><th>integer arithmetic</th><th>validated</th><th>how</th><th>speed</th></tr>\n");
        foreach (var t in r.Targets)
        {
            var speed = t.SpeedMeasured ? "measured here" : "not measured";
            html.Append(C, $"<tr><td>{E(t.Target)}</td><td>{E(t.Arithmetic)}</td><td>{(t.Validated ? "<span class=\"badge ok\">yes</span>" : "<span class=\"badge fail\">no</span>")}</td><td>{E(t.How)}</td><td>{speed}</td></tr>\n");
        }

        html.Append("</table>\n");
    }

    private static void Card(StringBuilder html, string label, string valueHtml, string detail) =>
        html.Append(C, $"<div class=\"card\"><div class=\"label\">{E(label)}</div><div class=\"value\">{valueHtml}</div><div class=\"detail\">{E(detail)}</div></div>\n");

    private static void Validation(StringBuilder html, QuantizeResult r)
    {
        html.Append("<h2>Accuracy checks</h2>\n");
        if (r.Validation is not { } v)
        {
            html.Append("<p class=\"muted\">No validation data, so no accuracy check ran. Add a validation folder (<code>&lt;model&gt;.validation/</code> or <code>--validation</code>) to turn the gate on.</p>\n");
            return;
        }

        html.Append(C, $"<p class=\"sub\">{v.Samples} validation sample(s) from <code>{E(v.Folder)}</code>");
        if (v.SameAsCalibration)
        {
            html.Append(" &mdash; <strong>the calibration samples themselves</strong>, which overstates accuracy");
        }

        html.Append(".</p>\n");
        html.Append("<table>\n<tr><th>check</th><th>output</th><th>FP32</th><th>INT8</th><th>checked value</th><th>threshold</th><th>result</th></tr>\n");
        foreach (var c in v.Checks)
        {
            html.Append(C, $"<tr{(c.Passed ? "" : " class=\"failed\"")}><td><code>{E(c.Check)}</code></td><td>{E(c.Output)}</td>");
            html.Append(C, $"<td class=\"num\">{(c.Fp32 is double f ? E(Num(f) + c.Unit) : "&mdash;")}</td><td class=\"num\">{E(Num(c.Int8) + c.Unit)}</td>");
            html.Append(C, $"<td class=\"num\">{E((c.IsDrop ? "drop " : "") + Num(c.Value) + c.Unit)}{Ci(c.Interval)}</td><td class=\"num\">{E(c.Comparison + " " + Num(c.Threshold) + c.Unit)}</td>");
            html.Append(c.Passed ? "<td><span class=\"badge ok\">pass</span>" : "<td><span class=\"badge fail\">FAIL</span>");
            html.Append(c.WithinNoise ? " <span class=\"badge warn\" title=\"the threshold lies inside the 95 % bootstrap interval\">within noise</span></td></tr>\n" : "</td></tr>\n");
        }

        html.Append("</table>\n");
        if (v.Checks.Any(c => c.Interval is not null))
        {
            html.Append("<p class=\"muted\">Brackets: 95 % bootstrap interval over the validation samples. A verdict is within noise when the threshold lies inside it: more samples would settle it.</p>\n");
        }
    }

    /// <summary>What tuning chose and why, and every attempt of a search.</summary>
    private static void Tuning(StringBuilder html, Onnx.Tuning.TuningReport? t)
    {
        if (t is null)
        {
            return;
        }

        var badge = t.Succeeded ? "<span class=\"badge ok\">passed</span>" : "<span class=\"badge fail\">no passing configuration</span>";
        html.Append(C, $"<h2>Tuning {badge}</h2>\n<p>{E(t.Why)}</p>\n");
        if (t.LockFile is { } lockFile)
        {
            html.Append(C, $"<p class=\"sub\">Lock file: {E(lockFile)}{(t.LockFileWritten ? " (written by this build: commit it)" : "")}</p>\n");
        }

        if (t.Attempts.Count == 0)
        {
            return;
        }

        html.Append(C, $"<table>\n<tr><th>#</th><th>step</th><th>verdict</th><th>checks</th><th>float nodes</th><th>size</th><th>speed-up</th></tr>\n");
        foreach (var a in t.Attempts)
        {
            var chosen = a.Passed && t.Succeeded && a.FloatNodes.ToHashSet(StringComparer.Ordinal).SetEquals(t.FloatNodes);
            html.Append(C, $"<tr{(chosen ? " class=\"checked\"" : "")}><td class=\"num\">{a.Number}</td><td>{E(a.Step)}</td><td>{(a.Passed ? "pass" : "fail")}</td>");
            html.Append(C, $"<td>{E(string.Join("; ", a.Checks))}</td><td>{E(a.FloatNodes.Count == 0 ? "none" : a.FloatNodes.Count + ": " + string.Join(", ", a.FloatNodes.Take(8)) + (a.FloatNodes.Count > 8 ? ", ..." : ""))}</td>");
            html.Append(C, $"<td class=\"num\">{a.Int8Bytes / 1e6:F2} MB</td><td class=\"num\">{(a.Speedup is double x ? Num(x) + "x" : "&mdash;")}</td></tr>\n");
        }

        html.Append(C, $"</table>\n<p class=\"muted\">{t.Attempts.Count} attempt(s) in {t.Elapsed.TotalSeconds:F1} s. Speed-ups are 5-run indications, measured for passing attempts only.</p>\n");
    }

    private static void Metrics(StringBuilder html, ValidationReport? v)
    {
        if (v is null)
        {
            return;
        }

        html.Append("<h2>Metrics</h2>\n<table>\n<tr><th>output</th><th>metric</th><th>kind</th><th>FP32</th><th>INT8</th><th>drop</th><th>samples</th></tr>\n");
        foreach (var m in v.Metrics)
        {
            // A check reads the ground-truth metric when it has an FP32 value, else the INT8-vs-FP32 one.
            var checkedRow = v.Checks.Any(c => c.Output == m.Output && c.Metric == m.Metric && (c.Fp32 is not null) == (m.Kind == "task"));
            var kind = m.Kind == "task" ? "vs ground truth" : "INT8 vs FP32";
            html.Append(C, $"<tr{(checkedRow ? " class=\"checked\"" : "")}><td>{E(m.Output)}</td><td>{E(m.Metric)}</td><td>{E(kind)}</td>");
            html.Append(C, $"<td class=\"num\">{(m.Fp32 is double f ? E(Num(f) + m.Unit) + Ci(m.Fp32Interval) : "&mdash;")}</td><td class=\"num\">{E(Num(m.Int8) + m.Unit)}{Ci(m.Int8Interval)}</td>");
            html.Append(C, $"<td class=\"num\">{(m.Drop is double d ? E(Num(d) + m.Unit) + Ci(m.DropInterval) : "&mdash;")}</td><td class=\"num\">{m.Samples}</td></tr>\n");
        }

        html.Append("</table>\n<p class=\"muted\">Bold rows are checked. Drop = how much worse INT8 is than FP32 (positive = worse).</p>\n");
    }

    private static void Layers(StringBuilder html, ValidationReport? v)
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
        html.Append(C, $"layers ranked by the noise they add, worst first. The {Math.Min(HighlightedLayers, v.WorstLayers.Count)} worst are red; the dark part of each bar is the SQNR its inputs had, the light tail what this layer lost.</p>\n");
        html.Append("<div class=\"chart\">\n");
        html.Append(Chart(v.WorstLayers));
        html.Append("</div>\n");
        if (v.WorstLayers.Count > MaxChartLayers)
        {
            html.Append(C, $"<p class=\"muted\">{v.WorstLayers.Count - MaxChartLayers} more layer(s) add less noise and are not drawn (they are in the JSON report).</p>\n");
        }

        var worst = v.WorstLayers.Take(HighlightedLayers).Select(l => l.Node).ToList();
        html.Append(C, $"<p>To keep the worst layers in float: <code>QuantizeExcludeNodes=\"{E(string.Join(";", worst))}\"</code> (or <code>--exclude-nodes \"{E(string.Join(";", worst))}\"</code>).</p>\n");
    }

    /// <summary>A horizontal bar chart of the layers' SQNR (inline SVG, no scripts).</summary>
    internal static string Chart(IReadOnlyList<LayerError> layers)
    {
        var shown = layers.Take(MaxChartLayers).ToList();
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
            var worst = i < HighlightedLayers;
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

    private static void Coverage(StringBuilder html, CoverageReport? coverage)
    {
        if (coverage is null)
        {
            return;
        }

        html.Append("<h2>Calibration coverage</h2>\n");
        html.Append(C, $"<p class=\"sub\">Share of the validation activations outside the calibrated INT8 ranges (clipped): {E(Num(coverage.Share))} % of {coverage.Elements:N0} values in {coverage.Tensors} quantized tensor(s) ");
        html.Append(coverage.Poor
            ? "<span class=\"badge warn\">the calibration set does not represent the validation data</span>"
            : "<span class=\"badge ok\">representative</span>");
        html.Append("</p>\n");
        if (coverage.WorstTensors.Count == 0)
        {
            return;
        }

        var exceeding = coverage.Exceeding.ToHashSet();
        html.Append("<table>\n<tr><th>tensor</th><th>calibrated range</th><th>clipped</th><th>share</th></tr>\n");
        foreach (var t in coverage.WorstTensors)
        {
            html.Append(C, $"<tr{(exceeding.Contains(t) ? " class=\"failed\"" : "")}><td><code>{E(t.Tensor)}</code></td><td class=\"num\">[{E(Num(t.Low))}, {E(Num(t.High))}]</td>");
            html.Append(C, $"<td class=\"num\">{t.Clipped:N0} / {t.Elements:N0}</td><td class=\"num\">{E(Num(t.Share))} %</td></tr>\n");
        }

        html.Append("</table>\n");
        if (coverage.WorstSamples.Count > 0)
        {
            html.Append(C, $"<p class=\"muted\">Samples that clip most: {E(string.Join(", ", coverage.WorstSamples.Select(x => $"{x.Sample} ({Num(x.Share)} %)")))}.</p>\n");
        }
    }

    private static void Images(StringBuilder html, QuantizeResult r)
    {
        if (r.ImageSamples.Count == 0)
        {
            return;
        }

        html.Append(r.Validation is null ? "<h2>Calibration samples</h2>\n" : "<h2>Validation samples</h2>\n");
        html.Append(C, $"<p class=\"sub\">FP32 output | INT8 output | |FP32 &minus; INT8| &times; {DifferenceGain} (black = identical).</p>\n");
        foreach (var s in r.ImageSamples)
        {
            var (fp32, int8, diff, stats) = SampleImages(s);
            html.Append(C, $"<h3>Sample {E(s.Sample)}, output {E(s.Output)} <span class=\"muted\">[{string.Join(", ", s.Shape)}]</span></h3>\n<div class=\"samples\">\n");
            Figure(html, fp32, $"FP32 ({s.Sample})", "FP32");
            Figure(html, int8, $"INT8 ({s.Sample})", "INT8");
            Figure(html, diff, $"difference ({s.Sample})", $"|diff| × {DifferenceGain}: {stats}");
            html.Append("</div>\n");
        }
    }

    private static void Figure(StringBuilder html, byte[] png, string alt, string caption) =>
        html.Append(C, $"<figure><img alt=\"{E(alt)}\" src=\"data:image/png;base64,{Convert.ToBase64String(png)}\"><figcaption>{E(caption)}</figcaption></figure>\n");

    /// <summary>The three PNGs of one sample. Values in about [0, 1] are shown as they are; others are scaled by FP32's range.</summary>
    internal static (byte[] Fp32, byte[] Int8, byte[] Diff, string Stats) SampleImages(OutputSample s)
    {
        var channels = (int)s.Shape[1];
        var height = (int)s.Shape[2];
        var width = (int)s.Shape[3];
        var plane = width * height;
        var step = Math.Max(1, (int)Math.Ceiling((double)Math.Max(width, height) / MaxImageSide));
        var outW = (width + step - 1) / step;
        var outH = (height + step - 1) / step;

        float lo = float.PositiveInfinity, hi = float.NegativeInfinity;
        foreach (var value in s.Fp32)
        {
            if (float.IsFinite(value))
            {
                lo = Math.Min(lo, value);
                hi = Math.Max(hi, value);
            }
        }

        if (!(lo <= hi))
        {
            (lo, hi) = (0, 1);
        }
        else if (lo >= -0.05f && hi <= 1.05f)
        {
            (lo, hi) = (0, 1); // an image in [0, 1]
        }
        else if (hi - lo < 1e-12f)
        {
            hi = lo + 1;
        }

        var scale = 255.0 / (hi - lo);
        var a = new byte[outW * outH * 3];
        var b = new byte[a.Length];
        var d = new byte[a.Length];
        double maxDiff = 0, sumDiff = 0;
        for (var i = 0; i < s.Fp32.Length; i++)
        {
            var e = Math.Abs((double)s.Fp32[i] - s.Int8[i]);
            if (double.IsFinite(e))
            {
                maxDiff = Math.Max(maxDiff, e);
                sumDiff += e;
            }
        }

        for (var y = 0; y < outH; y++)
        {
            for (var x = 0; x < outW; x++)
            {
                var p = ((y * outW) + x) * 3;
                var source = (y * step * width) + (x * step);
                for (var c = 0; c < 3; c++)
                {
                    var index = ((channels == 1 ? 0 : c) * plane) + source;
                    var fa = s.Fp32[index];
                    var fb = s.Int8[index];
                    a[p + c] = Byte((fa - lo) * scale);
                    b[p + c] = Byte((fb - lo) * scale);
                    d[p + c] = Byte(Math.Abs((double)fa - fb) * scale * DifferenceGain);
                }
            }
        }

        var stats = string.Format(C, "mean {0}, max {1}", CheckResult.Number(sumDiff / Math.Max(1, s.Fp32.Length)), CheckResult.Number(maxDiff));
        return (HtmlReportPng.Encode(outW, outH, a), HtmlReportPng.Encode(outW, outH, b), HtmlReportPng.Encode(outW, outH, d), stats);
    }

    private static byte Byte(double v) => double.IsNaN(v) ? (byte)0 : (byte)Math.Clamp(Math.Round(v), 0, 255);

    private static void Fidelity(StringBuilder html, QuantizeResult r)
    {
        if (r.Fidelity.Count == 0)
        {
            return;
        }

        html.Append(C, $"<h2>Fidelity on calibration samples</h2>\n<p class=\"sub\">INT8 vs FP32 on {r.FidelitySamples} calibration sample(s).</p>\n");
        html.Append("<table>\n<tr><th>output</th><th>SQNR</th><th>max abs error</th></tr>\n");
        foreach (var f in r.Fidelity)
        {
            html.Append(C, $"<tr><td>{E(f.Output)}</td><td class=\"num\">{f.SqnrDb:F1} dB</td><td class=\"num\">{E(CheckResult.Number(f.MaxAbsError))}</td></tr>\n");
        }

        html.Append("</table>\n");
    }

    private static void Fusion(StringBuilder html, FusionReport fusion)
    {
        html.Append("<h2>Fusion</h2>\n");
        html.Append(C, $"<p class=\"sub\">What ONNX Runtime made of the QDQ model: {fusion.FusedCount} integer kernel(s); {fusion.RemainingQuantizeLinear} QuantizeLinear and {fusion.RemainingDequantizeLinear} DequantizeLinear left after fusion.</p>\n");
        if (fusion.IntegerKernels.Count > 0)
        {
            html.Append("<table>\n<tr><th>integer kernel</th><th>count</th></tr>\n");
            foreach (var (op, count) in fusion.IntegerKernels)
            {
                html.Append(C, $"<tr><td>{E(op)}</td><td class=\"num\">{count}</td></tr>\n");
            }

            html.Append("</table>\n");
        }

        if (fusion.UnfusedNodes.Count == 0)
        {
            html.Append("<p><span class=\"badge ok\">every quantized node group was fused</span></p>\n");
            return;
        }

        html.Append(C, $"<h3>Un-fused groups ({fusion.UnfusedNodes.Count})</h3>\n<p class=\"muted\">DequantizeLinear &rarr; float op &rarr; QuantizeLinear: bigger and slower than FP32; excluding them may make INT8 faster.</p>\n<ul>\n");
        foreach (var node in fusion.UnfusedNodes)
        {
            html.Append(C, $"<li><code>{E(node)}</code></li>\n");
        }

        html.Append("</ul>\n");
    }

    private static void Warnings(StringBuilder html, IReadOnlyList<Diagnostic> warnings)
    {
        html.Append(C, $"<h2>Warnings ({warnings.Count})</h2>\n");
        if (warnings.Count == 0)
        {
            html.Append("<p class=\"muted\">None.</p>\n");
            return;
        }

        foreach (var w in warnings)
        {
            html.Append(C, $"<div class=\"warning\"><strong>{E(w.Code)}</strong> {E(w.Message)}</div>\n");
        }
    }

    private static void Settings(StringBuilder html, QuantizeResult r)
    {
        html.Append("<h2>Settings</h2>\n<table>\n");
        foreach (var (key, value) in r.Settings.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            html.Append(C, $"<tr><th>{E(key)}</th><td>{(value.Length == 0 ? "<span class=\"muted\">default</span>" : $"<code>{E(value)}</code>")}</td></tr>\n");
        }

        html.Append(C, $"<tr><th>tool version</th><td><code>{E(Quantizer.ToolVersion)}</code></td></tr>\n");
        html.Append("</table>\n");
    }

    private static string Num(double v) => CheckResult.Number(v);

    private static string Ci(ConfidenceInterval? interval) => interval is null ? "" : $" <span class=\"ci\">{E(interval.ToString())}</span>";

    private static string Mb(long bytes) => string.Format(C, "{0:F2} MB", bytes / 1e6);

    /// <summary>HTML-encodes text (element content and attribute values).</summary>
    private static string E(string? text) => WebUtility.HtmlEncode(text ?? "");
}
