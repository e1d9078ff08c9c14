using System.Buffers.Binary;
using System.Diagnostics;
using System.IO.Compression;
using System.Text.RegularExpressions;
using Quantize.Onnx.Reporting;
using Quantize.Onnx.Tests.TestModels;
using Quantize.Onnx.Validation;
using Xunit.Abstractions;

namespace Quantize.Onnx.Tests.Reporting;

/// <summary>The HTML report: self-contained structure, escaping, valid embedded PNGs, and a render in headless Chromium where it is installed.</summary>
public sealed partial class HtmlReportTests(ITestOutputHelper output) : IDisposable
{
    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    /// <summary>A small super-resolution-like net whose output is an RGB image: conv 3→8 → relu → conv 8→3, 1×3×16×16.</summary>
    private static TestNet ImageNet()
    {
        var b = new TestModelBuilder(opset: 13, seed: 23, name: "image & <net>");
        var x = b.Input(TestNets.ImageInput, TestNets.ImageShape);
        var h = b.Relu("relu<1>", b.Conv("conv<1>", x, 3, 8));
        b.Conv("conv\"2\"", h, 8, 3);
        b.Output("conv\"2\"", TestNets.ImageShape);
        return new TestNet(b.Build(), TestNets.ImageInput, TestNets.ImageShape, b.ConvNodes);
    }

    private QuantizeResult Quantize(bool withValidation = true, params string[] checks)
    {
        var net = ImageNet();
        var (model, calibration) = QuantizeTestKit.Prepare(net, _folder.Path);
        var validation = withValidation ? QuantizeTestKit.WriteCalibration(Path.Combine(_folder.Path, "validation"), net.InputName, net.InputShape, QuantizeTestKit.HeldOutSeeds) : null;
        var options = QuantizeTestKit.Options() with
        {
            Validation = new ValidationOptions { Folder = validation, Checks = checks.Select(AccuracyCheck.Parse).ToList(), LayerSamples = 2 },
        };
        return new Quantizer(options).Run(model, calibration, _folder.File("out.onnx"));
    }

