namespace Quantize.Onnx.Hardware;

/// <summary>How an INT8 model's integer results are computed for the accuracy gate and the fidelity figures.</summary>
public enum Int8Arithmetic
{
    /// <summary>This machine's fused integer kernels, as an application runs them.</summary>
    Native,

    /// <summary>
    /// ONNX Runtime without graph optimisations: the QDQ graph runs as DequantizeLinear → float op → QuantizeLinear, which
    /// computes what exact int32 accumulation computes up to float rounding (waifu2x: 62–64 dB SQNR from VNNI's bits,
    /// where the saturating class is 25.6 dB away). Used when the targets are all exact and this machine saturates.
    /// </summary>
    ExactReference,
}

/// <summary>One declared target in the report: its kernel classes, whether its arithmetic was validated here, and how.</summary>
/// <param name="How">In words: "native", "same integer results as native: ..." or why it was not reproduced.</param>
public sealed record TargetCheck(string Target, string Arithmetic, bool Validated, string How)
{
    /// <summary>Whether this machine is one of the target's CPUs, so that the latency measured here is the target's.</summary>
    public bool SpeedMeasured { get; init; }
}

/// <summary>
/// Which arithmetic validates a model for its declared targets on this build machine, and what the report says per target.
/// A target is validated when its kernel class is this machine's, when the model cannot saturate (then both classes give
/// the same bits), or when the exact class is reproduced by <see cref="Int8Arithmetic.ExactReference"/>.
/// </summary>
public sealed record TargetPlan(BuildMachine Machine, Int8Arithmetic Arithmetic, IReadOnlyList<TargetCheck> Targets)
{
    /// <summary>The targets whose arithmetic this run could not reproduce (each gets a warning).</summary>
    public IEnumerable<TargetCheck> NotValidated => Targets.Where(t => !t.Validated);

    /// <param name="cannotSaturate">No u8×s8 kernel of the model can saturate: saturation-safe or 7-bit or uint8 weights, or no integer kernels at all.</param>
    /// <param name="exactReferencePossible">Every integer kernel is a fused QDQ group (static mode), so the unfused graph reproduces the exact class.</param>
    public static TargetPlan For(BuildMachine machine, IReadOnlyList<QuantizeTarget> targets, bool cannotSaturate, bool exactReferencePossible)
    {
        var needsExact = targets.Any(t => QuantizeTargets.Arithmetic(t).Contains(IntegerArithmetic.Exact));
        var arithmetic = !cannotSaturate && machine.Arithmetic == IntegerArithmetic.Saturating && needsExact && exactReferencePossible
            && targets.All(t => !QuantizeTargets.Arithmetic(t).Contains(IntegerArithmetic.Saturating))
            ? Int8Arithmetic.ExactReference
            : Int8Arithmetic.Native;
        var checks = targets.Distinct().Order().Select(target => Check(machine, target, arithmetic, cannotSaturate) with { SpeedMeasured = IsOneOf(machine, target) }).ToList();
        return new TargetPlan(machine, arithmetic, checks);
    }

    /// <summary>x64: any x86-64 machine; x64-vnni: one with exact (VNNI/AMX) x86 kernels; arm64: an ARM64 machine.</summary>
    private static bool IsOneOf(BuildMachine machine, QuantizeTarget target) => target switch
    {
        QuantizeTarget.X64 => machine.Architecture == "x64",
        QuantizeTarget.X64Vnni => machine.Architecture == "x64" && machine.Arithmetic == IntegerArithmetic.Exact && !machine.Features.StartsWith("SSE", StringComparison.Ordinal),
        _ => machine.Architecture == "arm64",
    };

    private static TargetCheck Check(BuildMachine machine, QuantizeTarget target, Int8Arithmetic arithmetic, bool cannotSaturate)
    {
        var name = QuantizeTargets.Name(target);
        var classes = QuantizeTargets.Arithmetic(target);
        var described = QuantizeTargets.Describe(target);
        var here = BuildMachine.ArithmeticLabel(machine.Arithmetic);
        var native = name.StartsWith(machine.Architecture, StringComparison.Ordinal) && classes.All(c => c == machine.Arithmetic);
        if (cannotSaturate)
        {
            return native
                ? new TargetCheck(name, described, true, "native")
                : new TargetCheck(name, described, true,
                    $"same integer results as this {here} machine: no u8×s8 product pair can saturate, so every class accumulates exactly");
        }

        if (arithmetic == Int8Arithmetic.ExactReference)
        {
            return new TargetCheck(name, described, true, "exact reference (QDQ graph run unfused: int32-exact up to float rounding), as this machine's kernels saturate");
        }

        return classes.All(c => c == machine.Arithmetic)
            ? new TargetCheck(name, described, true, native ? "native" : $"same integer results as this {here} machine (both accumulate in int32)")
            : new TargetCheck(name, described, false,
                $"not reproduced: this machine's kernels are {here}, and its {string.Join(" and ", classes.Where(c => c != machine.Arithmetic).Select(BuildMachine.ArithmeticLabel))} class cannot be run here");
    }
}
