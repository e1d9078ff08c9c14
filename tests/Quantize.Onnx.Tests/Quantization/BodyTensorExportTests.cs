using Quantize.Onnx.Tests.TestModels;
using Quantize.Onnx.Validation;
using Xunit.Abstractions;

namespace Quantize.Onnx.Tests.Quantization;

/// <summary>
/// Every control-flow test net through the passes that read whole body tensors (histogram calibration, the per-layer
/// analysis): nested Ifs, an If inside a Loop (not exported), a Scan, a Loop that never iterates on calibration data, a
/// data-movement op before an If, weights as Constant nodes in a branch. Each comes out valid and close to FP32, with
/// its layers analysed.
/// </summary>
public sealed class BodyTensorExportTests(ITestOutputHelper output) : IDisposable
{
    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    public static TheoryData<string, CalibrationMethod> Cases => new()
    {
        { "NestedIfs", CalibrationMethod.Percentile },
        { "IfInLoop", CalibrationMethod.Mse },
        { "ScanRnn", CalibrationMethod.Entropy },
        { "RareLoop", CalibrationMethod.Percentile },
        { "ConvsInIf", CalibrationMethod.Mse },
        { "TransposeBeforeIf", CalibrationMethod.Percentile },
        { "ConvIf", CalibrationMethod.Percentile },
    };

    private static TestNet Net(string name) => name switch
    {
        "NestedIfs" => IfNets.Build(),
        "IfInLoop" => LoopNets.IfInLoop(),
        "ScanRnn" => LoopNets.ScanRnn([8, 4, 64]),
        "RareLoop" => LoopNets.RareLoop(),
        "ConvsInIf" => ControlFlowNets.ConvsInIf(),
        "TransposeBeforeIf" => IfNets.TransposeBeforeIf(),
        _ => ControlFlowNets.ConvIf(),
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Histogram_methods_and_the_per_layer_analysis_run_on_control_flow_nets(string name, CalibrationMethod method)
    {
        var net = Net(name);
        var (model, calibration) = QuantizeTestKit.Prepare(net, _folder.Path);
        var validation = QuantizeTestKit.WriteCalibration(_folder.File("validation"), net.InputName, net.InputShape, QuantizeTestKit.HeldOutSeeds);
        var gate = new ValidationOptions { Folder = validation, Checks = [AccuracyCheck.Parse("sqnr>=15")], LayerSamples = 4 };
        var path = _folder.File(name + ".int8.onnx");

        var result = new Quantizer(QuantizeTestKit.Options() with { CalibrationMethod = method, Validation = gate }).Run(model, calibration, path);

        output.WriteLine($"{name}, {method}: {result.Validation!.Checks.Single().Describe()}; layers: " +
            string.Join(", ", result.Validation.WorstLayers.Select(l => $"{l.Node} {l.SqnrDb:F1} dB")));
        Assert.True(result.Validation.Passed);
        Assert.NotEmpty(result.Validation.WorstLayers);
        Assert.All(QuantizeTestKit.Sqnr(model, path, net).Values, db => Assert.True(db > 15, $"SQNR {db:F1} dB"));
    }
}
