using System.Globalization;

namespace Quantize.Onnx.Tuning;

/// <summary>
/// Whole-model variants in order of cost, each changing one thing from the user's configuration: first those that
/// reuse the MinMax ranges, then the histogram methods (one histogram pass serves every percentile).
/// </summary>
internal static class WholeModelVariants
{
    public static IEnumerable<(string Step, QuantizationOptions Options)> Of(QuantizationOptions baseOptions, bool hasEqualizationPairs, bool perChannelPossible)
    {
        if (hasEqualizationPairs)
        {
            yield return ($"equalize={!baseOptions.Equalize}".ToLowerInvariant(), baseOptions with { Equalize = !baseOptions.Equalize });
        }

        yield return ($"bias-correction={!baseOptions.BiasCorrection}".ToLowerInvariant(), baseOptions with { BiasCorrection = !baseOptions.BiasCorrection });
        yield return ($"symmetric-activations={!baseOptions.SymmetricActivations}".ToLowerInvariant(), baseOptions with { SymmetricActivations = !baseOptions.SymmetricActivations });
        if (baseOptions.PerChannel && perChannelPossible)
        {
            yield return ("per-channel=false", baseOptions with { PerChannel = false });
        }

        foreach (var method in Enum.GetValues<CalibrationMethod>().Where(m => m != baseOptions.CalibrationMethod))
        {
            yield return ($"calibration-method={method}".ToLowerInvariant(), baseOptions with { CalibrationMethod = method });
        }

        // Outliers: a percentile that cuts more than the default.
        foreach (var percentile in new[] { 99.99, 99.9 }.Where(p => p < baseOptions.CalibrationPercentile))
        {
            yield return (string.Create(CultureInfo.InvariantCulture, $"calibration-method=percentile, calibration-percentile={percentile}"),
                baseOptions with { CalibrationMethod = CalibrationMethod.Percentile, CalibrationPercentile = percentile });
        }
    }
}
