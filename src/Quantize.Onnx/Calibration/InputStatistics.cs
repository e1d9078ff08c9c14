using System.Globalization;
using System.Runtime.InteropServices;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace Quantize.Onnx.Calibration;

/// <summary>
/// Sanity of calibration inputs, gathered while they are read: each sample's minimum and maximum per
/// input. Afterwards <see cref="Warnings"/> names constant inputs (QNT2101: a blank image, a zero-filled
/// array) and samples whose values lie far outside the others' (QNT2102: one sample scaled to 0..255
/// among samples in 0..1, or the reverse) — the usual signs of a sample that missed a preprocessing step.
/// </summary>
public sealed class InputStatistics
{
    /// <summary>Outside the typical range by more than this many typical spreads, a sample is "far outside".</summary>
    public const double FarOutsideSpreads = 4.0;

    /// <summary>A (non-constant) sample whose spread is below the typical spread divided by this is "far narrower".</summary>
    public const double FarNarrowerRatio = 100.0;

    /// <summary>Fewer samples give no "typical" range to compare with.</summary>
    public const int MinSamplesForOutliers = 4;

    private readonly Dictionary<string, List<SampleRange>> _ranges = new(StringComparer.Ordinal);

    /// <summary>One sample's values of one input: sample source (or file), minimum and maximum.</summary>
    public readonly record struct SampleRange(string Source, double Min, double Max);

    /// <summary>Records the minimum and maximum of one input on one sample (numeric types; other types are skipped).</summary>
    public void Add(string input, string source, TensorElementType type, ReadOnlySpan<byte> data)
    {
        if (data.IsEmpty || MinMax(type, data) is not var (min, max))
        {
            return;
        }

        if (!_ranges.TryGetValue(input, out var list))
        {
            _ranges[input] = list = [];
        }

        list.Add(new SampleRange(source, min, max));
    }

    /// <summary>The per-sample ranges recorded for <paramref name="input"/>, in reading order.</summary>
    public IReadOnlyList<SampleRange> RangesOf(string input) => _ranges.TryGetValue(input, out var list) ? list : [];

    /// <summary>QNT2101 per input with constant samples, QNT2102 per input with samples far outside the others.</summary>
    public IReadOnlyList<Diagnostic> Warnings(string setDescription)
    {
        var c = CultureInfo.InvariantCulture;
        var warnings = new List<Diagnostic>();
        foreach (var (input, ranges) in _ranges.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            var constant = ranges.Where(r => r.Min == r.Max).ToList();
            // A scalar or an input that is constant in every sample (a flag, a size) is not suspicious.
            if (constant.Count > 0 && constant.Count < ranges.Count)
            {
                warnings.Add(new Diagnostic(ErrorCodes.CalibrationInputConstant, constant[0].Source,
                    string.Format(c, "Calibration input '{0}' is constant in {1} of {2} samples of {3} ({4}): a blank image or a zero-filled array " +
                        "calibrates nothing and narrows the ranges. Check those samples, or remove them.",
                        input, constant.Count, ranges.Count, setDescription, Describe(constant, c))));
            }

            if (ranges.Count < MinSamplesForOutliers)
            {
                continue;
            }

            double typicalMin = Median(ranges.Select(r => r.Min)), typicalMax = Median(ranges.Select(r => r.Max));
            double spread = typicalMax - typicalMin;
            if (!(spread > 0))
            {
                continue;
            }

            var outliers = ranges.Where(r => r.Min < typicalMin - (FarOutsideSpreads * spread) || r.Max > typicalMax + (FarOutsideSpreads * spread)
                || (r.Max > r.Min && r.Max - r.Min < spread / FarNarrowerRatio)).ToList();
            if (outliers.Count > 0)
            {
                warnings.Add(new Diagnostic(ErrorCodes.CalibrationRangeOutlier, outliers[0].Source,
                    string.Format(c, "Calibration input '{0}': {1} of {2} samples of {3} have values far from the others' typical range [{4:G4}, {5:G4}] " +
                        "(median of the samples' minima and maxima): {6}. Check that every sample got the same preprocessing (e.g. scaling to [0, 1], mean/std); " +
                        "an outlier widens the INT8 range and costs precision on every other sample.",
                        input, outliers.Count, ranges.Count, setDescription, typicalMin, typicalMax, Describe(outliers, c))));
            }
        }

        return warnings;
    }

    private static string Describe(List<SampleRange> ranges, CultureInfo c) =>
        string.Join(", ", ranges.Take(5).Select(r => string.Format(c, "'{0}' [{1:G4}, {2:G4}]", r.Source, r.Min, r.Max)))
        + (ranges.Count > 5 ? string.Format(c, ", ... ({0} in all)", ranges.Count) : "");

    private static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToArray();
        int mid = sorted.Length / 2;
        return sorted.Length % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
    }

    private static (double Min, double Max)? MinMax(TensorElementType type, ReadOnlySpan<byte> data) => type switch
    {
        TensorElementType.Float => OfFloats(MemoryMarshal.Cast<byte, float>(data)),
        TensorElementType.Double => Of(MemoryMarshal.Cast<byte, double>(data), v => v),
        TensorElementType.Float16 => Of(MemoryMarshal.Cast<byte, Half>(data), v => (double)v),
        TensorElementType.UInt8 => Of(data, v => v),
        TensorElementType.Int8 => Of(MemoryMarshal.Cast<byte, sbyte>(data), v => v),
        TensorElementType.Int16 => Of(MemoryMarshal.Cast<byte, short>(data), v => v),
        TensorElementType.UInt16 => Of(MemoryMarshal.Cast<byte, ushort>(data), v => v),
        TensorElementType.Int32 => Of(MemoryMarshal.Cast<byte, int>(data), v => v),
        TensorElementType.Int64 => Of(MemoryMarshal.Cast<byte, long>(data), v => v),
        _ => null,
    };

    /// <summary>The common case without a delegate call per element (inputs of a million values per sample are usual).</summary>
    private static (double, double) OfFloats(ReadOnlySpan<float> values)
    {
        float min = float.PositiveInfinity, max = float.NegativeInfinity;
        foreach (float v in values)
        {
            min = MathF.Min(min, v);
            max = MathF.Max(max, v);
        }

        return (min, max);
    }

    private static (double, double) Of<T>(ReadOnlySpan<T> values, Func<T, double> toDouble)
    {
        double min = double.PositiveInfinity, max = double.NegativeInfinity;
        foreach (var v in values)
        {
            double d = toDouble(v);
            min = Math.Min(min, d);
            max = Math.Max(max, d);
        }

        return (min, max);
    }
}
