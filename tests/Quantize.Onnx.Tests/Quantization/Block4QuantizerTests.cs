using Quantize.Onnx.Quantization;

namespace Quantize.Onnx.Tests.Quantization;

/// <summary>The 4-bit block grids and MatMulNBits' packed layout (<see cref="Block4Quantizer"/>), on hand-made weights.</summary>
public sealed class Block4QuantizerTests
{
    [Fact]
    public void Values_on_the_grid_pack_two_per_byte_low_nibble_first_and_unpack_unchanged()
    {
        // K = 32, N = 3, blocks of 16: column n, block b holds q = (k + n + b) % 16 on the scale 0.5 (n + 1), with one
        // q = 0 per block so the block's extreme is −8 × scale and the symmetric grid is exactly that scale.
        const int k = 32, n = 3;
        var expected = new int[k, n];
        var weight = new float[k * n];
        for (var row = 0; row < k; row++)
        {
            for (var col = 0; col < n; col++)
            {
                var q = (row + col + (row / 16)) % 16;
                expected[row, col] = q;
                weight[(row * n) + col] = (q - 8) * 0.5f * (col + 1);
            }
        }

        var blocks = Block4Quantizer.Quantize(weight, k, n, transposed: false, blockSize: 16, asymmetric: false);

        Assert.Equal((2, 8), (blocks.BlocksPerColumn, blocks.BlobSize));
        Assert.Equal(n * 2 * 8, blocks.Packed.Length);
        Assert.Null(blocks.ZeroPoints);
        Assert.Equal([0.5f, 0.5f, 1f, 1f, 1.5f, 1.5f], blocks.Scales);
        for (var row = 0; row < k; row++)
        {
            for (var col = 0; col < n; col++)
            {
                Assert.Equal(expected[row, col], blocks.Value(row, col));
            }
        }

        // Byte 0 of column 1, block 0 holds rows 0 (low nibble, q = 1) and 1 (high nibble, q = 2).
        Assert.Equal(0x21, blocks.Packed[1 * 2 * 8]);
        Assert.Equal(weight, blocks.Dequantize());
    }

    [Fact]
    public void Symmetric_scale_is_the_largest_magnitude_over_minus_eight_with_its_sign()
    {
        // One block of 16: extreme +8 → scale −1; +8 lands on q = 0 exactly, −7.5 would be q = 16 and clamps to 15 (−7);
        // rounding happens after adding the zero point, as in ORT's MLAS quantizer: 0.5 → round(7.5) = 8, −0.5 → round(8.5) = 9.
        float[] block = [8f, -7.5f, 1f, -1f, 0f, 0.5f, -0.5f, 4f, 0, 0, 0, 0, 0, 0, 0, 0];
        var q = Block4Quantizer.Quantize(block, 16, 1, transposed: false, blockSize: 16, asymmetric: false);

        Assert.Equal(-1f, Assert.Single(q.Scales));
        Assert.Equal([0, 15, 7, 9, 8, 8, 9, 4], Enumerable.Range(0, 8).Select(k => q.Value(k, 0)));
        Assert.Equal(8f, q.Dequantize()[0]);
        Assert.Equal(-7f, q.Dequantize()[1]);

        // Equal magnitudes: the negative one wins (ORT's tie rule), so the scale is positive.
        Assert.Equal(1f, Block4Quantizer.Quantize([8f, -8f, .. new float[14]], 16, 1, false, 16, asymmetric: false).Scales[0]);

        // A zero block: scale 0, every value at the zero point 8.
        var zero = Block4Quantizer.Quantize(new float[16], 16, 1, false, 16, asymmetric: false);
        Assert.Equal((0f, 8), (zero.Scales[0], zero.Value(5, 0)));
    }

    [Fact]
    public void K_not_a_multiple_of_the_block_size_is_padded_with_zeros()
    {
        // K = 40 with blocks of 16: 3 blocks per column, the last one 8 values and 8 rows of padding at the zero point.
        const int k = 40, n = 2;
        var random = new Random(4);
        var weight = Enumerable.Range(0, k * n).Select(_ => (float)(random.NextDouble() - 0.5)).ToArray();

        var q = Block4Quantizer.Quantize(weight, k, n, transposed: false, blockSize: 16, asymmetric: false);

        Assert.Equal(3, q.BlocksPerColumn);
        Assert.Equal(n * 3 * 8, q.Packed.Length);
        Assert.Equal(n * 3, q.Scales.Length);
        for (var col = 0; col < n; col++)
        {
            var offset = ((col * 3) + 2) * 8;
            Assert.Equal([0x88, 0x88, 0x88, 0x88], q.Packed[(offset + 4)..(offset + 8)]);
        }

        // Every real value within half a step of its block's grid (a full step at the end the symmetric grid clamps: q 16 → 15).
        var dequantized = q.Dequantize();
        for (var row = 0; row < k; row++)
        {
            for (var col = 0; col < n; col++)
            {
                var step = Math.Abs(q.Scales[(col * 3) + (row / 16)]);
                Assert.True(Math.Abs(weight[(row * n) + col] - dequantized[(row * n) + col]) <= step + 1e-6, $"[{row}, {col}]");
            }
        }
    }

