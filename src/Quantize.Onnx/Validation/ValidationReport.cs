using System.Globalization;

namespace Quantize.Onnx.Validation;

/// <summary>One metric on one output: FP32 and INT8 against ground truth (task metrics), or INT8 vs FP32 (fidelity, <see cref="Fp32"/> null).</summary>
public sealed record MetricResult(string Output, string Metric, string Kind, double? Fp32, double Int8, double? Drop, int Samples, string Unit)
{
    /// <summary>95 % bootstrap interval of <see cref="Fp32"/> (task metrics).</summary>
    public ConfidenceInterval? Fp32Interval { get; init; }

    /// <summary>95 % bootstrap interval of <see cref="Int8"/>.</summary>
    public ConfidenceInterval? Int8Interval { get; init; }

    /// <summary>95 % bootstrap interval of <see cref="Drop"/> (FP32 and INT8 resampled in pairs).</summary>
    public ConfidenceInterval? DropInterval { get; init; }
}

/// <summary>The verdict of one check. For drop checks <see cref="Value"/> is the drop, otherwise the INT8 value.</summary>
public sealed record CheckResult(string Check, string Metric, string Output, bool IsDrop, double? Fp32, double Int8, double Value, string Comparison, double Threshold, bool Passed, string Unit)
{
    /// <summary>95 % bootstrap interval of <see cref="Value"/> over the validation samples.</summary>
    public ConfidenceInterval? Interval { get; init; }

    /// <summary>The threshold lies inside <see cref="Interval"/>: with these samples the verdict could go either way.</summary>
    public bool WithinNoise => Interval is { } i && i.Contains(Threshold);

    /// <summary>
    /// E.g. <c>psnr 36.57 -> 34.13 dB (drop 2.44 [2.1, 2.8] &lt;= 3: ok)</c> or <c>sqnr 35.1 [34.2, 36] dB (&gt;= 10: ok)</c>;
    /// the bracket is the 95 % bootstrap interval of the checked value.
    /// </summary>
    public string Describe()
    {
        var c = CultureInfo.InvariantCulture;
        var verdict = (Passed ? "ok" : "FAILED") + (WithinNoise ? ", within noise" : "");
        var metric = Metric;
        var ci = Interval is { } i ? " " + i : "";
        return IsDrop
            ? string.Format(c, "{0} {1} -> {2}{3} (drop {4}{8} {5} {6}: {7})", metric, Number(Fp32!.Value), Number(Int8), Unit, Number(Value), Comparison, Number(Threshold), verdict, ci)
            : Fp32 is double f
                ? string.Format(c, "{0} {1} -> {2}{7}{3} ({4} {5}: {6})", metric, Number(f), Number(Int8), Unit, Comparison, Number(Threshold), verdict, ci)
                : string.Format(c, "{0} {1}{6}{2} ({3} {4}: {5})", metric, Number(Int8), Unit, Comparison, Number(Threshold), verdict, ci);
    }

    internal static string Number(double v) =>
        double.IsPositiveInfinity(v) ? "inf" : double.IsNegativeInfinity(v) ? "-inf" : double.IsNaN(v) ? "n/a"
        : Math.Abs(v) >= 0.01 || v == 0 ? v.ToString("0.##", CultureInfo.InvariantCulture) : v.ToString("0.###e0", CultureInfo.InvariantCulture);
}

/// <summary>
/// Error of one quantized layer: SQNR (dB) of its output in the INT8 model (read through DequantizeLinear)
/// against the same tensor of the FP32 model, and how many dB were lost in this layer (its inputs' SQNR minus its output's).
/// </summary>
public sealed record LayerError(string Node, string OpType, string Tensor, double SqnrDb, double LossDb);

/// <summary>Everything the accuracy gate measured and decided for one model.</summary>
public sealed record ValidationReport
{
    public required string Folder { get; init; }

    public required int Samples { get; init; }

    /// <summary>The validation folder is the calibration folder (warning QNT2403).</summary>
    public required bool SameAsCalibration { get; init; }

    public required IReadOnlyList<MetricResult> Metrics { get; init; }

    public required IReadOnlyList<CheckResult> Checks { get; init; }

    /// <summary>Quantized layers by damage, worst first (empty when there was nothing to compare).</summary>
    public required IReadOnlyList<LayerError> WorstLayers { get; init; }

    /// <summary>Validation samples the per-layer SQNR was measured on.</summary>
    public required int LayerSamples { get; init; }

    /// <summary>Share of validation activations outside the calibrated ranges (null when not measured).</summary>
    public CoverageReport? Coverage { get; init; }

    public bool Passed => Checks.All(c => c.Passed);
}
