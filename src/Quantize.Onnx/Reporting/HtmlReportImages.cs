using System.Text;
using Quantize.Onnx.Validation;
using static Quantize.Onnx.Reporting.HtmlText;

namespace Quantize.Onnx.Reporting;

/// <summary>The sample section of the <see cref="HtmlReport"/>: FP32, INT8 and their amplified difference side by side, as PNGs.</summary>
internal static class HtmlReportImages
{
    public static void Images(StringBuilder html, QuantizeResult r)
    {
        if (r.ImageSamples.Count == 0)
        {
            return;
        }

        html.Append(r.Validation is null ? "<h2>Calibration samples</h2>\n" : "<h2>Validation samples</h2>\n");
        html.Append(C, $"<p class=\"sub\">FP32 output | INT8 output | |FP32 &minus; INT8| &times; {HtmlReport.DifferenceGain} (black = identical).</p>\n");
        foreach (var s in r.ImageSamples)
        {
            var (fp32, int8, diff, stats) = SampleImages(s);
            html.Append(C, $"<h3>Sample {E(s.Sample)}, output {E(s.Output)} <span class=\"muted\">[{string.Join(", ", s.Shape)}]</span></h3>\n<div class=\"samples\">\n");
            Figure(html, fp32, $"FP32 ({s.Sample})", "FP32");
            Figure(html, int8, $"INT8 ({s.Sample})", "INT8");
            Figure(html, diff, $"difference ({s.Sample})", $"|diff| × {HtmlReport.DifferenceGain}: {stats}");
            html.Append("</div>\n");
        }
    }

    private static void Figure(StringBuilder html, byte[] png, string alt, string caption) =>
        html.Append(C, $"<figure><img alt=\"{E(alt)}\" src=\"data:image/png;base64,{Convert.ToBase64String(png)}\"><figcaption>{E(caption)}</figcaption></figure>\n");

    /// <summary>The three PNGs of one sample. Values in about [0, 1] are shown as they are; others are scaled by FP32's range.</summary>
    public static (byte[] Fp32, byte[] Int8, byte[] Diff, string Stats) SampleImages(OutputSample s)
    {
        var channels = (int)s.Shape[1];
        var height = (int)s.Shape[2];
        var width = (int)s.Shape[3];
        var plane = width * height;
        var step = Math.Max(1, (int)Math.Ceiling((double)Math.Max(width, height) / HtmlReport.MaxImageSide));
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
                    d[p + c] = Byte(Math.Abs((double)fa - fb) * scale * HtmlReport.DifferenceGain);
                }
            }
        }

        var stats = string.Format(C, "mean {0}, max {1}", CheckResult.Number(sumDiff / Math.Max(1, s.Fp32.Length)), CheckResult.Number(maxDiff));
        return (HtmlReportPng.Encode(outW, outH, a), HtmlReportPng.Encode(outW, outH, b), HtmlReportPng.Encode(outW, outH, d), stats);
    }

    private static byte Byte(double v) => double.IsNaN(v) ? (byte)0 : (byte)Math.Clamp(Math.Round(v), 0, 255);
}
