namespace Quantize.Onnx.Hardware;

/// <summary>A kind of CPU the quantized model will run on (QuantizeTargets / --target).</summary>
public enum QuantizeTarget
{
    /// <summary>Any x86-64 CPU, VNNI or not: both integer kernel classes.</summary>
    X64,

    /// <summary>x86-64 CPUs with VNNI (AVX512-VNNI, AVX-VNNI) or AMX only: exact int32 accumulation.</summary>
    X64Vnni,

    /// <summary>Any ARM64 CPU (NEON smull/smlal, dotprod sdot/udot, i8mm): exact int32 accumulation.</summary>
    Arm64,
}

/// <summary>Names, parsing and the integer arithmetic of each target.</summary>
public static class QuantizeTargets
{
    /// <summary>Without a declaration (and no RuntimeIdentifier): portable, right on every x86-64 and ARM64 CPU.</summary>
    public static readonly IReadOnlyList<QuantizeTarget> Portable = [QuantizeTarget.X64, QuantizeTarget.Arm64];

    public static string Name(QuantizeTarget target) => target switch
    {
        QuantizeTarget.X64 => "x64",
        QuantizeTarget.X64Vnni => "x64-vnni",
        _ => "arm64",
    };

    /// <summary>The names a user may write, for messages.</summary>
    public const string Allowed = "x64 (any x86-64 CPU), x64-vnni (x86-64 with AVX512-VNNI/AVX-VNNI only), arm64";

    public static bool TryParse(string text, out QuantizeTarget target)
    {
        switch (text.Trim().ToLowerInvariant())
        {
            case "x64" or "x86-64" or "x86_64" or "amd64":
                target = QuantizeTarget.X64;
                return true;
            case "x64-vnni":
                target = QuantizeTarget.X64Vnni;
                return true;
            case "arm64" or "aarch64":
                target = QuantizeTarget.Arm64;
                return true;
            default:
                target = default;
                return false;
        }
    }

    /// <summary>The integer kernel classes a target's CPUs have.</summary>
    public static IReadOnlyList<IntegerArithmetic> Arithmetic(QuantizeTarget target) => target == QuantizeTarget.X64
        ? [IntegerArithmetic.Exact, IntegerArithmetic.Saturating]
        : [IntegerArithmetic.Exact];

    /// <summary>What a target's CPUs compute with, for reports.</summary>
    public static string Describe(QuantizeTarget target) => target switch
    {
        QuantizeTarget.X64 => "exact (VNNI, SSE-only) and saturating (AVX2/AVX-512 without VNNI)",
        QuantizeTarget.X64Vnni => "exact (VNNI/AMX)",
        _ => "exact (NEON, dotprod, i8mm)",
    };

    /// <summary>Sorted names joined by ';' (settings, provenance, lock files).</summary>
    public static string Text(IEnumerable<QuantizeTarget> targets) => string.Join(";", targets.Distinct().Order().Select(Name));
}
