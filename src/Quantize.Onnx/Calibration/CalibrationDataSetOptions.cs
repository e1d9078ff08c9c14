namespace Quantize.Onnx.Calibration;

/// <summary>Options for <see cref="CalibrationDataSet.Open"/>.</summary>
public sealed record CalibrationDataSetOptions
{
    /// <summary>Use at most this many samples (the first ones in name order); null = all.</summary>
    public int? MaxSamples { get; init; }
}