    [Fact]
    public void The_page_is_self_contained_with_metrics_checks_chart_images_fusion_and_escaped_names()
    {
        var result = Quantize(checks: ["sqnr>=10", "max-abs-error<=100"]);
        var html = HtmlReport.Render(result);

        Assert.StartsWith("<!DOCTYPE html>", html, StringComparison.Ordinal);
        Assert.Contains("<svg", html, StringComparison.Ordinal);
        Assert.Contains("data:image/png;base64,", html, StringComparison.Ordinal);
        Assert.DoesNotContain("http://", html, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("https://", html, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("<script", html, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("<link", html, StringComparison.OrdinalIgnoreCase);

        // Every check and every metric has its row; names are HTML-encoded.
        var v = Assert.IsType<ValidationReport>(result.Validation);
        Assert.Contains("<code>sqnr&gt;=10</code>", html, StringComparison.Ordinal);
        Assert.Contains("<code>max-abs-error&lt;=100</code>", html, StringComparison.Ordinal);
        Assert.Equal(v.Checks.Count, CountOf(html, "<span class=\"badge ok\">pass</span>"));
        foreach (var m in v.Metrics)
        {
            Assert.Contains($"<td>conv&quot;2&quot;</td><td>{m.Metric}</td>", html, StringComparison.Ordinal);
        }

        // The checked metric's row is bold; values carry their bootstrap interval.
        Assert.Contains("<tr class=\"checked\"><td>conv&quot;2&quot;</td><td>sqnr</td>", html, StringComparison.Ordinal);
        Assert.DoesNotContain("<tr class=\"checked\"><td>conv&quot;2&quot;</td><td>cosine</td>", html, StringComparison.Ordinal);
        Assert.Contains($"<span class=\"ci\">{v.Checks[0].Interval}</span>", html, StringComparison.Ordinal);

        Assert.DoesNotContain("conv<1>", html, StringComparison.Ordinal);
        Assert.DoesNotContain("relu<1>", html, StringComparison.Ordinal);
        Assert.Contains("conv&lt;1&gt;", html, StringComparison.Ordinal);

        // Sizes, latency, fusion, one chart bar per layer, the worst in red.
        Assert.Contains(string.Format(System.Globalization.CultureInfo.InvariantCulture, "{0:F2} MB", result.Fp32Bytes / 1e6), html, StringComparison.Ordinal);
        Assert.Contains("speed-up", html, StringComparison.Ordinal);
        Assert.Contains("QLinearConv", html, StringComparison.Ordinal);
        Assert.NotEmpty(v.WorstLayers);
        Assert.Equal(v.WorstLayers.Count, CountOf(html, "<g><title>"));
        Assert.Contains("fill=\"#cf222e\"", html, StringComparison.Ordinal);

        // Calibration coverage of the validation data, when it was measured.
        Assert.Equal(v.Coverage is not null, html.Contains("<h2>Calibration coverage</h2>", StringComparison.Ordinal));

        // Three validation samples, FP32 | INT8 | difference each, at most HtmlReportSamples.MaxSamples.
        var images = PngDataUris().Matches(html).Select(m => Convert.FromBase64String(m.Groups[1].Value)).ToList();
        Assert.Equal(3 * HtmlReportSamples.MaxSamples, images.Count);
        Assert.All(images, png => AssertValidPng(png, 16, 16));
        output.WriteLine($"{html.Length} characters, {images.Count} images");
    }

    [Fact]
    public void A_failed_gate_carries_its_measurements_and_the_page_shows_the_failing_check()
    {
        var e = Assert.Throws<QuantizeException>(() => Quantize(checks: ["sqnr>=80"]));

        Assert.Equal(ErrorCodes.AccuracyCheckFailed, e.Code);
        var result = Assert.IsType<QuantizeResult>(e.Result);
        Assert.Equal(OutputKind.NotWritten, result.Output);
        Assert.False(File.Exists(_folder.File("out.onnx")));
        var html = HtmlReport.Render(result);
        Assert.Contains("nothing written: the gate failed", html, StringComparison.Ordinal);
        Assert.Contains("<tr class=\"failed\"><td><code>sqnr&gt;=80</code></td>", html, StringComparison.Ordinal);
        Assert.Contains("<span class=\"badge fail\">FAIL</span>", html, StringComparison.Ordinal);
        Assert.Contains("data:image/png;base64,", html, StringComparison.Ordinal);
    }

    [Fact]
    public void Without_validation_the_images_come_from_the_calibration_fidelity_samples()
    {
        var result = Quantize(withValidation: false);
        var html = HtmlReport.Render(result);

        Assert.Null(result.Validation);
        Assert.Contains("No validation data", html, StringComparison.Ordinal);
        Assert.Contains("<h2>Calibration samples</h2>", html, StringComparison.Ordinal);
        Assert.Equal(3 * QuantizeTestKit.Options().FidelitySamples, PngDataUris().Matches(html).Count);
    }

    [Fact]
    public void Difference_image_is_black_where_the_models_agree_and_amplified_where_they_differ()
    {
        var fp32 = new float[3 * 2 * 2];
        var int8 = new float[fp32.Length];
        Array.Fill(fp32, 0.5f);
        Array.Fill(int8, 0.5f);
        int8[0] = 0.52f; // red channel, pixel (0, 0): |diff| 0.02 x 10 x 255 = 51
        var (a, b, d, stats) = HtmlReport.SampleImages(new OutputSample("000", "out", [1, 3, 2, 2], fp32, int8));

        var diff = DecodeRgb(d, 2, 2);
        Assert.Equal([51, 0, 0], diff[..3]);
        Assert.All(diff[3..], x => Assert.Equal(0, x));
        Assert.All(DecodeRgb(a, 2, 2), x => Assert.Equal(128, x));
        Assert.Equal(133, DecodeRgb(b, 2, 2)[0]);
        Assert.Contains("max 0.02", stats, StringComparison.Ordinal);
    }

    [Fact]
    public void Png_crc_matches_the_reference_value()
    {
        // The CRC-32 check value of "123456789".
        Assert.Equal(0xCBF43926u, HtmlReportPng.Crc32("123456789"u8));
        // IEND's CRC is fixed by the PNG spec.
        Assert.Equal(0xAE426082u, HtmlReportPng.Crc32("IEND"u8));
    }

    [Fact]
    public void Write_is_atomic_and_leaves_no_temporary_file()
    {
        var result = Quantize(withValidation: false);
        var path = _folder.File("reports/model.report.html");

        HtmlReport.Write(result, path);

        Assert.True(File.Exists(path));
        Assert.Equal(["model.report.html"], Directory.GetFiles(Path.GetDirectoryName(path)!).Select(Path.GetFileName));
    }

    /// <summary>The report renders in headless Chromium without console errors (build/render-report.sh); skipped where chromium is not installed.</summary>
    [ChromiumFact]
    public void Renders_in_headless_Chromium()
    {
        var html = _folder.File("model.report.html");
        HtmlReport.Write(Quantize(), html);
        var png = _folder.File("model.report.png");

        var start = new ProcessStartInfo("bash", [RenderScript(), html, png]) { RedirectStandardOutput = true, RedirectStandardError = true };
        using var process = Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync();
        var stdout = process.StandardOutput.ReadToEnd();
        Assert.True(process.WaitForExit(TimeSpan.FromMinutes(3)), "chromium did not finish");
        output.WriteLine(stdout + stderr.Result);

        Assert.Equal(0, process.ExitCode);
        AssertValidPng(File.ReadAllBytes(png), 1280, 2000);
    }

    private static string RenderScript() => Path.Combine(Repository.Root, "build", "render-report.sh");

    private static int CountOf(string text, string value) => Regex.Matches(text, Regex.Escape(value)).Count;

    /// <summary>Signature, IHDR (size, 8-bit RGB) and every chunk's CRC.</summary>
    private static void AssertValidPng(byte[] png, int width, int height)
    {
        Assert.Equal([137, 80, 78, 71, 13, 10, 26, 10], png[..8]);
        Assert.Equal("IHDR"u8.ToArray(), png[12..16]);
        Assert.Equal(width, BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(16)));
        Assert.Equal(height, BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(20)));
        if (png.Length < 10_000)
        {
            Assert.Equal(8, png[24]);
            Assert.Equal(2, png[25]);
        }

        var chunks = new List<string>();
        for (var at = 8; at < png.Length;)
        {
            var length = BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(at));
            var type = png.AsSpan(at + 4, 4);
            var crc = BinaryPrimitives.ReadUInt32BigEndian(png.AsSpan(at + 8 + length));
            Assert.Equal(HtmlReportPng.Crc32(png.AsSpan(at + 8, length), HtmlReportPng.Crc32(type)), crc);
            chunks.Add(System.Text.Encoding.ASCII.GetString(type));
            at += 12 + length;
        }

        Assert.Equal("IHDR", chunks[0]);
        Assert.Contains("IDAT", chunks);
        Assert.Equal("IEND", chunks[^1]);
    }

