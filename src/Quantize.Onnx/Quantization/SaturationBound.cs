namespace Quantize.Onnx.Quantization;

/// <summary>How a weight tensor's contraction dimension K runs, which decides the products an x86 kernel pairs.</summary>
internal enum KOrder
{
    /// <summary>[out, K...]: each output row's remaining dimensions, flattened, are K (Gemm with transB, LSTM rows).</summary>
    Rows,

    /// <summary>[out, in, kernel...]: K is (in, kernel) in NCHW order or (kernel, in) in NHWC order; ORT may use either, so both count.</summary>
    Conv,

    /// <summary>[..., K, N]: K runs down each column (MatMul, Gemm without transB, MatMulInteger).</summary>
    Columns,
}

/// <summary>
/// Proof that a layer cannot saturate on x86 CPUs without VNNI. Their u8×s8 kernels (vpmaddubsw) add the products of
/// two neighbours along K in a saturating int16. Activations are uint8, so only a pair of weights of the same sign can
/// pass 32,767: for an opposite-sign pair the sum stays within ±255 × 127. With |q₁| + |q₂| ≤ 128 for every same-sign
/// neighbour pair, no sum passes 255 × 128 = 32,640, and the kernel computes what exact int32 accumulation computes.
/// Neighbours are taken in every order ORT may lay K out in (and at either alignment), so the proof holds whichever it uses.
/// </summary>
internal static class SaturationBound
{
    /// <summary>Per output channel: the largest |w₁| + |w₂| over same-sign neighbours along K (real values, before scaling).</summary>
    public static float[] PairSums(ReadOnlySpan<float> values, long[] dims, KOrder order)
    {
        switch (order)
        {
            case KOrder.Columns when dims.Length >= 2:
                {
                    var (k, n) = ((int)dims[^2], (int)dims[^1]);
                    var sums = new float[n];
                    for (long i = 0; i + n < values.Length; i++)
                    {
                        if ((i / n % k) < k - 1)
                        {
                            var c = (int)(i % n);
                            sums[c] = Math.Max(sums[c], SameSign(values[(int)i], values[(int)(i + n)]));
                        }
                    }

                    return sums;
                }

            case KOrder.Conv when dims.Length >= 3:
                {
                    var (channels, inputs) = ((int)dims[0], (int)dims[1]);
                    var positions = (int)dims.Skip(2).Aggregate(1L, (a, b) => a * b);
                    var sums = Rows(values, channels);
                    for (var c = 0; c < channels; c++)
                    {
                        var row = values.Slice(c * inputs * positions, inputs * positions);
                        for (var p = 0; p < positions; p++)
                        {
                            for (var i = 0; i < inputs; i++)
                            {
                                // NHWC order: (p, i) then (p, i + 1), or the last input at p then the first at p + 1.
                                var next = i + 1 < inputs ? row[((i + 1) * positions) + p] : p + 1 < positions ? row[p + 1] : 0f;
                                sums[c] = Math.Max(sums[c], SameSign(row[(i * positions) + p], next));
                            }
                        }
                    }

                    return sums;
                }

            default:
                return Rows(values, dims.Length == 0 ? 1 : (int)dims[0]);
        }
    }

    /// <summary>Neighbours in memory order within each of <paramref name="channels"/> equal rows.</summary>
    private static float[] Rows(ReadOnlySpan<float> values, int channels)
    {
        var sums = new float[Math.Max(channels, 1)];
        var inner = values.Length / sums.Length;
        for (var c = 0; c < sums.Length; c++)
        {
            var row = values.Slice(c * inner, inner);
            for (var i = 0; i + 1 < row.Length; i++)
            {
                sums[c] = Math.Max(sums[c], SameSign(row[i], row[i + 1]));
            }

            if (row.Length == 1)
            {
                sums[c] = Math.Abs(row[0]);
            }
        }

        return sums;
    }

    private static float SameSign(float a, float b) => (a > 0 && b > 0) || (a < 0 && b < 0) ? Math.Abs(a) + Math.Abs(b) : Math.Max(Math.Abs(a), Math.Abs(b));

    /// <summary>
    /// The smallest scale at which every same-sign neighbour pair quantizes to at most 128 together: each rounds up by
    /// at most ½, so a real pair sum of 127 steps is safe. (Single weights stay within ±127 by the usual clamp.)
    /// </summary>
    public static float SafeScale(float pairSum) => pairSum / 127f;
}
