using Quantize.Onnx.Model;
using Quantize.Onnx.Model.Proto;
using Quantize.Onnx.Quantization;

namespace Quantize.Onnx.Tests.Quantization;

/// <summary>
/// The pair rule behind saturation-safe weights: <see cref="SaturationBound.PairSums"/> finds, per output channel, the
/// largest same-sign neighbour pair along K in every order ORT may lay K out in, and
/// <see cref="WeightQuantizer.QuantizeWeight"/> with <c>saturationSafe</c> keeps every such pair at |q₁| + |q₂| ≤ 128.
/// </summary>
public sealed class SaturationBoundTests
{
    [Fact]
    public void Rows_count_same_sign_neighbours_and_only_the_larger_of_an_opposite_sign_pair()
    {
        // Row 0: (1, 2) is the only same-sign pair (3); 5 has opposite-sign neighbours only, so it counts alone.
        // Row 1: (-2, -3) is the largest same-sign pair (5); (-3, 4) is opposite and would be 7 if it were added.
        float[] values = [1, 2, -5, 0.5f, -1, -2, -3, 4];

        var sums = SaturationBound.PairSums(values, [2, 4], KOrder.Rows);

        Assert.Equal([5f, 5f], sums);
    }

    [Fact]
    public void Rows_pairs_stay_inside_each_output_row()
    {
        // 3 | 3 are neighbours in memory but belong to different output channels.
        var sums = SaturationBound.PairSums([1, 3, 3, 1], [2, 2], KOrder.Rows);

        Assert.Equal([4f, 4f], sums);
        Assert.Equal([1f, 1f], SaturationBound.PairSums([-1, 0.9f, 0.9f, -1], [2, 2], KOrder.Rows));
    }

    // One output channel of a [1, 2, 1, 3] Conv weight: input i, kernel position p at index i*3 + p (NCHW memory).
    // NCHW order along K: 0 1 2 3 4 5. NHWC order (position, then input): 0 3 | 1 4 | 2 5, where 3 → 1 and 4 → 2 are
    // the wraps from the last input at one position to the first input at the next.
    [Theory]
    [InlineData(2, 3, "NCHW pair (2, 3): input 0's last position and input 1's first")]
    [InlineData(0, 3, "NHWC pair (0, 3): both inputs at position 0")]
    [InlineData(1, 3, "NHWC wrap (3, 1): input 1 at position 0, then input 0 at position 1")]
    [InlineData(2, 4, "NHWC wrap (4, 2): input 1 at position 1, then input 0 at position 2")]
    [InlineData(4, 5, "NCHW pair (4, 5) within input 1")]
    public void Conv_counts_neighbours_in_both_NCHW_and_NHWC_order(int first, int second, string pair)
    {
        var values = Enumerable.Repeat(-0.1f, 6).ToArray();
        values[first] = 1;
        values[second] = 1.5f;

        var sums = SaturationBound.PairSums(values, [1, 2, 1, 3], KOrder.Conv);

        Assert.True(Math.Abs(sums[0] - 2.5f) < 1e-6, $"{pair}: pair sum {sums[0]}");
    }

    [Theory]
    [InlineData(0, 4)] // input 0 position 0, input 1 position 1: neighbours in no order
    [InlineData(0, 2)] // two apart in NCHW order
    [InlineData(0, 5)]
    public void Conv_does_not_pair_weights_that_are_neighbours_in_no_order(int first, int second)
    {
        var values = Enumerable.Repeat(-0.1f, 6).ToArray();
        values[first] = 1;
        values[second] = 1.5f;

        var sums = SaturationBound.PairSums(values, [1, 2, 1, 3], KOrder.Conv);

        Assert.Equal(1.5f, sums[0]);
    }

    [Fact]
    public void Conv_pairs_stay_inside_each_output_channel()
    {
        // Channel 0 ends with 1, channel 1 starts with 1: neighbours in memory, not along any channel's K.
        // Within each channel the 1 has only negative neighbours, in NCHW and in NHWC order.
        float[] values = [0.2f, -0.1f, -0.3f, 1, /* channel 1 */ 1, -0.2f, -0.1f, 0.1f];

        var sums = SaturationBound.PairSums(values, [2, 2, 1, 2], KOrder.Conv);

        Assert.Equal([1f, 1f], sums);
    }

    [Fact]
    public void Columns_pair_down_K_not_across_N()
    {
        // [K=3, N=2]: column 0 is 1, -1, 0.5 (no same-sign pair: 1); column 1 is 1, -1, -0.5 (-1, -0.5: 1.5).
        // Across N, (1, 1) and (-1, -1) would be 2.
        float[] values = [1, 1, -1, -1, 0.5f, -0.5f];

        var sums = SaturationBound.PairSums(values, [3, 2], KOrder.Columns);

        Assert.Equal([1f, 1.5f], sums);
    }

