using Quantize.Onnx.Samples.Images;

namespace Quantize.Onnx.Samples;

/// <summary>Options for <see cref="SampleSet.Open"/>.</summary>
public sealed record SampleSetOptions
{
    /// <summary>Use at most this many samples (the first ones in name order, or in shuffled order with <see cref="ShuffleSeed"/>); null = all.</summary>
    public int? MaxSamples { get; init; }

    /// <summary>Shuffle the name-sorted samples with this seed (deterministic, <see cref="SampleOrder"/>) before <see cref="MaxSamples"/> applies; null: name order.</summary>
    public int? ShuffleSeed { get; init; }

    /// <summary>How image files become input tensors; null: the defaults of <see cref="ImageOptions"/> (everything from the model's input shape).</summary>
    public ImageOptions? Images { get; init; }
}
