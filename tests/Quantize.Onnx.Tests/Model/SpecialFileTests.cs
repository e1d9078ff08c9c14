using System.Diagnostics;
using Quantize.Onnx.Samples;
using Quantize.Onnx.Tests.TestModels;

namespace Quantize.Onnx.Tests.Model;

/// <summary>Runs only where named pipes can be made (mkfifo on Linux); skipped, with the reason, elsewhere.</summary>
public sealed class FifoFactAttribute : FactAttribute
{
    public FifoFactAttribute()
    {
        if (!OperatingSystem.IsLinux() || !File.Exists("/usr/bin/mkfifo"))
        {
            Skip = "needs Linux and /usr/bin/mkfifo (the special-file check runs on Linux only)";
        }
    }
}

/// <summary>
/// A named pipe where a file is read used to block the run in open() forever — in a build until QuantizeTimeoutSeconds
/// (issue 15, item 2). Every input is now checked first: a FIFO is a coded error naming it, at once.
/// </summary>
public sealed class SpecialFileTests : IDisposable
{
    private static readonly TimeSpan Hang = TimeSpan.FromSeconds(20);
    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    [FifoFact]
    public void A_fifo_as_the_model_is_QNT1001_at_once() =>
        AssertRefused(ErrorCodes.ModelNotFound, "named pipe", root =>
        {
            var model = Fifo(Path.Combine(root, "model.onnx"));
            var calibration = QuantizeTestKit.WriteCalibration(Path.Combine(root, "cal"), "x", [1, 3, 8, 8]);
            new Quantizer(QuantizeTestKit.Options()).Run(model, calibration, Path.Combine(root, "out.onnx"));
        });

    [FifoFact]
    public void A_fifo_as_a_calibration_sample_is_QNT1106_at_once() =>
        AssertRefused(ErrorCodes.CalibrationFileUnreadable, "named pipe", root =>
        {
            var net = TestNets.ConvNet();
            var (model, calibration) = QuantizeTestKit.Prepare(net, root);
            var sample = Directory.CreateDirectory(Path.Combine(calibration, "sample_zzz")).FullName;
            Fifo(Path.Combine(sample, net.InputName + ".npy"));
            new Quantizer(QuantizeTestKit.Options()).Run(model, calibration, Path.Combine(root, "out.onnx"));
        });

    [FifoFact]
    public void A_fifo_as_a_tensor_proto_or_image_sample_is_refused_by_its_reader() =>
        AssertRefused(ErrorCodes.CalibrationFileUnreadable, "named pipe", root =>
        {
            var pb = Fifo(Path.Combine(root, "input_0.pb"));
            var png = Fifo(Path.Combine(root, "photo.png"));
            Assert.Equal(ErrorCodes.CalibrationFileUnreadable, Assert.Throws<QuantizeException>(() => TensorProtoReader.Read(pb)).Code);
            Onnx.Samples.Images.ImageDecoder.Decode(png);
        });

    [FifoFact]
    public void A_fifo_as_an_external_data_file_is_QNT1004_at_once() =>
        AssertRefused(ErrorCodes.ExternalDataUnreadable, "named pipe", root =>
        {
            var model = ModelTestKit.MatMulModel();
            ModelTestKit.MakeExternal(model.Graph.Initializer[0], "w.bin");
            ModelTestKit.WriteModel(model, Path.Combine(root, "m.onnx"));
            Fifo(Path.Combine(root, "w.bin"));
            Onnx.Model.ModelLoader.Load(Path.Combine(root, "m.onnx"));
        });

    [FifoFact]
    public void A_regular_file_and_a_device_are_told_apart()
    {
        Assert.Null(Quantize.Common.RegularFile.SpecialKind(typeof(SpecialFileTests).Assembly.Location));
        Assert.Equal("a device", Quantize.Common.RegularFile.SpecialKind("/dev/zero"));
        Assert.Null(Quantize.Common.RegularFile.SpecialKind(_folder.File("missing")));
    }

    /// <summary>Runs <paramref name="act"/> off the test thread, so that a regression hangs 20 s, not the suite.</summary>
    private void AssertRefused(string code, string message, Action<string> act)
    {
        var root = _folder.Path;
        var run = Task.Run(() => act(root));
        var watch = Stopwatch.StartNew();
        var finished = Task.WhenAny(run, Task.Delay(Hang)).GetAwaiter().GetResult() == run;
        Assert.True(finished, $"still blocked after {Hang.TotalSeconds} s: a FIFO was opened for reading");
        var e = Assert.IsType<QuantizeException>(run.Exception?.InnerException);
        Assert.Equal(code, e.Code);
        Assert.Contains(message, e.Message, StringComparison.Ordinal);
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(10), $"took {watch.Elapsed.TotalSeconds:F1} s");
    }

    private static string Fifo(string path)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        using var mkfifo = Process.Start(new ProcessStartInfo("/usr/bin/mkfifo", [path]) { UseShellExecute = false })!;
        mkfifo.WaitForExit();
        Assert.Equal(0, mkfifo.ExitCode);
        return path;
    }
}
