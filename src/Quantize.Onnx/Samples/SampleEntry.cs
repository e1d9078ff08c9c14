namespace Quantize.Onnx.Samples;

/// <summary>What a sample of a <see cref="SampleSet"/> is on disk.</summary>
internal enum SampleEntryKind
{
    SampleFolder,
    TensorFile,
    Archive,
    Image,
}

/// <summary>One sample: its sort name, path, what it is, and (images in class folders) its label.</summary>
internal sealed record SampleEntry(string Name, string Path, SampleEntryKind Kind, string? Label = null);
