using Quantize.Onnx.Model;
using Quantize.Onnx.Tests.TestModels;
using Xunit.Abstractions;

namespace Quantize.Onnx.Tests.Quantization;

/// <summary>If/Loop subgraphs and GRU come out valid: If branches and Loop bodies calibrated and quantized (LoopBodyQuantizationTests), GRU quantized around with a warning naming it and why (LSTM: RecurrentQuantizationTests).</summary>
public sealed class ControlFlowTests(ITestOutputHelper output) : IDisposable
{
    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    public static TheoryData<string> Nets => ["ConvIf", "AllInIf", "ConvLoop", "Gru"];

    private static TestNet Net(string name) => name switch
    {
        "ConvIf" => ControlFlowNets.ConvIf(),
        "AllInIf" => ControlFlowNets.AllInIf(),
        "ConvLoop" => ControlFlowNets.ConvLoop(),
        _ => ControlFlowNets.Gru(),
    };

    [Theory]
    [MemberData(nameof(Nets))]
    public void Control_flow_models_come_out_valid_close_to_fp32_and_say_what_stays_float(string name)
    {
        var net = Net(name);
        var (model, calibration) = QuantizeTestKit.Prepare(net, _folder.Path);
        var path = _folder.File(name + ".int8.onnx");

        var result = new Quantizer(QuantizeTestKit.Options()).Run(model, calibration, path);

        foreach (var w in result.Warnings)
        {
            output.WriteLine($"{w.Code}: {w.Message}");
        }

        var sqnr = QuantizeTestKit.Sqnr(model, path, net);
        output.WriteLine(string.Join(", ", sqnr.Select(kv => $"{kv.Key} {kv.Value:F1} dB")) + $"; {result.QuantizedNodes} quantized nodes");
        Assert.All(sqnr.Values, db => Assert.True(db > 20, $"SQNR {db:F1} dB"));
        var graph = ModelLoader.Load(path).Graph;
        if (name != "Gru")
        {
            // If branches and Loop bodies are calibrated and quantized like the main graph: nothing stays float
            // (the Loop body has no conv: its Relu/Mul/Add stay float around the quantized main-graph convs).
            Assert.DoesNotContain(result.Warnings, w => w.Code == ErrorCodes.StaysFloat);
            Assert.Equal(name == "ConvLoop" ? 2 : 4, result.Fusion.IntegerKernels.GetValueOrDefault("QLinearConv"));
            return;
        }

        var warning = Assert.Single(result.Warnings, w => w.Code == ErrorCodes.StaysFloat);
        Assert.Contains("GRU 'gru'", warning.Message, StringComparison.Ordinal);
        Assert.Contains(graph.Node, n => n.OpType == "GRU");
        Assert.Equal(0, result.Fusion.IntegerKernels.GetValueOrDefault("QLinearConv"));
    }

    [Fact]
    public void Branches_onnx_runtime_cannot_type_on_their_own_stay_float_and_are_named()
    {
        var net = IfNets.BranchesReadingASequence();
        var (model, calibration) = QuantizeTestKit.Prepare(net, _folder.Path);
        var path = _folder.File("sequence_if.int8.onnx");

        var result = new Quantizer(QuantizeTestKit.Options()).Run(model, calibration, path);

        var warning = Assert.Single(result.Warnings, w => w.Code == ErrorCodes.StaysFloat);
        output.WriteLine(warning.Message);
        Assert.Contains("then_branch of If 'seq_if'", warning.Message, StringComparison.Ordinal);
        Assert.Contains("could not type", warning.Message, StringComparison.Ordinal);
        Assert.Equal(2, result.Fusion.IntegerKernels.GetValueOrDefault("QLinearConv")); // stem and head
        Assert.True(QuantizeTestKit.Sqnr(model, path, net).Values.Single() > 25);
    }

    [Fact]
    public void A_float_conv_in_a_branch_of_an_opset_12_model_reads_a_dequantize_without_axis_and_the_model_loads()
    {
        // Fuzz (models, seed 13, case 3194): the If keeps the model at opset 12 (per-tensor weights, QNT2001); the conv
        // kept float in a branch read a DequantizeLinear with an axis, which opset 12 lacks, and ORT refused the output.
        var net = ControlFlowNets.ConvsInIf();
        net.Model.OpsetImport[0].Version = 12;
        var (model, calibration) = QuantizeTestKit.Prepare(net, _folder.Path);
        var path = _folder.File("opset12.int8.onnx");

        var result = new Quantizer(QuantizeTestKit.Options() with { ExcludedNodes = new HashSet<string> { "then_conv2" } }).Run(model, calibration, path);

        Assert.Contains(result.Warnings, w => w.Code == ErrorCodes.PerChannelFallback);
        Assert.DoesNotContain(ControlFlowBodies.AllNodes(ModelLoader.Load(path).Graph), n => n.OpType == "DequantizeLinear" && n.Attribute.Any(a => a.Name == "axis"));
        var sqnr = QuantizeTestKit.Sqnr(model, path, net).Values.Single();
        output.WriteLine($"SQNR {sqnr:F1} dB");
        Assert.True(sqnr > 20, $"SQNR {sqnr:F1} dB");
    }
}
