using Quantize.Onnx.Hardware;

namespace Quantize.Onnx.Tests.Hardware;

/// <summary>
/// Which arithmetic validates a model for its declared targets (<see cref="TargetPlan.For"/>), on build machines made
/// by hand: one of each integer kernel class.
/// </summary>
public sealed class TargetPlanTests
{
    private static readonly BuildMachine Exact = new("x64", "Test CPU", "AVX512-VNNI", IntegerArithmetic.Exact);
    private static readonly BuildMachine Saturating = new("x64", "Test CPU", "AVX2 without VNNI", IntegerArithmetic.Saturating);

    [Fact]
    public void Portable_targets_with_weights_that_cannot_saturate_are_all_validated_natively()
    {
        var plan = TargetPlan.For(Exact, QuantizeTargets.Portable, cannotSaturate: true, exactReferencePossible: true);

        Assert.Equal(Int8Arithmetic.Native, plan.Arithmetic);
        Assert.Equal(["x64", "arm64"], plan.Targets.Select(t => t.Target));
        Assert.All(plan.Targets, t => Assert.True(t.Validated, t.How));
        Assert.Empty(plan.NotValidated);
        // x64 spans both classes, so this exact machine is not it natively: it computes the same integers.
        Assert.Contains("same integer results", plan.Targets[0].How, StringComparison.Ordinal);
        Assert.Contains("same integer results", plan.Targets[1].How, StringComparison.Ordinal);
    }

    [Fact]
    public void Portable_targets_that_cannot_saturate_are_validated_on_a_saturating_machine_too()
    {
        var plan = TargetPlan.For(Saturating, QuantizeTargets.Portable, cannotSaturate: true, exactReferencePossible: false);

        Assert.Equal(Int8Arithmetic.Native, plan.Arithmetic);
        Assert.All(plan.Targets, t => Assert.True(t.Validated, t.How));
        Assert.Contains("saturating machine", plan.Targets[0].How, StringComparison.Ordinal);
    }

    [Fact]
    public void Exact_targets_on_a_saturating_machine_run_the_exact_reference()
    {
        var plan = TargetPlan.For(Saturating, [QuantizeTarget.Arm64], cannotSaturate: false, exactReferencePossible: true);

        Assert.Equal(Int8Arithmetic.ExactReference, plan.Arithmetic);
        var arm64 = Assert.Single(plan.Targets);
        Assert.Equal("arm64", arm64.Target);
        Assert.True(arm64.Validated);
        Assert.Contains("exact reference", arm64.How, StringComparison.Ordinal);
        Assert.Empty(plan.NotValidated);
    }

    [Fact]
    public void Exact_targets_on_a_saturating_machine_without_an_exact_reference_are_not_validated()
    {
        // e.g. dynamic quantization: its integer kernels are no fused QDQ groups, so no unfused graph reproduces them.
        var plan = TargetPlan.For(Saturating, [QuantizeTarget.Arm64], cannotSaturate: false, exactReferencePossible: false);

        Assert.Equal(Int8Arithmetic.Native, plan.Arithmetic);
        var missed = Assert.Single(plan.NotValidated);
        Assert.Equal("arm64", missed.Target);
        Assert.False(missed.Validated);
        Assert.Contains("not reproduced", missed.How, StringComparison.Ordinal);
        Assert.Contains("exact", missed.How, StringComparison.Ordinal);
    }

    [Fact]
    public void Vnni_target_on_an_exact_x64_machine_is_native()
    {
        var plan = TargetPlan.For(Exact, [QuantizeTarget.X64Vnni], cannotSaturate: false, exactReferencePossible: true);

        Assert.Equal(Int8Arithmetic.Native, plan.Arithmetic);
        var vnni = Assert.Single(plan.Targets);
        Assert.Equal(("x64-vnni", true, "native"), (vnni.Target, vnni.Validated, vnni.How));
    }

    [Fact]
    public void Arm64_on_an_exact_x64_machine_is_the_same_integer_results_not_native()
    {
        var plan = TargetPlan.For(Exact, [QuantizeTarget.X64Vnni, QuantizeTarget.Arm64], cannotSaturate: false, exactReferencePossible: true);

        Assert.Equal(Int8Arithmetic.Native, plan.Arithmetic);
        Assert.Equal("native", plan.Targets[0].How);
        Assert.True(plan.Targets[1].Validated);
        Assert.Contains("same integer results", plan.Targets[1].How, StringComparison.Ordinal);
    }