    [Fact]
    public void Asymmetric_blocks_get_a_range_including_zero_and_uint4_zero_points_two_per_byte()
    {
        // K = 48, blocks of 16, one column: block 0 in [0.5, 2] (range [0, 2]: scale 2/15, zero point 0),
        // block 1 in [−3, −1] (range [−3, 0]: scale 0.2, zero point 15), block 2 in [−1, 2] (scale 0.2, zero point 5).
        var weight = new float[48];
        for (var i = 0; i < 16; i++)
        {
            weight[i] = 0.5f + (1.5f * i / 15);
            weight[16 + i] = -3f + (2f * i / 15);
            weight[32 + i] = -1f + (3f * i / 15);
        }

        var q = Block4Quantizer.Quantize(weight, 48, 1, transposed: false, blockSize: 16, asymmetric: true);

        Assert.Equal(2f / 15, q.Scales[0], 6);
        Assert.Equal(0.2f, q.Scales[1], 6);
        Assert.Equal(0.2f, q.Scales[2], 6);
        Assert.Equal((0, 15, 5), (q.ZeroPoint(0, 0), q.ZeroPoint(1, 0), q.ZeroPoint(2, 0)));

        // Three blocks: two bytes per column, block 0 low nibble, block 1 high nibble, block 2 alone in byte 1.
        Assert.Equal([0xF0, 0x05], q.ZeroPoints);
        var dequantized = q.Dequantize();
        Assert.All(Enumerable.Range(0, 48), i => Assert.True(Math.Abs(weight[i] - dequantized[i]) <= 0.1f + 1e-6f, $"{i}: {weight[i]} vs {dequantized[i]}"));
        Assert.Equal(-3f, dequantized[16], 5); // the range ends are on the grid
        Assert.Equal(2f, dequantized[15], 5);
    }

    [Fact]
    public void A_transposed_weight_packs_like_its_transpose()
    {
        const int k = 64, n = 5;
        var random = new Random(8);
        var weight = Enumerable.Range(0, k * n).Select(_ => (float)(random.NextDouble() - 0.5)).ToArray();
        var transposed = new float[k * n];
        for (var row = 0; row < k; row++)
        {
            for (var col = 0; col < n; col++)
            {
                transposed[(col * k) + row] = weight[(row * n) + col];
            }
        }

        var direct = Block4Quantizer.Quantize(weight, k, n, transposed: false, 32, asymmetric: true);
        var fromTransposed = Block4Quantizer.Quantize(transposed, k, n, transposed: true, 32, asymmetric: true);

        Assert.Equal(direct.Packed, fromTransposed.Packed);
        Assert.Equal(direct.Scales, fromTransposed.Scales);
        Assert.Equal(direct.ZeroPoints, fromTransposed.ZeroPoints);
    }

    [Theory]
    [InlineData(16, true)]
    [InlineData(32, true)]
    [InlineData(256, true)]
    [InlineData(8, false)]
    [InlineData(48, false)]
    [InlineData(512, false)]
    public void Block_sizes_are_the_powers_of_two_from_16_to_256(int blockSize, bool supported) =>
        Assert.Equal(supported, Block4Quantizer.IsSupportedBlockSize(blockSize));

    [Fact]
    public void Gaussian_weights_keep_about_21_dB_in_blocks_of_32_and_lose_precision_with_larger_blocks()
    {
        var random = new Random(3);
        var weight = Enumerable.Range(0, 256 * 256).Select(_ => (float)(Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble()))).ToArray();
        double Sqnr(int blockSize, bool asymmetric)
        {
            var d = Block4Quantizer.Quantize(weight, 256, 256, false, blockSize, asymmetric).Dequantize();
            return 10 * Math.Log10(weight.Sum(v => (double)v * v) / weight.Zip(d, (a, b) => (double)(a - b) * (a - b)).Sum());
        }

        // Measured: 22.4, 21.4, 20.5, 19.8, 19.2 dB (symmetric) for 16 ... 256; asymmetric 0.1-0.8 dB better.
        var symmetric = new[] { 16, 32, 64, 128, 256 }.Select(b => Sqnr(b, false)).ToList();
        Assert.InRange(symmetric[1], 20.5, 22.5);
        Assert.Equal(symmetric.OrderDescending(), symmetric);
        Assert.True(Sqnr(32, true) > symmetric[1]);
    }
}
