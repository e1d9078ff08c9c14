using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace Quantize.Onnx.Samples;

/// <summary>
/// Reads NumPy <c>.npy</c> files (format versions 1.0, 2.0 and 3.0): every fixed-size numeric dtype
/// (bool, int8..int64, uint8..uint64, float16/32/64) in either byte order, any rank including 0-d,
/// C order. Big-endian data is converted to little-endian. Everything else is rejected with
/// <see cref="ErrorCodes.CalibrationFileUnreadable"/> and a message saying how to re-save the array.
/// </summary>
public static class NpyReader
{
    private static ReadOnlySpan<byte> Magic => [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y'];

    /// <summary>Reads the whole array. The tensor's name is the file name without extension.</summary>
    public static TensorData Read(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        using var stream = OpenRead(path);
        var header = ReadHeader(stream, path);
        var data = new byte[DataLength(header, path)];
        ReadData(stream, header, data, path);
        return new TensorData(Path.GetFileNameWithoutExtension(path), header.ElementType, header.Shape, data);
    }

    /// <summary>Reads only the header (element type and shape) without the data.</summary>
    public static (TensorElementType ElementType, long[] Shape) ReadHeader(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        using var stream = OpenRead(path);
        var header = ReadHeader(stream, path);
        return (header.ElementType, header.Shape);
    }

    /// <summary>
    /// Opens a .npy file without a FileStream buffer: the header is read in two small reads and the
    /// data straight into its destination, so reading a file allocates no per-file buffer (a 64 KiB
    /// buffer per file was most of the garbage of validating and calibrating large sample sets).
    /// </summary>
    internal static FileStream OpenRead(string path)
    {
        Common.RegularFile.Require(path, why => Unreadable(path, why));
        try
        {
            return new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 0);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw Unreadable(path, $"the file cannot be opened ({e.Message}).", e);
        }
    }

    /// <summary>Bytes of data the header announces; throws when one tensor may not be that large.</summary>
    internal static int DataLength(Header header, string path)
    {
        int size = ElementTypes.SizeOf(header.ElementType);
        if (header.ElementCount > Array.MaxLength / size)
        {
            throw Unreadable(path, $"the array {ElementTypes.FormatShape(header.Shape)} is larger than one calibration tensor may be ({Array.MaxLength:N0} bytes). Use smaller samples.");
        }

        return (int)(header.ElementCount * size);
    }

    /// <summary>
    /// Reads the data that follows the header (the stream is positioned right after it) into
    /// <paramref name="destination"/>, exactly <see cref="DataLength"/> bytes, little-endian.
    /// </summary>
    internal static void ReadData(Stream stream, Header header, Span<byte> destination, string path)
    {
        long available = stream.Length - stream.Position;
        if (available < destination.Length)
        {
            throw Unreadable(path,
                $"the file is truncated: the header announces {ElementTypes.Describe(header.ElementType)} {ElementTypes.FormatShape(header.Shape)} " +
                $"({destination.Length:N0} bytes of data) but only {available:N0} bytes follow the header. Re-save the array with numpy.save.");
        }

        try
        {
            stream.ReadExactly(destination);
        }
        catch (IOException e)
        {
            throw Unreadable(path, $"reading the data failed ({e.Message}).", e);
        }

        if (header.BigEndian)
        {
            ToLittleEndian(destination, ElementTypes.SizeOf(header.ElementType));
        }
    }

    internal static Header ReadHeader(Stream stream, string path)
    {
        Span<byte> prefix = stackalloc byte[12];
        int got = stream.ReadAtLeast(prefix, prefix.Length, throwOnEndOfStream: false);
        if (got < 10 || !prefix[..6].SequenceEqual(Magic))
        {
            throw Unreadable(path, "it is not a NumPy .npy file (the \\x93NUMPY signature is missing). Save calibration arrays with numpy.save.");
        }

        byte major = prefix[6];
        int headerLength;
        int preludeLength;
        switch (major)
        {
            case 1:
                headerLength = BinaryPrimitives.ReadUInt16LittleEndian(prefix[8..10]);
                preludeLength = 10;
                break;
            case 2:
            case 3:
                if (got < 12)
                {
                    throw Unreadable(path, "the file is truncated inside the .npy header.");
                }

                uint length = BinaryPrimitives.ReadUInt32LittleEndian(prefix[8..12]);
                if (length > 64 * 1024 * 1024)
                {
                    throw Unreadable(path, $"the .npy header claims to be {length:N0} bytes long; the file is corrupt.");
                }

                headerLength = (int)length;
                preludeLength = 12;
                break;
            default:
                throw Unreadable(path, $".npy format version {major}.{prefix[7]} is not supported (1.0, 2.0 and 3.0 are). Re-save the array with numpy.save.");
        }

        stream.Position = preludeLength;
        Span<byte> headerBytes = headerLength <= 1024 ? stackalloc byte[headerLength] : new byte[headerLength];
        if (stream.ReadAtLeast(headerBytes, headerLength, throwOnEndOfStream: false) < headerLength)
        {
            throw Unreadable(path, "the file is truncated inside the .npy header.");
        }

        string text = major == 3 ? Encoding.UTF8.GetString(headerBytes) : Encoding.Latin1.GetString(headerBytes);
        Dictionary<string, object?> dict;
        try
        {
            dict = PythonLiteral.Parse(text) as Dictionary<string, object?>
                ?? throw new FormatException("the header is not a dictionary");
        }
        catch (FormatException e)
        {
            throw Unreadable(path, $"the .npy header cannot be parsed ({e.Message}): {text.Trim()}", e);
        }

        if (!dict.TryGetValue("descr", out object? descr) || !dict.TryGetValue("shape", out object? shapeValue)
            || !dict.TryGetValue("fortran_order", out object? fortranValue))
        {
            throw Unreadable(path, $"the .npy header lacks 'descr', 'shape' or 'fortran_order': {text.Trim()}");
        }

        var (type, bigEndian) = ParseDescr(descr, path);
        long[] shape = ParseShape(shapeValue, path, text);
        long count;
        try
        {
            count = TensorData.ElementCountOf(shape);
        }
        catch (OverflowException e)
        {
            throw Unreadable(path, $"the shape {ElementTypes.FormatShape(shape)} is too large.", e);
        }

        if (fortranValue is not bool fortran)
        {
            throw Unreadable(path, $"'fortran_order' in the .npy header is not True or False: {text.Trim()}");
        }

        // Fortran and C order coincide when at most one dimension is larger than 1.
        if (fortran && shape.Count(d => d > 1) > 1)
        {
            throw Unreadable(path,
                $"the array {ElementTypes.FormatShape(shape)} is stored in Fortran (column-major) order, which is not supported. " +
                "Re-save it in C order: numpy.save(path, numpy.ascontiguousarray(array)).");
        }

        return new Header(type, bigEndian, shape, count);
    }

