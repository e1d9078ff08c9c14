namespace Quantize.Onnx.Calibration;

/// <summary>
/// Bounds the gen-0 heap of a long per-sample loop (validation, calibration): a gen-0 collection runs
/// whenever <see cref="Budget"/> bytes were allocated since the last one.
/// </summary>
/// <remarks>
/// Why: a sample costs ~100 ms of native ONNX Runtime work and only a few KiB of managed garbage (file
/// listing, .npy header, ORT run bookkeeping, plus whatever the host's progress callback allocates:
/// the benchmark's working-set probe alone is ~30 KiB a sample). The workstation GC sizes gen 0 from
/// the CPU cache (tens of MiB here), so the first gen-0 collection only comes after thousands of
/// samples, and until then every allocation touches fresh pages: the peak working set of 1,000
/// samples was ~20 MiB above that of 10 (measured: 173 vs 153 MiB; 160 MiB with
/// DOTNET_GCgen0size=0x400000). A gen-0 collection of a heap holding almost nothing live takes well
/// under a millisecond, so one every <see cref="Budget"/> bytes (every ~50-500 samples) keeps the
/// touched gen-0 memory at a few MiB whatever the number of samples, at no measurable cost.
/// </remarks>
internal struct Gen0Bound
{
    /// <summary>Managed bytes allocated between two forced gen-0 collections.</summary>
    public const long Budget = 2 << 20;

    private long _next;

    public static Gen0Bound Start() => new() { _next = GC.GetTotalAllocatedBytes() + Budget };

    /// <summary>Call once per sample; collects gen 0 when the budget is spent.</summary>
    public void Tick()
    {
        if (GC.GetTotalAllocatedBytes() < _next)
        {
            return;
        }

        GC.Collect(0, GCCollectionMode.Forced, blocking: true);
        _next = GC.GetTotalAllocatedBytes() + Budget;
    }
}
