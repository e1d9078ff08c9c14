using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.Arm;
using System.Runtime.Intrinsics.X86;
using System.Text;

namespace Quantize.Onnx.Hardware;

/// <summary>
/// The CPU this process runs on, as ONNX Runtime's integer kernels see it: MLAS picks its u8×s8 kernel from CPUID
/// (not from /proc/cpuinfo, which under an emulator describes the host), so this reads CPUID too.
/// </summary>
/// <param name="Cpu">The CPU's brand string (e.g. "AMD EPYC 7B13"), or the architecture when it has none.</param>
/// <param name="Features">The kernel-relevant features, e.g. "AVX2, no VNNI" or "AVX512-VNNI".</param>
public sealed record BuildMachine(string Architecture, string Cpu, string Features, IntegerArithmetic Arithmetic)
{
    private static readonly Lazy<BuildMachine> Detected = new(Detect);

    /// <summary>The machine this process runs on (detected once).</summary>
    public static BuildMachine Current => Detected.Value;

    /// <summary>e.g. "x64 AVX2 without VNNI (saturating int8)" — what every latency and accuracy figure ran on.</summary>
    public string ClassLabel => $"{Architecture} {Features} ({ArithmeticLabel(Arithmetic)} int8)";

    /// <summary>The kernel class in one word, for reports: "exact" or "saturating".</summary>
    public static string ArithmeticLabel(IntegerArithmetic arithmetic) => arithmetic == IntegerArithmetic.Exact ? "exact" : "saturating";

    private static BuildMachine Detect() => RuntimeInformation.ProcessArchitecture switch
    {
        System.Runtime.InteropServices.Architecture.X64 => DetectX64(),
        System.Runtime.InteropServices.Architecture.Arm64 => new BuildMachine("arm64", Environment.ProcessorCount + " cores",
            AdvSimd.Arm64.IsSupported && Dp.IsSupported ? "dotprod" : "NEON without dotprod", IntegerArithmetic.Exact),
        var other => new BuildMachine(other.ToString().ToLowerInvariant(), "unknown CPU", "no MLAS int8 kernels known", IntegerArithmetic.Exact),
    };

    /// <summary>MLAS's dispatch (platform.cpp): AVX2 picks vpmaddubsw kernels unless AVX-VNNI, AVX512-VNNI or AMX replace them; below AVX2, SSE kernels widen to 16 bits first.</summary>
    private static BuildMachine DetectX64()
    {
        var brand = BrandString();
        if (!Avx2.IsSupported)
        {
            return new BuildMachine("x64", brand, "SSE (no AVX2)", IntegerArithmetic.Exact);
        }

        var (_, leaf7Ebx, leaf7Ecx, leaf7Edx) = X86Base.CpuId(7, 0);
        var (leaf71Eax, _, _, _) = X86Base.CpuId(7, 1);
        var avx512Vnni = Avx512F.IsSupported && (leaf7Ecx & (1 << 11)) != 0;
        var avxVnni = (leaf71Eax & (1 << 4)) != 0;
        var amx = (leaf7Edx & (1 << 25)) != 0; // AMX-INT8
        var avx512 = Avx512BW.IsSupported || (leaf7Ebx & (1 << 30)) != 0;
        var features = (avx512Vnni, avxVnni, amx) switch
        {
            (true, _, true) => "AVX512-VNNI, AMX",
            (true, _, _) => "AVX512-VNNI",
            (_, true, _) => "AVX-VNNI",
            (_, _, true) => "AMX",
            _ => avx512 ? "AVX-512 without VNNI" : "AVX2 without VNNI",
        };
        return new BuildMachine("x64", brand, features, avx512Vnni || avxVnni || amx ? IntegerArithmetic.Exact : IntegerArithmetic.Saturating);
    }

    private static string BrandString()
    {
        var (maxExtended, _, _, _) = X86Base.CpuId(unchecked((int)0x80000000), 0);
        if ((uint)maxExtended < 0x80000004)
        {
            return "x64 CPU";
        }

        var bytes = new byte[48];
        for (var i = 0; i < 3; i++)
        {
            var (a, b, c, d) = X86Base.CpuId(unchecked((int)0x80000002) + i, 0);
            foreach (var (value, slot) in new[] { (a, 0), (b, 1), (c, 2), (d, 3) })
            {
                BitConverter.TryWriteBytes(bytes.AsSpan((i * 16) + (slot * 4), 4), value);
            }
        }

        var text = Encoding.ASCII.GetString(bytes).TrimEnd('\0').Trim();
        return text.Length == 0 ? "x64 CPU" : string.Join(' ', text.Split(' ', StringSplitOptions.RemoveEmptyEntries));
    }
}