    [Fact]
    public void Weights_that_can_saturate_leave_the_other_class_of_x64_unvalidated()
    {
        // Full 8-bit weights declared for any x64: this exact machine cannot run AVX2's saturating kernels.
        var onExact = TargetPlan.For(Exact, QuantizeTargets.Portable, cannotSaturate: false, exactReferencePossible: true);
        Assert.Equal(Int8Arithmetic.Native, onExact.Arithmetic);
        Assert.Equal(["x64"], onExact.NotValidated.Select(t => t.Target));
        Assert.Contains("saturating class cannot be run here", onExact.Targets[0].How, StringComparison.Ordinal);

        // And a saturating machine cannot run x64's exact class, nor arm64's: no exact reference when x64 also needs saturating.
        var onSaturating = TargetPlan.For(Saturating, QuantizeTargets.Portable, cannotSaturate: false, exactReferencePossible: true);
        Assert.Equal(Int8Arithmetic.Native, onSaturating.Arithmetic);
        Assert.Equal(["x64", "arm64"], onSaturating.NotValidated.Select(t => t.Target));
    }

    [Fact]
    public void Targets_are_listed_once_each_in_a_fixed_order()
    {
        var plan = TargetPlan.For(Exact, [QuantizeTarget.Arm64, QuantizeTarget.X64, QuantizeTarget.Arm64, QuantizeTarget.X64Vnni], cannotSaturate: true, exactReferencePossible: true);

        Assert.Equal(["x64", "x64-vnni", "arm64"], plan.Targets.Select(t => t.Target));
        Assert.Equal("x64;arm64", QuantizeTargets.Text([QuantizeTarget.Arm64, QuantizeTarget.X64, QuantizeTarget.Arm64]));
    }

    [Fact]
    public void Every_target_lists_its_integer_kernel_classes()
    {
        Assert.Equal([IntegerArithmetic.Exact, IntegerArithmetic.Saturating], QuantizeTargets.Arithmetic(QuantizeTarget.X64));
        Assert.Equal([IntegerArithmetic.Exact], QuantizeTargets.Arithmetic(QuantizeTarget.X64Vnni));
        Assert.Equal([IntegerArithmetic.Exact], QuantizeTargets.Arithmetic(QuantizeTarget.Arm64));
        Assert.Equal([QuantizeTarget.X64, QuantizeTarget.Arm64], QuantizeTargets.Portable);
    }

    [Theory]
    [InlineData("x64", "X64")]
    [InlineData(" X64 ", "X64")]
    [InlineData("x86-64", "X64")]
    [InlineData("x86_64", "X64")]
    [InlineData("AMD64", "X64")]
    [InlineData("x64-vnni", "X64Vnni")]
    [InlineData("X64-VNNI", "X64Vnni")]
    [InlineData("arm64", "Arm64")]
    [InlineData("aarch64", "Arm64")]
    public void Target_names_and_aliases_parse(string text, string expected)
    {
        Assert.True(QuantizeTargets.TryParse(text, out var target));
        Assert.Equal(Enum.Parse<QuantizeTarget>(expected), target);
    }

    [Theory]
    [InlineData("x86")]
    [InlineData("")]
    [InlineData("arm")]
    [InlineData("x64vnni")]
    [InlineData("vnni")]
    [InlineData("x64;arm64")]
    public void Other_names_are_rejected(string text)
    {
        Assert.False(QuantizeTargets.TryParse(text, out _));
    }

    [Fact]
    public void Every_target_name_parses_back_to_its_target()
    {
        foreach (var target in Enum.GetValues<QuantizeTarget>())
        {
            Assert.True(QuantizeTargets.TryParse(QuantizeTargets.Name(target), out var parsed));
            Assert.Equal(target, parsed);
            Assert.Contains(QuantizeTargets.Name(target), QuantizeTargets.Allowed, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void The_class_label_names_the_kernel_class()
    {
        Assert.Equal("x64 AVX2 without VNNI (saturating int8)", Saturating.ClassLabel);
        Assert.Equal("x64 AVX512-VNNI (exact int8)", Exact.ClassLabel);
    }
}
