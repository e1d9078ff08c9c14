using System.Text;
using Quantize.Onnx.Validation;
using static Quantize.Onnx.Reporting.HtmlText;

namespace Quantize.Onnx.Reporting;

/// <summary>
/// The sections of the <see cref="HtmlReport"/> about accuracy: the checks of the gate, what tuning tried, the metrics,
/// calibration coverage and the fidelity on calibration samples.
/// </summary>
internal static class HtmlReportAccuracy
{
    public static void Validation(StringBuilder html, QuantizeResult r)
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
    public static void Tuning(StringBuilder html, Onnx.Tuning.TuningReport? t)
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

    public static void Metrics(StringBuilder html, ValidationReport? v)
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

    public static void Coverage(StringBuilder html, CoverageReport? coverage)
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

    public static void Fidelity(StringBuilder html, QuantizeResult r)
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

    private static string Num(double v) => CheckResult.Number(v);

    private static string Ci(ConfidenceInterval? interval) => interval is null ? "" : $" <span class=\"ci\">{E(interval.ToString())}</span>";
}
