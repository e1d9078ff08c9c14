using System.Text;
using Quantize.Onnx.Validation;
using static Quantize.Onnx.Reporting.HtmlText;

namespace Quantize.Onnx.Reporting;

/// <summary>
/// The sections of the <see cref="HtmlReport"/> about the build itself: what shipped (sizes, latency, kernels), the
/// hardware it was decided on, ORT's fusion, the warnings and the settings.
/// </summary>
internal static class HtmlReportSummary
{
    public static void Overview(StringBuilder html, QuantizeResult r)
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
    public static void Targets(StringBuilder html, QuantizeResult r)
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

    public static void Fusion(StringBuilder html, FusionReport fusion)
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

    public static void Warnings(StringBuilder html, IReadOnlyList<Diagnostic> warnings)
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

    public static void Settings(StringBuilder html, QuantizeResult r)
    {
        html.Append("<h2>Settings</h2>\n<table>\n");
        foreach (var (key, value) in r.Settings.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            html.Append(C, $"<tr><th>{E(key)}</th><td>{(value.Length == 0 ? "<span class=\"muted\">default</span>" : $"<code>{E(value)}</code>")}</td></tr>\n");
        }

        html.Append(C, $"<tr><th>tool version</th><td><code>{E(Quantizer.ToolVersion)}</code></td></tr>\n");
        html.Append("</table>\n");
    }

    private static string Mb(long bytes) => string.Format(C, "{0:F2} MB", bytes / 1e6);
}