    [Fact]
    public void Batched_columns_do_not_pair_across_the_batch()
    {
        // [2, K=2, N=1]: batch 0 is (-0.1, 1), batch 1 is (1, -0.1); the two 1s meet only across the batch boundary.
        var sums = SaturationBound.PairSums([-0.1f, 1, 1, -0.1f], [2, 2, 1], KOrder.Columns);

        Assert.Equal([1f], sums);
    }

    [Fact]
    public void Safe_scale_is_the_pair_sum_over_127()
    {
        Assert.Equal(2f / 127f, SaturationBound.SafeScale(2f));
    }

    [Fact]
    public void Without_saturation_safety_the_scale_is_the_8_bit_grid_even_when_pairs_could_saturate()
    {
        // Two equal largest neighbours: the plain grid gives 127 + 127 = 254 for that pair.
        var weight = TensorValues.FromFloats("w", [2, 4], [0.5f, 2, 2, 0.1f, -1, -1, 0.3f, 0.2f]);

        var q = WeightQuantizer.QuantizeWeight("w_q", weight, QuantType.Int8, 0, null);

        Assert.Equal(2f / 127f, q.Scales[0]);
        Assert.Equal(1f / 127f, q.Scales[1]);
        var ints = Int8(q.Data);
        Assert.Equal(254, Math.Abs(ints[1]) + Math.Abs(ints[2]));
    }

    [Fact]
    public void Two_equal_largest_neighbours_quantize_to_exactly_128_together()
    {
        var weight = TensorValues.FromFloats("w", [1, 4], [0.1f, 3, 3, -0.2f]);

        var q = WeightQuantizer.QuantizeWeight("w_q", weight, QuantType.Int8, 0, null, saturationSafe: KOrder.Rows);

        Assert.Equal(6f / 127f, q.Scales[0]);
        var ints = Int8(q.Data);
        Assert.Equal(ints[1], ints[2]);
        Assert.InRange(ints[1] + ints[2], 126, 128); // 63.5 steps each, however the float quotient rounds
    }

    [Theory]
    [InlineData("Rows")]
    [InlineData("Conv")]
    [InlineData("Columns")]
    public void A_largest_weight_with_opposite_sign_neighbours_keeps_the_8_bit_scale(string kOrder)
    {
        // Per output channel K = 6; the largest weight (2) has only negative neighbours in every order (Conv [2, 2, 1, 3]:
        // NCHW -0.3 2 -0.4 | -0.2 -0.1 0.1, NHWC -0.3 -0.2 2 -0.1 -0.4 0.1), and the same-sign pairs are small.
        // Rows: [2, 6]; Columns: [6, 2].
        var order = Enum.Parse<KOrder>(kOrder);
        float[] channel = [-0.3f, 2, -0.4f, -0.2f, -0.1f, 0.1f];
        var (dims, values, axis) = Layout(order, [channel, channel.Select(v => -v).ToArray()]);
        var weight = TensorValues.FromFloats("w", dims, values);

        var q = WeightQuantizer.QuantizeWeight("w_q", weight, QuantType.Int8, axis, null, saturationSafe: order);

        Assert.Equal([2f / 127f, 2f / 127f], q.Scales);
    }

    [Fact]
    public void A_small_same_sign_neighbour_costs_little_of_the_8_bit_scale()
    {
        var weight = TensorValues.FromFloats("w", [1, 4], [-0.5f, 2, 0.05f, -1]);

        var q = WeightQuantizer.QuantizeWeight("w_q", weight, QuantType.Int8, 0, null, saturationSafe: KOrder.Rows);

        Assert.Equal(2.05f / 127f, q.Scales[0], 6);
    }

    [Fact]
    public void Uint8_weights_ignore_the_pair_rule()
    {
        // u8 weights have no u8×s8 kernel to saturate; their grid is the usual one.
        var weight = TensorValues.FromFloats("w", [1, 4], [0.1f, 3, 3, -0.2f]);

        var safe = WeightQuantizer.QuantizeWeight("w_q", weight, QuantType.UInt8, 0, null, saturationSafe: KOrder.Rows);
        var plain = WeightQuantizer.QuantizeWeight("w_q", weight, QuantType.UInt8, 0, null);

        Assert.Equal(plain.Scales, safe.Scales);
    }

