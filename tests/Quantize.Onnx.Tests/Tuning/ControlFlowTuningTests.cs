using Quantize.Onnx.Tests.TestModels;
using Quantize.Onnx.Tuning;
using Xunit.Abstractions;

namespace Quantize.Onnx.Tests.Tuning;

/// <summary>
/// The tuner keeps nodes of control-flow bodies float when the gate needs it: a model whose damage lives in its If
/// branches (as a speech model's convs do) is not "a model with no unit to keep float".
/// </summary>
public sealed class ControlFlowTuningTests(ITestOutputHelper output) : IDisposable
{
    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    [Fact]
    public void A_gate_missed_inside_if_branches_is_passed_by_keeping_the_branch_convs_float()
    {
        var net = ControlFlowNets.OutlierInIf();
        var (model, calibration) = QuantizeTestKit.Prepare(net, _folder.Path);
        int[] Seeds(bool then) => [.. Enumerable.Range(2000, 400).Where(s => ControlFlowNets.TakesThen(QuantizeTestKit.Structured(s, net.InputShape)) == then).Take(3)];
        var validation = QuantizeTestKit.WriteCalibration(_folder.File("validation"), net.InputName, net.InputShape, [.. Seeds(true), .. Seeds(false)]);
        var path = _folder.File("tuned.onnx");

        var result = new Quantizer(TunerTests.Options(validation, "sqnr>=25", new TuningOptions { Enabled = true, LockFile = _folder.File("model.quantization.json") }))
            .Run(model, calibration, path);

        var tuning = result.Tuning!;
        foreach (var a in tuning.Attempts)
        {
            output.WriteLine($"{a.Number} {a.Step}: {(a.Passed ? "pass" : "fail")} {string.Join("; ", a.Checks)}");
        }

        output.WriteLine($"{tuning.Why}; float: {string.Join(", ", tuning.FloatNodes)}");
        Assert.False(tuning.Attempts[0].Passed); // plain quantization misses the gate
        Assert.True(tuning.Succeeded, tuning.Why);
        Assert.True(result.Validation!.Passed);

        // The float set is made of branch nodes: each branch's conv1 and conv2 (the outlier grid between them), not the stem or head.
        Assert.Superset(new HashSet<string> { "then_conv1", "then_conv2", "else_conv1", "else_conv2" }, tuning.FloatNodes.ToHashSet());
        Assert.DoesNotContain("stem", tuning.FloatNodes);
        Assert.DoesNotContain("head", tuning.FloatNodes);

        // ORT runs the stem and head on integer kernels and the branches' convs in float.
        var optimized = QuantizeTestKit.OptimizedGraph(path);
        Assert.Equal(2, optimized.Count("QLinearConv"));
        var ifNode = Assert.Single(optimized.Node, n => n.OpType == "If");
        foreach (var branch in ifNode.Attribute.Where(a => a.G is not null).Select(a => a.G))
        {
            Assert.Equal(0, branch.Count("QLinearConv"));
            Assert.Equal(2, branch.Node.Count(n => n.OpType is "Conv" or "FusedConv"));
        }
    }
}
