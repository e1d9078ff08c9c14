namespace Quantize.Onnx.Samples;

/// <summary>
/// One calibration sample: where it came from (a sample folder, or a file for single-input models)
/// and one tensor per model input, in model input order, each named after its model input.
/// </summary>
public sealed record InputSample(string Source, IReadOnlyList<TensorData> Inputs)
{
    /// <summary>Ground truth carried by the sample's layout (class folder, expected images); null: none.</summary>
    public SampleGroundTruth? GroundTruth { get; init; }
}
