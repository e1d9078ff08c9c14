using System.Text.Json;
using Quantize.Onnx.Hardware;
using Quantize.Onnx.Reporting;
using Quantize.Onnx.Tests.TestModels;
using Xunit.Abstractions;

namespace Quantize.Onnx.Tests.Hardware;

/// <summary>
/// What <see cref="Quantizer.Run"/> reports about hardware: the build machine (this CPU's class), the declared targets
/// and whether each was validated, and the arithmetic the accuracy figures ran in; and the JSON report's copy of them.
/// Tests whose outcome depends on this CPU's class assert the branch that applies and say which one ran.
/// </summary>
public sealed class QuantizerTargetTests(ITestOutputHelper output) : IDisposable
{
    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    [Fact]
    public void Default_targets_are_portable_and_validated_on_this_machine()
    {
        var (model, calibration) = QuantizeTestKit.Prepare(TestNets.ConvNet(), _folder.Path);

        var result = new Quantizer(QuantizeTestKit.Options()).Run(model, calibration, _folder.File("portable.onnx"));

        output.WriteLine($"machine: {result.Machine.ClassLabel} ({result.Machine.Cpu})");
        Assert.Equal(BuildMachine.Current, result.Machine);
        Assert.Equal(OutputKind.Quantized, result.Output);
        Assert.Equal(["x64", "arm64"], result.Targets.Select(t => t.Target));
        Assert.All(result.Targets, t => Assert.True(t.Validated, $"{t.Target}: {t.How}"));
        // Saturation-safe weights compute the same integers on every class, so this machine's native kernels stand for all.
        Assert.Equal(Int8Arithmetic.Native, result.Int8Arithmetic);
        Assert.DoesNotContain(result.Warnings, w => w.Code == ErrorCodes.TargetNotValidated);
        Assert.Equal("x64;arm64", result.Settings["targets"]);
    }

    [Fact]
    public void Exact_only_targets_run_the_exact_reference_on_a_saturating_machine_and_natively_on_an_exact_one()
    {
        var (model, calibration) = QuantizeTestKit.Prepare(TestNets.ConvNet(), _folder.Path);
        var options = QuantizeTestKit.Options() with { Targets = [QuantizeTarget.X64Vnni, QuantizeTarget.Arm64] };

        var result = new Quantizer(options).Run(model, calibration, _folder.File("exact-only.onnx"));

        Assert.False(options.SaturationSafeWeights);
        Assert.Equal(["x64-vnni", "arm64"], result.Targets.Select(t => t.Target));
        Assert.All(result.Targets, t => Assert.True(t.Validated, $"{t.Target}: {t.How}"));
        Assert.DoesNotContain(result.Warnings, w => w.Code == ErrorCodes.TargetNotValidated);
        if (BuildMachine.Current.Arithmetic == IntegerArithmetic.Saturating)
        {
            output.WriteLine($"saturating branch ({BuildMachine.Current.ClassLabel}): the exact class is reproduced by the unfused QDQ graph");
            Assert.Equal(Int8Arithmetic.ExactReference, result.Int8Arithmetic);
            Assert.All(result.Targets, t => Assert.Contains("exact reference", t.How, StringComparison.Ordinal));
        }
        else
        {
            output.WriteLine($"exact branch ({BuildMachine.Current.ClassLabel}): this machine's kernels are the targets' class");
            Assert.Equal(Int8Arithmetic.Native, result.Int8Arithmetic);
            Assert.All(result.Targets, t => Assert.DoesNotContain("exact reference", t.How, StringComparison.Ordinal));
            if (BuildMachine.Current.Architecture == "x64")
            {
                Assert.Equal("native", result.Targets[0].How);
            }
        }
    }

    [Fact]
    public void Dynamic_exact_only_targets_are_validated_only_where_this_machine_is_exact()
    {
        // Dynamic integer kernels are no QDQ groups: a saturating machine has no exact reference for them.
        var net = TestNets.Mlp();
        var (model, _) = QuantizeTestKit.Prepare(net, _folder.Path);
        var options = QuantizeTestKit.Options() with { Mode = QuantizationMode.Dynamic, Targets = [QuantizeTarget.X64Vnni, QuantizeTarget.Arm64] };

        var result = new Quantizer(options).Run(model, null, _folder.File("dynamic.onnx"));

        Assert.Equal(Int8Arithmetic.Native, result.Int8Arithmetic);
        if (BuildMachine.Current.Arithmetic == IntegerArithmetic.Saturating)
        {
            output.WriteLine($"saturating branch ({BuildMachine.Current.ClassLabel}): neither exact target can be validated here");
            Assert.All(result.Targets, t => Assert.False(t.Validated, t.Target));
            if (result.Fusion.FusedCount > 0)
            {
                Assert.Contains(result.Warnings, w => w.Code == ErrorCodes.TargetNotValidated && w.Message.Contains("x64-vnni", StringComparison.Ordinal));
                Assert.Contains(result.Warnings, w => w.Code == ErrorCodes.TargetNotValidated && w.Message.Contains("arm64", StringComparison.Ordinal));
            }
        }
        else
        {
            output.WriteLine($"exact branch ({BuildMachine.Current.ClassLabel}): both exact targets are validated natively");
            Assert.All(result.Targets, t => Assert.True(t.Validated, $"{t.Target}: {t.How}"));
            Assert.DoesNotContain(result.Warnings, w => w.Code == ErrorCodes.TargetNotValidated);
        }
    }

    [Fact]
    public void The_JSON_report_has_the_machine_the_targets_and_the_int8_arithmetic()
    {
        var (model, calibration) = QuantizeTestKit.Prepare(TestNets.ConvNet(), _folder.Path);
        var result = new Quantizer(QuantizeTestKit.Options()).Run(model, calibration, _folder.File("report.onnx"));
        var path = _folder.File("report.json");

        ReportWriter.Write(result, path);

        using var json = JsonDocument.Parse(File.ReadAllText(path));
        var root = json.RootElement;
        var machine = root.GetProperty("machine");
        Assert.Equal(BuildMachine.Current.ClassLabel, machine.GetProperty("classLabel").GetString());
        Assert.Equal(BuildMachine.Current.Cpu, machine.GetProperty("cpu").GetString());
        Assert.Equal(BuildMachine.Current.Architecture, machine.GetProperty("architecture").GetString());
        Assert.Equal(BuildMachine.ArithmeticLabel(BuildMachine.Current.Arithmetic), machine.GetProperty("arithmetic").GetString());
        var targets = root.GetProperty("targets").EnumerateArray().ToList();
        Assert.Equal(["x64", "arm64"], targets.Select(t => t.GetProperty("target").GetString()));
        Assert.All(targets, t =>
        {
            Assert.True(t.GetProperty("validated").GetBoolean());
            Assert.False(string.IsNullOrEmpty(t.GetProperty("how").GetString()));
            Assert.False(string.IsNullOrEmpty(t.GetProperty("arithmetic").GetString()));
        });
        Assert.Equal("native", root.GetProperty("int8Arithmetic").GetString());
    }
}
