using Google.Protobuf;
using Quantize.Onnx.Calibration;
using Quantize.Onnx.Model;
using Quantize.Onnx.Tests.TestModels;

namespace Quantize.Onnx.Tests.Reliability;

/// <summary>
/// Same inputs, same bytes, whatever ONNX Runtime's thread count: calibration ranges are exact
/// min/max (order-free), bias correction runs on one thread. (Across processes: FaultTests builds the
/// same project sequentially and twice at once and compares the bytes; in one process:
/// QuantizerBehaviourTests.) Timing-dependent decisions are off here (keep-float-if-slower false).
/// </summary>
public sealed class DeterminismTests : IDisposable
{
    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    [Fact]
    public void Calibration_thread_count_does_not_change_a_single_byte_of_the_output()
    {
        // The real waifu2x model (its input is [1, 3, H, W]) on 64x64 inputs, and the generated conv net.
        string waifu2x = Path.Combine(AppContext.BaseDirectory, "Seeds", "waifu2x.onnx");
        long[] shape = [1, 3, 64, 64];
        string waifu2xCalibration = QuantizeTestKit.WriteCalibration(_folder.Sub("waifu2x-calibration"), "input", shape, QuantizeTestKit.CalibrationSeeds.Take(4));
        var (convNet, convNetCalibration) = QuantizeTestKit.Prepare(TestNets.ConvNet(width: 16), _folder.Sub("convnet"));

        foreach (var (model, calibration) in new[] { (waifu2x, waifu2xCalibration), (convNet, convNetCalibration) })
        {
            var outputs = new List<byte[]>();
            try
            {
                foreach (int threads in new[] { 1, 2, 4 })
                {
                    MinMaxCalibrator.IntraOpThreads = threads;
                    string output = Path.Combine(_folder.Path, $"{Path.GetFileNameWithoutExtension(model)}.{threads}.onnx");
                    new Quantizer(QuantizeTestKit.Options()).Run(model, calibration, output);
                    outputs.Add(File.ReadAllBytes(output));
                }
            }
            finally
            {
                MinMaxCalibrator.IntraOpThreads = 0;
            }

            Assert.All(outputs, o => Assert.Equal(outputs[0], o));
            Assert.Contains(ModelLoader.Parse(outputs[0], model).Graph.Node, n => n.OpType == "QuantizeLinear");
        }
    }

    [Fact]
    public void The_order_of_the_calibration_samples_does_not_change_the_graph()
    {
        // Ranges are min/max and the bias-correction means are summed in double: with the same samples, any
        // shuffle gives the same graph (only the seed in the provenance metadata differs).
        var (model, calibration) = QuantizeTestKit.Prepare(TestNets.ConvNet(width: 16), _folder.Sub("order"));
        var graphs = new List<byte[]>();
        foreach (int? seed in new int?[] { null, 1, 2 })
        {
            string output = Path.Combine(_folder.Path, $"order.{seed}.onnx");
            new Quantizer(QuantizeTestKit.Options() with { CalibrationShuffleSeed = seed }).Run(model, calibration, output);
            graphs.Add(ModelLoader.Load(output).Graph.ToByteArray());
        }

        Assert.All(graphs, g => Assert.Equal(graphs[0], g));
    }
}
