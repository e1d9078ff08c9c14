namespace Quantize.Onnx.Hardware;

/// <summary>
/// How a CPU's u8×s8 integer kernels in ONNX Runtime (MLAS) add up products. The two classes give different
/// INT8 outputs for the same model when weights are full 8-bit, so a model is validated on the class it will meet.
/// </summary>
public enum IntegerArithmetic
{
    /// <summary>Every product accumulates in int32: VNNI (AVX512-VNNI, AVX-VNNI), AMX, SSE-only x86 and every ARM64 core.</summary>
    Exact,

    /// <summary>
    /// x86 AVX2 and AVX-512 without VNNI: vpmaddubsw adds two adjacent u8×s8 products into a saturating int16, so a pair
    /// above 32,767 is clipped. Weights whose two largest magnitudes per channel sum to at most 128 cannot saturate
    /// (255 × 128 = 32,640), and then give the exact class's bits.
    /// </summary>
    Saturating,
}
