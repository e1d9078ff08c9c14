using System.Buffers.Binary;
using Quantize.Onnx.Reporting;
using Quantize.Onnx.Samples;
using Quantize.Onnx.Samples.Images;
using Quantize.Onnx.Tests.TestModels;
using SkiaSharp;

namespace Quantize.Onnx.Tests.Reliability;

/// <summary>The bugs the user-data fuzz campaign (seed 15, 10,000 cases) found, each pinned by its smallest input.</summary>
public sealed class FuzzFoundBugTests : IDisposable
{
    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    [Fact]
    public void A_sample_list_entry_with_a_nul_character_is_a_coded_error_not_an_argument_exception()
    {
        var list = _folder.File("samples.txt");
        File.WriteAllText(list, "a\0b/input.npy\n");

        var e = Assert.Throws<QuantizeException>(() => SampleListFile.Read(list));

        Assert.Equal(ErrorCodes.SampleListEntryMissing, e.Code);
        Assert.Contains("NUL", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Through_the_library_an_output_folder_that_is_a_file_is_QNT1006_before_calibration()
    {
        var (model, calibration) = QuantizeTestKit.Prepare(TestNets.ConvNet(), _folder.Path);
        File.WriteAllText(_folder.File("blocker"), "");

        var e = Assert.Throws<QuantizeException>(() => new Quantizer(QuantizeTestKit.Options()).Run(model, calibration, Path.Combine(_folder.File("blocker"), "out.onnx")));

        Assert.Equal(ErrorCodes.OutputNotWritable, e.Code);
        Assert.Contains("is a file", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(-1)]
    [InlineData(1_000_000)]
    public void An_app_thread_count_out_of_range_is_QNT1201_instead_of_a_million_threads(int threads)
    {
        var (model, calibration) = QuantizeTestKit.Prepare(TestNets.ConvNet(), _folder.Path);

        var e = Assert.Throws<QuantizeException>(() => new Quantizer(QuantizeTestKit.Options() with { AppThreads = threads }).Run(model, calibration, _folder.File("out.onnx")));

        Assert.Equal(ErrorCodes.InvalidOption, e.Code);
    }

    [Theory]
    [InlineData(65535u)]
    [InlineData(100_000u)]
    public void A_png_declaring_more_pixels_than_a_sample_may_have_is_QNT1106_not_an_overflow_or_a_native_crash(uint side)
    {
        // A real 16x16 PNG whose IHDR (valid CRC) claims side x side: Skia's int buffer size overflowed, and at 100000²
        // the native decoder wrote past a 1.3 GB buffer (SIGSEGV).
        using var bitmap = new SKBitmap(16, 16);
        using var data = bitmap.Encode(SKEncodedImageFormat.Png, 100);
        var png = data.ToArray();
        BinaryPrimitives.WriteUInt32BigEndian(png.AsSpan(16), side);
        BinaryPrimitives.WriteUInt32BigEndian(png.AsSpan(20), side);
        BinaryPrimitives.WriteUInt32BigEndian(png.AsSpan(29), HtmlReportPng.Crc32(png.AsSpan(12, 17)));
        var path = _folder.File("huge.png");
        File.WriteAllBytes(path, png);

        var e = Assert.Throws<QuantizeException>(() => ImageDecoder.Decode(path));

        Assert.Equal(ErrorCodes.CalibrationFileUnreadable, e.Code);
        Assert.Contains("pixels", e.Message, StringComparison.Ordinal);
    }
}