    /// <summary>The pixels of one of our PNGs (one IDAT, filter type 0 on every row).</summary>
    private static byte[] DecodeRgb(byte[] png, int width, int height)
    {
        var at = 8 + 25; // signature, IHDR
        var length = BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(at));
        using var zlib = new ZLibStream(new MemoryStream(png, at + 8, length), CompressionMode.Decompress);
        using var raw = new MemoryStream();
        zlib.CopyTo(raw);
        var rows = raw.ToArray();
        Assert.Equal(height * ((3 * width) + 1), rows.Length);
        return Enumerable.Range(0, height).SelectMany(y => rows.Skip((y * ((3 * width) + 1)) + 1).Take(3 * width)).ToArray();
    }

    [GeneratedRegex("data:image/png;base64,([A-Za-z0-9+/=]+)")]
    private static partial Regex PngDataUris();
}

/// <summary>A test that needs Debian's <c>chromium</c> on PATH; skipped elsewhere (CI does not install it).</summary>
public sealed class ChromiumFactAttribute : FactAttribute
{
    public ChromiumFactAttribute()
    {
        if (OperatingSystem.IsWindows() || !OnPath("chromium"))
        {
            Skip = "chromium is not installed (apt-get install -y chromium); the HTML report render test runs where it is.";
        }
    }

    private static bool OnPath(string name) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Any(dir => File.Exists(Path.Combine(dir, name)));
}
