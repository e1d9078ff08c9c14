namespace Quantize.Onnx.Quantization;

/// <summary>
/// A [K, N] weight quantized to 4 bits in blocks of <see cref="BlockSize"/> consecutive values of one
/// column, in the layout of ONNX Runtime's com.microsoft MatMulNBits:
/// <list type="bullet">
/// <item><see cref="Packed"/>: uint8 [N, BlocksPerColumn, BlockSize / 2]; value k of a block in byte k / 2, low nibble for even k.</item>
/// <item><see cref="Scales"/>: float [N * BlocksPerColumn], column-major (all blocks of column 0 first).</item>
/// <item><see cref="ZeroPoints"/>: null (symmetric: 8 implied), else uint4 packed two per byte, each column
/// padded to a whole byte: [N * ceil(BlocksPerColumn / 2)].</item>
/// </list>
/// A block value dequantizes to (q − zero point) × scale. K is padded with zeros to whole blocks.
/// </summary>
internal sealed record Block4Weights(int K, int N, int BlockSize, byte[] Packed, float[] Scales, byte[]? ZeroPoints)
{
    public int BlocksPerColumn => (K + BlockSize - 1) / BlockSize;

    public int BlobSize => BlockSize / 2;

    public int ZeroPointBytesPerColumn => (BlocksPerColumn + 1) / 2;

    /// <summary>The 4-bit value of weight [k, n] (0..15).</summary>
    public int Value(int k, int n)
    {
        var (block, inBlock) = (k / BlockSize, k % BlockSize);
        var b = Packed[(((n * BlocksPerColumn) + block) * BlobSize) + (inBlock / 2)];
        return inBlock % 2 == 0 ? b & 0x0F : b >> 4;
    }

    /// <summary>The zero point of block <paramref name="block"/> of column <paramref name="n"/>.</summary>
    public int ZeroPoint(int block, int n)
    {
        if (ZeroPoints is null)
        {
            return Block4Quantizer.SymmetricZeroPoint;
        }

        var b = ZeroPoints[(n * ZeroPointBytesPerColumn) + (block / 2)];
        return block % 2 == 0 ? b & 0x0F : b >> 4;
    }

    /// <summary>The [K, N] weight as MatMulNBits computes with it (row-major).</summary>
    public float[] Dequantize()
    {
        var result = new float[K * N];
        for (var n = 0; n < N; n++)
        {
            for (var k = 0; k < K; k++)
            {
                var block = k / BlockSize;
                result[(k * N) + n] = (Value(k, n) - ZeroPoint(block, n)) * Scales[(n * BlocksPerColumn) + block];
            }
        }

        return result;
    }
}

/// <summary>
/// Round-to-nearest 4-bit block quantization of a weight, with the grid rules of ONNX Runtime's own
/// quantizer (MLAS MlasQuantizeBlockwise / matmul_nbits_quantizer.py):
/// symmetric — scale = v / −8 for the block's value v of largest magnitude (its sign kept, so v itself
/// lands exactly on the grid end −8; on a tie the negative one), q = clamp(round(x / scale + 8), 0, 15);
/// asymmetric — the block range widened to include 0, scale = (max − min) / 15,
/// zero point = clamp(round(−min / scale), 0, 15), q = clamp(round(x / scale + zero point), 0, 15).
/// </summary>
internal static class Block4Quantizer
{
    public const int SymmetricZeroPoint = 8;
    private const int MaxValue = 15;

    /// <summary>Block sizes ONNX Runtime's CPU kernels support: powers of two from 16 to 256.</summary>
    public static bool IsSupportedBlockSize(int blockSize) => blockSize is >= 16 and <= 256 && (blockSize & (blockSize - 1)) == 0;

    /// <summary>
    /// Quantizes a K×N weight stored row-major as [K, N] or, when <paramref name="transposed"/> (a Gemm's
    /// transB = 1), as [N, K].
    /// </summary>
    public static Block4Weights Quantize(ReadOnlySpan<float> weight, int k, int n, bool transposed, int blockSize, bool asymmetric)
    {
        if (!IsSupportedBlockSize(blockSize))
        {
            throw new ArgumentOutOfRangeException(nameof(blockSize), blockSize, "Block size must be a power of two from 16 to 256.");
        }

        if (weight.Length != (long)k * n)
        {
            throw new ArgumentException($"Weight has {weight.Length} values, not {k} x {n}.", nameof(weight));
        }

        var blocks = (k + blockSize - 1) / blockSize;
        var blob = blockSize / 2;
        var packed = new byte[n * blocks * blob];
        var scales = new float[n * blocks];
        var zeroPointBytes = (blocks + 1) / 2;
        var zeroPoints = asymmetric ? new byte[n * zeroPointBytes] : null;
        var values = new float[blockSize];
        for (var col = 0; col < n; col++)
        {
            for (var block = 0; block < blocks; block++)
            {
                // The block's values; rows past K are zero padding (they dequantize to 0 and MatMulNBits ignores them).
                var start = block * blockSize;
                var count = Math.Min(blockSize, k - start);
                Array.Clear(values);
                for (var i = 0; i < count; i++)
                {
                    var row = start + i;
                    values[i] = transposed ? weight[(col * k) + row] : weight[(row * n) + col];
                }

                var (scale, zeroPoint) = asymmetric ? AsymmetricGrid(values) : SymmetricGrid(values);
                scales[(col * blocks) + block] = scale;
                if (zeroPoints is not null)
                {
                    zeroPoints[(col * zeroPointBytes) + (block / 2)] |= (byte)(zeroPoint << (block % 2 * 4));
                }

                var offset = ((col * blocks) + block) * blob;
                for (var i = 0; i < blockSize; i++)
                {
                    packed[offset + (i / 2)] |= (byte)(Quantize(values[i], scale, zeroPoint) << (i % 2 * 4));
                }
            }
        }

        return new Block4Weights(k, n, blockSize, packed, scales, zeroPoints);
    }

    /// <summary>One 4-bit value: rounded (half away from zero, C's roundf) after adding the zero point, as MLAS does; clamped to 0..15.</summary>
    internal static int Quantize(float value, float scale, int zeroPoint) =>
        scale == 0 ? zeroPoint : Math.Clamp((int)MathF.Round((value / scale) + zeroPoint, MidpointRounding.AwayFromZero), 0, MaxValue);

    internal static (float Scale, int ZeroPoint) SymmetricGrid(ReadOnlySpan<float> values)
    {
        var (min, max) = Range(values);
        var extreme = MathF.Abs(max) > MathF.Abs(min) ? max : min;
        return (extreme / -SymmetricZeroPoint, SymmetricZeroPoint);
    }

    internal static (float Scale, int ZeroPoint) AsymmetricGrid(ReadOnlySpan<float> values)
    {
        var (min, max) = Range(values);
        (min, max) = (MathF.Min(min, 0), MathF.Max(max, 0));
        var scale = (max - min) / MaxValue;
        return scale == 0 ? (0, SymmetricZeroPoint) : (scale, Math.Clamp((int)MathF.Round(-min / scale, MidpointRounding.AwayFromZero), 0, MaxValue));
    }

    private static (float Min, float Max) Range(ReadOnlySpan<float> values)
    {
        var (min, max) = (float.MaxValue, float.MinValue);
        foreach (var v in values)
        {
            (min, max) = (MathF.Min(min, v), MathF.Max(max, v));
        }

        return (min, max);
    }
}
