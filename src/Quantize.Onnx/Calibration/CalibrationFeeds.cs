using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Quantize.Onnx.Samples;

namespace Quantize.Onnx.Calibration;

/// <summary>
/// The ONNX Runtime inputs of a calibration run, reused from sample to sample: one native tensor per
/// model input, allocated once (again only when a sample's type or shape differs from the previous
/// one) and filled in place. <c>.npy</c> data is read straight from the file into the tensor, so a
/// sample costs no managed array and no copy; <c>.pb</c> files, archives and images are read, then copied in. Every
/// tensor is checked as <see cref="SampleSet.Enumerate"/> checks it (type, shape, finite values).
/// </summary>
/// <remarks>
/// Reading each sample into fresh arrays (a 64 KiB FileStream buffer and a large-object-heap array per
/// file) made the managed heap, and with it the peak working set, grow with the number of samples
/// until a gen-2 collection ran; reused native buffers keep calibration's memory flat.
/// </remarks>
internal sealed class CalibrationFeeds : IDisposable
{
    private readonly SampleSet _data;
    private readonly string[] _names;
    private readonly OrtValue?[] _values;
    private readonly TensorElementType[] _types;
    private readonly long[][] _shapes;
    private readonly InputStatistics? _statistics;

    /// <param name="data">The samples.</param>
    /// <param name="names">The feed name of each of <paramref name="data"/>'s inputs, in model input order.</param>
    /// <param name="statistics">Receives each loaded input's range (sanity checks); null: none.</param>
    public CalibrationFeeds(SampleSet data, IReadOnlyList<string> names, InputStatistics? statistics = null)
    {
        _statistics = statistics;
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(names);
        if (names.Count != data.Inputs.Count)
        {
            throw new ArgumentException($"{names.Count} feed names for {data.Inputs.Count} model inputs.", nameof(names));
        }

        _data = data;
        _names = names.ToArray();
        _values = new OrtValue?[_names.Length];
        _types = new TensorElementType[_names.Length];
        _shapes = new long[_names.Length][];
        Values = new Dictionary<string, OrtValue>(_names.Length, StringComparer.Ordinal);
    }

    /// <summary>The inputs of the last loaded sample by feed name; valid until the next <see cref="Load"/> or <see cref="Dispose"/>.</summary>
    public Dictionary<string, OrtValue> Values { get; }

    /// <summary>Reads and checks sample <paramref name="index"/> into <see cref="Values"/>; returns its source (for messages).</summary>
    public string Load(int index)
    {
        var (source, files) = _data.SampleFiles(index);
        for (int i = 0; i < files.Length; i++)
        {
            string file = files[i];
            var spec = _data.Inputs[i];
            if (file.EndsWith(".npy", StringComparison.OrdinalIgnoreCase))
            {
                using var stream = NpyReader.OpenRead(file);
                var header = NpyReader.ReadHeader(stream, file);
                SampleValidator.CheckTypeAndShape(header.ElementType, header.Shape, spec, file);
                int length = NpyReader.DataLength(header, file);
                var target = Tensor(i, header.ElementType, header.Shape);
                if (length > 0)
                {
                    var span = target.GetTensorMutableRawData();
                    NpyReader.ReadData(stream, header, span, file);
                    SampleValidator.CheckFinite(header.ElementType, header.Shape, span, file);
                    _statistics?.Add(spec.Name, source, header.ElementType, span);
                }
            }
            else
            {
                var tensor = _data.ReadInput(file, spec);
                SampleValidator.Check(tensor, spec, file);
                var target = Tensor(i, tensor.ElementType, tensor.Shape);
                if (tensor.Data.Length > 0)
                {
                    tensor.Data.AsSpan().CopyTo(target.GetTensorMutableRawData());
                    _statistics?.Add(spec.Name, source, tensor.ElementType, tensor.Data);
                }
            }
        }

        return source;
    }

    /// <summary>Input <paramref name="i"/>'s tensor, re-allocated only when the type or shape changed.</summary>
    private OrtValue Tensor(int i, TensorElementType type, long[] shape)
    {
        if (_values[i] is { } current && _types[i] == type && _shapes[i].AsSpan().SequenceEqual(shape))
        {
            return current;
        }

        Values.Remove(_names[i]);
        _values[i]?.Dispose();
        _values[i] = null;
        var value = OrtValue.CreateAllocatedTensorValue(OrtAllocator.DefaultInstance, type, shape);
        _values[i] = value;
        _types[i] = type;
        _shapes[i] = shape;
        Values[_names[i]] = value;
        return value;
    }

    public void Dispose()
    {
        Values.Clear();
        for (int i = 0; i < _values.Length; i++)
        {
            _values[i]?.Dispose();
            _values[i] = null;
        }
    }
}