    private static (TensorElementType Type, bool BigEndian) ParseDescr(object? descr, string path)
    {
        if (descr is not string s)
        {
            throw Unreadable(path,
                "structured (record) arrays are not supported: a calibration file must hold one plain numeric array. " +
                "Save each field as its own array, e.g. numpy.save('x.npy', records['x']).");
        }

        string rest = s;
        char order = '|';
        if (rest.Length > 0 && rest[0] is '<' or '>' or '|' or '=')
        {
            order = rest[0];
            rest = rest[1..];
        }

        if (rest.Length == 0)
        {
            throw Unreadable(path, $"the dtype '{s}' in the .npy header is not valid.");
        }

        char kind = rest[0];
        bool sized = int.TryParse(rest.AsSpan(1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int size);
        TensorElementType? type = (kind, sized ? size : -1) switch
        {
            ('b', 1) => TensorElementType.Bool,
            ('i', 1) => TensorElementType.Int8,
            ('i', 2) => TensorElementType.Int16,
            ('i', 4) => TensorElementType.Int32,
            ('i', 8) => TensorElementType.Int64,
            ('u', 1) => TensorElementType.UInt8,
            ('u', 2) => TensorElementType.UInt16,
            ('u', 4) => TensorElementType.UInt32,
            ('u', 8) => TensorElementType.UInt64,
            ('f', 2) => TensorElementType.Float16,
            ('f', 4) => TensorElementType.Float,
            ('f', 8) => TensorElementType.Double,
            _ => null,
        };

        if (type is null)
        {
            string what = kind switch
            {
                'O' => "Python objects (dtype=object)",
                'U' => "unicode strings",
                'S' or 'a' => "byte strings",
                'c' => "complex numbers",
                'V' => "structured/void records",
                'M' => "datetimes",
                'm' => "timedeltas",
                'f' => "extended-precision floats (numpy.longdouble)",
                _ => "this element type",
            };
            throw Unreadable(path,
                $"its dtype '{s}' holds {what}, which is not supported. Calibration arrays must be bool, int8-int64, " +
                "uint8-uint64, float16, float32 or float64 (usually the model input's type, e.g. array.astype(numpy.float32)).");
        }

        return (type.Value, order == '>' && size > 1);
    }

    private static long[] ParseShape(object? value, string path, string text)
    {
        if (value is not List<object?> items)
        {
            throw Unreadable(path, $"'shape' in the .npy header is not a tuple: {text.Trim()}");
        }

        var shape = new long[items.Count];
        for (int i = 0; i < items.Count; i++)
        {
            if (items[i] is not long d || d < 0)
            {
                throw Unreadable(path, $"'shape' in the .npy header holds a bad dimension: {text.Trim()}");
            }

            shape[i] = d;
        }

        return shape;
    }

    private static void ToLittleEndian(Span<byte> data, int size)
    {
        switch (size)
        {
            case 2:
                var u16 = MemoryMarshal.Cast<byte, ushort>(data);
                BinaryPrimitives.ReverseEndianness(u16, u16);
                break;
            case 4:
                var u32 = MemoryMarshal.Cast<byte, uint>(data);
                BinaryPrimitives.ReverseEndianness(u32, u32);
                break;
            case 8:
                var u64 = MemoryMarshal.Cast<byte, ulong>(data);
                BinaryPrimitives.ReverseEndianness(u64, u64);
                break;
        }
    }

    private static QuantizeException Unreadable(string path, string problem, Exception? inner = null) =>
        new(ErrorCodes.CalibrationFileUnreadable, path, $"Calibration file '{path}' cannot be read: {problem}", inner);

    internal readonly record struct Header(TensorElementType ElementType, bool BigEndian, long[] Shape, long ElementCount);
}
