namespace Quantize.Onnx.Samples;

/// <summary>
/// Deterministic shuffling of a sample list: Fisher–Yates driven by SplitMix64 from the seed, so the
/// same seed and the same (name-sorted) samples give the same order on every machine and .NET version.
/// </summary>
public static class SampleOrder
{
    public static void Shuffle<T>(IList<T> items, int seed)
    {
        ArgumentNullException.ThrowIfNull(items);
        ulong state = unchecked((ulong)seed);
        for (int i = items.Count - 1; i > 0; i--)
        {
            int j = (int)(Next(ref state) % (ulong)(i + 1));
            (items[i], items[j]) = (items[j], items[i]);
        }
    }

    private static ulong Next(ref ulong state)
    {
        unchecked
        {
            ulong z = state += 0x9E3779B97F4A7C15UL;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
            return z ^ (z >> 31);
        }
    }
}
