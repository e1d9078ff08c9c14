using System.Globalization;
using Quantize.Onnx.Model.Proto;
using DataLocation = Quantize.Onnx.Model.Proto.TensorProto.Types.DataLocation;

namespace Quantize.Onnx.Model;

/// <summary>Where a deferred tensor's bytes are: the <c>location</c>, <c>offset</c> and <c>length</c> entries of its external data.</summary>
internal static class ExternalLocation
{
    /// <summary>The file (relative to the work folder), offset and byte length of an EXTERNAL tensor.</summary>
    public static (string Location, long Offset, long Length) Of(TensorProto tensor)
    {
        var (location, offset, written) = ExternalDataResolver.Entries(tensor, (_, value) => long.Parse(value, CultureInfo.InvariantCulture));
        long length = written ?? -1;
        if (length < 0 && TensorElementInfo.TryGetByteSize(tensor, out long size))
        {
            length = size; // ORT's saved models may leave the length to the shape
        }

        if (location is null || length < 0)
        {
            // Only the loader's and the spill's tensors are deferred, and both write all three keys.
            throw new InvalidOperationException($"Tensor '{tensor.Name}' is external but has no location or length.");
        }

        return (location, offset, length);
    }

    /// <summary>Makes <paramref name="tensor"/> EXTERNAL, its bytes at <paramref name="offset"/> of <paramref name="location"/>.</summary>
    public static void Set(TensorProto tensor, string location, long offset, long length)
    {
        tensor.ExternalData.Clear();
        tensor.ExternalData.Add(new StringStringEntryProto { Key = "location", Value = location });
        tensor.ExternalData.Add(new StringStringEntryProto { Key = "offset", Value = offset.ToString(CultureInfo.InvariantCulture) });
        tensor.ExternalData.Add(new StringStringEntryProto { Key = "length", Value = length.ToString(CultureInfo.InvariantCulture) });
        tensor.DataLocation = DataLocation.External;
    }
}