    public static TheoryData<string, bool, int> RandomCases()
    {
        var data = new TheoryData<string, bool, int>();
        foreach (var order in new[] { "Rows", "Conv", "Columns" })
        {
            foreach (var perChannel in new[] { true, false })
            {
                foreach (var seed in new[] { 1, 2, 3 })
                {
                    data.Add(order, perChannel, seed);
                }
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(RandomCases))]
    public void After_saturation_safe_quantization_every_same_sign_neighbour_pair_is_at_most_128(string kOrder, bool perChannel, int seed)
    {
        var order = Enum.Parse<KOrder>(kOrder);
        // 8 output channels of K = 4 inputs × 3×3 positions; some channels adversarial: two equal largest weights as
        // neighbours (in NHWC order only, for Conv), all weights large and of one sign, or one weight standing out.
        var random = new Random(seed);
        var channels = new List<float[]>();
        for (var c = 0; c < 8; c++)
        {
            var k = new float[36];
            for (var i = 0; i < k.Length; i++)
            {
                k[i] = (float)(random.NextDouble() * 2 - 1) * (c % 2 == 0 ? 1f : 0.05f);
            }

            switch (c % 4)
            {
                case 0:
                    k[4] = k[5] = 1.5f; // neighbours in every row-major order
                    break;
                case 1:
                    k[2] = k[11] = -1.5f; // Conv: input 0 and input 1 at position 2 — neighbours in NHWC order only
                    break;
                case 2:
                    for (var i = 0; i < k.Length; i++)
                    {
                        k[i] = 0.9f + (0.1f * (float)random.NextDouble());
                    }

                    break;
                default:
                    k[17] = 4;
                    break;
            }

            channels.Add(k);
        }

        var (dims, values, axis) = Layout(order, channels);
        var weight = TensorValues.FromFloats("w", dims, values);

        var q = WeightQuantizer.QuantizeWeight("w_q", weight, QuantType.Int8, perChannel ? axis : null, null, saturationSafe: order);

        var ints = Int8(q.Data);
        var quantized = Channels(order, dims, ints.Select(v => (float)v).ToArray());
        for (var c = 0; c < quantized.Count; c++)
        {
            foreach (var (a, b) in Neighbours(order, quantized[c]))
            {
                if (Math.Sign(a) == Math.Sign(b))
                {
                    Assert.True(Math.Abs(a) + Math.Abs(b) <= 128, $"channel {c}: |{a}| + |{b}| > 128 ({order}, per-channel {perChannel})");
                }
            }
        }

        // The safe grid is never finer than the 8-bit grid, and dequantizes within half a step.
        for (var c = 0; c < channels.Count; c++)
        {
            var scale = q.Scales[perChannel ? c : 0];
            var absMax = perChannel ? channels[c].Max(Math.Abs) : channels.SelectMany(v => v).Max(Math.Abs);
            Assert.True(scale >= absMax / 127f * (1 - 1e-6f));
            for (var i = 0; i < 36; i++)
            {
                Assert.InRange(quantized[c][i] * scale - channels[c][i], -scale / 2 - 1e-5f, scale / 2 + 1e-5f);
            }
        }
    }

    /// <summary>The channels (each 36 = 4 inputs × 3×3 positions, NCHW) laid out as the order's weight tensor.</summary>
    private static (long[] Dims, float[] Values, int Axis) Layout(KOrder order, IReadOnlyList<float[]> channels)
    {
        var k = channels[0].Length;
        var n = channels.Count;
        switch (order)
        {
            case KOrder.Columns:
                var columns = new float[k * n];
                for (var c = 0; c < n; c++)
                {
                    for (var i = 0; i < k; i++)
                    {
                        columns[(i * n) + c] = channels[c][i];
                    }
                }

                return ([k, n], columns, 1);
            case KOrder.Conv:
                return (k == 36 ? [n, 4, 3, 3] : [n, 2, 1, k / 2], channels.SelectMany(v => v).ToArray(), 0);
            default:
                return ([n, k], channels.SelectMany(v => v).ToArray(), 0);
        }
    }

    /// <summary>The inverse of <see cref="Layout"/>: each output channel's K values, in NCHW order for Conv.</summary>
    private static List<float[]> Channels(KOrder order, long[] dims, float[] values)
    {
        if (order != KOrder.Columns)
        {
            return values.Chunk(values.Length / (int)dims[0]).ToList();
        }

        var (k, n) = ((int)dims[0], (int)dims[1]);
        return Enumerable.Range(0, n).Select(c => Enumerable.Range(0, k).Select(i => values[(i * n) + c]).ToArray()).ToList();
    }

    /// <summary>Every neighbour pair along K, at either alignment, in each order the kernels may use (Conv: NCHW and NHWC, 4 inputs × 9 positions).</summary>
    private static IEnumerable<(float, float)> Neighbours(KOrder order, float[] k)
    {
        for (var i = 0; i + 1 < k.Length; i++)
        {
            yield return (k[i], k[i + 1]);
        }

        if (order == KOrder.Conv)
        {
            var nhwc = Enumerable.Range(0, 9).SelectMany(p => Enumerable.Range(0, 4).Select(input => k[(input * 9) + p])).ToArray();
            for (var i = 0; i + 1 < nhwc.Length; i++)
            {
                yield return (nhwc[i], nhwc[i + 1]);
            }
        }
    }

    private static sbyte[] Int8(TensorProto tensor)
    {
        Assert.Equal((int)TensorProto.Types.DataType.Int8, tensor.DataType);
        return tensor.RawData.Span.ToArray().Select(b => unchecked((sbyte)b)).ToArray();
    }
}
