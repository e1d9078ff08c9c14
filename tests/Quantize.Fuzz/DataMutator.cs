using System.Buffers.Binary;
using System.Globalization;
using System.IO.Compression;
using System.Text;
using Google.Protobuf;
using Quantize.Onnx;
using Quantize.Onnx.Hardware;
using Quantize.Onnx.Model.Proto;
using Quantize.Onnx.Reporting;
using Quantize.Onnx.Samples.Images;
using Quantize.Onnx.Validation;
using SkiaSharp;

namespace Quantize.Fuzz;

/// <summary>
/// Deterministic mutations of what users hand the quantizer besides the model: .npy (header fields, truncation,
/// huge shapes, NaN/Inf, dtypes), .npz (zip corruption, missing arrays), TensorProto .pb (bit flips, truncation,
/// dims, types), images (truncated PNG/JPEG, non-images, 0-byte files, huge declared sizes), sample-list .txt files
/// (missing, absolute, relative and '..' entries, blank and huge lines), folder layouts, CLI option values, and
/// paths (symbolic links to files and folders, dangling and looping links, 250-character names, named pipes,
/// outputs and reports over the model). The same campaign seed and index always give the same case.
/// </summary>
public static class DataMutator
{
    /// <summary>The kinds, in the order the campaign summary lists them.</summary>
    public static readonly string[] Kinds = ["npy", "npz", "pb", "image", "list", "layout", "options", "paths"];

    /// <summary>One case in this many runs the CLI as a process instead of the library.</summary>
    public const int CliEvery = 10;

    private const string Calib = "calib";
    private const string Output = "out/model.int8.onnx";

    /// <summary>The seeds data cases use: small and single-input (convnet, mlp), so a case takes well under a second.</summary>
    public static IReadOnlyList<FuzzSeed> DataSeeds(IReadOnlyList<FuzzSeed> seeds)
    {
        var small = seeds.Where(s => s.Name is "convnet" or "mlp").ToList();
        return small.Count > 0 ? small : seeds.Where(s => s.Inputs.Count == 1).Take(2).ToList();
    }

    /// <summary>Case <paramref name="index"/> of a data campaign: depends only on the campaign seed, the index and the seeds.</summary>
    public static DataCase Generate(IReadOnlyList<FuzzSeed> seeds, int campaignSeed, int index)
    {
        var random = new Random(Mix(campaignSeed, index));
        var data = DataSeeds(seeds);
        var seed = data[random.Next(data.Count)];
        var builder = new Builder(seed, random);
        string kind = Kinds[random.Next(Kinds.Length)];
        string description = kind switch
        {
            "npy" => builder.Npy(),
            "npz" => builder.Npz(),
            "pb" => builder.Pb(),
            "image" => builder.Image(),
            "list" => builder.List(),
            "layout" => builder.Layout(),
            "options" => builder.Options(),
            _ => builder.Paths(),
        };
        return new DataCase(index, kind, seed.Name, description, index % CliEvery == CliEvery - 1, builder.Entries.Values.ToList(), "model.onnx",
            builder.Calibration, builder.Validation, builder.OutputPath, builder.Report, builder.CliArgs, builder.Apply);
    }

    /// <summary>SplitMix64 of the campaign seed and the index: consecutive indexes give unrelated generators (Random's own seeding does not).</summary>
    internal static int Mix(int campaignSeed, int index)
    {
        ulong z = unchecked(((ulong)(uint)campaignSeed << 32) + (uint)index + 0x9E3779B97F4A7C15UL);
        z = unchecked((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL);
        z = unchecked((z ^ (z >> 27)) * 0x94D049BB133111EBUL);
        return (int)((z ^ (z >> 31)) & 0x7FFFFFFF);
    }

    private static T Pick<T>(IReadOnlyList<T> items, Random random) => items[random.Next(items.Count)];

    private static string Num(long value) => value.ToString(CultureInfo.InvariantCulture);

    /// <summary>A .npy file with exactly these header fields (each the Python literal text, or null to leave it out).</summary>
    internal static byte[] NpyBytes(string? descr, string? fortran, string? shape, ReadOnlySpan<byte> data, int version = 1, string? header = null)
    {
        var fields = new List<string>();
        if (descr is not null)
        {
            fields.Add($"'descr': {descr}");
        }

        if (fortran is not null)
        {
            fields.Add($"'fortran_order': {fortran}");
        }

        if (shape is not null)
        {
            fields.Add($"'shape': {shape}");
        }

        string dict = header ?? "{" + string.Join(", ", fields) + ", }";
        int prefix = version == 1 ? 10 : 12;
        int unpadded = prefix + Encoding.UTF8.GetByteCount(dict) + 1;
        string text = dict + new string(' ', ((unpadded + 63) / 64 * 64) - unpadded) + "\n";
        byte[] headerBytes = Encoding.UTF8.GetBytes(text);
        using var stream = new MemoryStream();
        stream.Write([0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', (byte)version, 0]);
        Span<byte> length = stackalloc byte[4];
        if (version == 1)
        {
            BinaryPrimitives.WriteUInt16LittleEndian(length, (ushort)headerBytes.Length);
            stream.Write(length[..2]);
        }
        else
        {
            BinaryPrimitives.WriteUInt32LittleEndian(length, (uint)headerBytes.Length);
            stream.Write(length);
        }

        stream.Write(headerBytes);
        stream.Write(data);
        return stream.ToArray();
    }

    internal static string ShapeText(IReadOnlyList<long> shape) =>
        "(" + string.Join(", ", shape.Select(Num)) + (shape.Count == 1 ? ",)" : ")");

    /// <summary>Builds one case: starts from a valid calibration folder (two sample folders of .npy) and changes one thing.</summary>
    private sealed class Builder
    {
        private static readonly float[] Specials = [float.NaN, float.PositiveInfinity, float.NegativeInfinity, float.MaxValue, -0f, float.Epsilon];

        private readonly FuzzSeed _seed;
        private readonly Random _random;
        private readonly string _input;
        private readonly long[] _shape;

        public Builder(FuzzSeed seed, Random random)
        {
            _seed = seed;
            _random = random;
            (_input, _shape) = seed.Inputs[0];
            Add(new FileEntry("model.onnx", seed.Model));
            Sample("s0");
            Sample("s1");
        }

        public SortedDictionary<string, DataEntry> Entries { get; } = new(StringComparer.Ordinal);

        public string? Calibration { get; set; } = Calib;

        public string? Validation { get; set; }

        public string OutputPath { get; set; } = Output;

        public string? Report { get; set; }

        public List<string> CliArgs { get; } = [];

        public Func<QuantizationOptions, QuantizationOptions> Apply { get; set; } = o => o;

        private long Elements => _shape.Aggregate(1L, (a, b) => a * b);

        private string Valid(string sample) => $"{Calib}/{sample}/{_input}.npy";

        public string Npy()
        {
            string target = Valid("s1");
            string shape = ShapeText(_shape);
            byte[] data = Floats(Elements);
            string what;
            byte[] bytes;
            switch (_random.Next(14))
            {
                case 0:
                    string descr = Pick(["'<f8'", "'>f4'", "'|u1'", "'<i8'", "'<c8'", "'|O'", "''", "'<f2'", "'float32'", "42", "'<U3'", "'|b1'", "'<f4 '"], _random);
                    (what, bytes) = ($"descr {descr}", NpyBytes(descr, "False", shape, data));
                    break;
                case 1:
                    string wrong = Pick(["()", "(0,)", "(1,)", "(-1,)", "(4294967296, 4294967296)", "(9223372036854775807,)", "(1, 1, 1, 1, 1, 1, 1, 1, 1)",
                        "(1.5,)", "'abc'", "[1, 3]", "(1, 3, 16)", "(" + string.Join(", ", _shape.Reverse().Select(Num)) + ")", "(99999999999999999999,)", "(2, -2)"], _random);
                    (what, bytes) = ($"shape {wrong}", NpyBytes("'<f4'", "False", wrong, data));
                    break;
                case 2:
                    string fortran = Pick(["True", "'yes'", "1", "None"], _random);
                    (what, bytes) = ($"fortran_order {fortran}", NpyBytes("'<f4'", fortran, shape, data));
                    break;
                case 3:
                    int missing = _random.Next(3);
                    (what, bytes) = ($"header without {new[] { "descr", "fortran_order", "shape" }[missing]}",
                        NpyBytes(missing == 0 ? null : "'<f4'", missing == 1 ? null : "False", missing == 2 ? null : shape, data));
                    break;
                case 4:
                    string header = Pick(["", "{", "[1, 2]", "{'descr': '<f4', 'fortran_order': False, 'shape': (1,", "{'descr': '<f4', 'descr': '<f8', 'fortran_order': False, 'shape': " + shape + "}",
                        "{'descr': '<f4', 'fortran_order': False, 'shape': " + shape + ", 'extra': __import__('os')}", "\u00e9\u00e9\u00e9", "{'descr': '<f4', 'fortran_order': False, 'shape': " + new string('(', 5000) + "}"], _random);
                    (what, bytes) = ($"header text '{(header.Length > 60 ? header[..60] + "..." : header)}'", NpyBytes(null, null, null, data, header: header));
                    break;
                case 5:
                    var full = NpyBytes("'<f4'", "False", shape, data);
                    int keep = _random.Next(full.Length);
                    (what, bytes) = ($"truncated to {keep} of {full.Length} bytes", full[..keep]);
                    break;
                case 6:
                    (what, bytes) = ("4 extra bytes after the data", NpyBytes("'<f4'", "False", shape, [.. data, 1, 2, 3, 4]));
                    break;
                case 7:
                    float special = Pick(Specials, _random);
                    BinaryPrimitives.WriteSingleLittleEndian(data.AsSpan(4 * _random.Next((int)Elements)), special);
                    (what, bytes) = ($"one value {special.ToString(CultureInfo.InvariantCulture)}", NpyBytes("'<f4'", "False", shape, data));
                    break;
                case 8:
                    var flipped = NpyBytes("'<f4'", "False", shape, data);
                    int flips = 1 + _random.Next(4);
                    var at = new List<int>();
                    for (int i = 0; i < flips; i++)
                    {
                        int pos = _random.Next(Math.Min(flipped.Length, 140));
                        flipped[pos] ^= (byte)(1 << _random.Next(8));
                        at.Add(pos);
                    }

                    (what, bytes) = ($"bits flipped in the header at {string.Join(",", at)}", flipped);
                    break;
                case 9:
                    int version = Pick([2, 3, 0, 9], _random);
                    (what, bytes) = ($"format version {version}", NpyBytes("'<f4'", "False", shape, data, version: version == 3 ? 3 : version));
                    if (version is 0 or 9)
                    {
                        bytes[6] = (byte)version;
                    }

                    break;
                case 10:
                    var lying = NpyBytes("'<f4'", "False", shape, data);
                    ushort claimed = Pick<ushort>([0, 1, 65535, 200, 127], _random);
                    BinaryPrimitives.WriteUInt16LittleEndian(lying.AsSpan(8), claimed);
                    (what, bytes) = ($"header length field {claimed}", lying);
                    break;
                case 11:
                    (what, bytes) = Pick<(string, byte[])>([("0-byte file", []), ("magic only", [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y']),
                        ("text file with a .npy name", Encoding.ASCII.GetBytes("1 2 3\n"))], _random);
                    break;
                case 12:
                    (what, bytes) = ("float64 data for the float32 input", NpyBytes("'<f8'", "False", shape, new byte[Elements * 8]));
                    break;
                default:
                    (what, bytes) = ("huge shape, little data", NpyBytes("'<f4'", "False", "(" + string.Join(", ", _shape.Select(_ => "65536")) + ")", data));
                    break;
            }

            return InSampleOrValidation(target, bytes, "npy " + what);
        }

        public string Npz()
        {
            Remove(Calib + "/");
            Add(new FolderEntry(Calib));
            Add(new FileEntry($"{Calib}/a.npz", Zip([(_input + ".npy", ValidNpy())])));
            string what;
            byte[] bytes;
            var valid = Zip([(_input + ".npy", ValidNpy())]);
            switch (_random.Next(10))
            {
                case 0:
                    (what, bytes) = ("no arrays", Zip([]));
                    break;
                case 1:
                    (what, bytes) = ("array for another input name", Zip([("other.npy", ValidNpy())]));
                    break;
                case 2:
                    (what, bytes) = ("array name without .npy", Zip([(_input, ValidNpy())]));
                    break;
                case 3:
                    int keep = _random.Next(valid.Length);
                    (what, bytes) = ($"zip truncated to {keep} of {valid.Length} bytes", valid[..keep]);
                    break;
                case 4:
                    int pos = _random.Next(valid.Length);
                    valid[pos] ^= (byte)(1 << _random.Next(8));
                    (what, bytes) = ($"zip bit flip at {pos}", valid);
                    break;
                case 5:
                    var npy = ValidNpy();
                    (what, bytes) = ("array entry truncated", Zip([(_input + ".npy", npy[..(npy.Length / 2)])]));
                    break;
                case 6:
                    (what, bytes) = ("the array twice", Zip([(_input + ".npy", ValidNpy()), (_input + ".npy", ValidNpy())]));
                    break;
                case 7:
                    (what, bytes) = ("array in a zip folder", Zip([("sub/" + _input + ".npy", ValidNpy())]));
                    break;
                case 8:
                    (what, bytes) = Pick<(string, byte[])>([("0-byte .npz", []), ("text with a .npz name", Encoding.ASCII.GetBytes("PK not really")),
                        ("zip end record only", [0x50, 0x4B, 0x05, 0x06, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])], _random);
                    break;
                default:
                    (what, bytes) = ("array with NaN values, stored (no compression)", Zip([(_input + ".npy", NpyBytes("'<f4'", "False", ShapeText(_shape), Floats(Elements, float.NaN)))], CompressionLevel.NoCompression));
                    break;
            }

            Add(new FileEntry($"{Calib}/b.npz", bytes));
            return "npz " + what;
        }

        public string Pb()
        {
            Remove(Calib + "/");
            Sample("s0", pb: true);
            Sample("s1", pb: true);
            string name = _random.Next(3) == 0 ? "input_0.pb" : _input + ".pb";
            var tensor = ValidTensor();
            string what;
            byte[]? bytes = null;
            switch (_random.Next(10))
            {
                case 0:
                    bytes = tensor.ToByteArray();
                    int flips = 1 + _random.Next(6);
                    for (int i = 0; i < flips; i++)
                    {
                        bytes[_random.Next(bytes.Length)] ^= (byte)(1 << _random.Next(8));
                    }

                    what = $"{flips} bit flip(s)";
                    break;
                case 1:
                    bytes = tensor.ToByteArray();
                    int keep = _random.Next(bytes.Length);
                    bytes = bytes[..keep];
                    what = $"truncated to {keep} bytes";
                    break;
                case 2:
                    tensor.Dims.Clear();
                    long[][] dims = [[], [0], [-1], [long.MaxValue], [1L << 32, 1L << 32], [.. _shape.Reverse()], [.. _shape, 1], [Elements]];
                    tensor.Dims.AddRange(Pick(dims, _random));
                    what = $"dims [{string.Join(",", tensor.Dims)}]";
                    break;
                case 3:
                    tensor.DataType = _random.Next(0, 26);
                    what = $"data_type {tensor.DataType}";
                    break;
                case 4:
                    var floats = Enumerable.Range(0, (int)Elements).Select(i => i % 7 == 0 ? Pick(Specials, _random) : 0.5f).ToArray();
                    tensor.RawData = ByteString.Empty;
                    tensor.FloatData.AddRange(floats);
                    what = "float_data with special values";
                    break;
                case 5:
                    tensor.FloatData.Add(1f);
                    what = "both raw_data and float_data";
                    break;
                case 6:
                    tensor.RawData = ByteString.CopyFrom(tensor.RawData.Span[..(tensor.RawData.Length - 4)]);
                    what = "raw_data 4 bytes short";
                    break;
                case 7:
                    tensor.DataLocation = TensorProto.Types.DataLocation.External;
                    string location = Pick(["../../model.onnx", "/etc/hostname", "x.bin", "", "../s0/" + name], _random);
                    tensor.ExternalData.Add(new StringStringEntryProto { Key = "location", Value = location });
                    tensor.RawData = ByteString.Empty;
                    what = $"external data at '{location}'";
                    break;
                case 8:
                    tensor.Segment = new TensorProto.Types.Segment { Begin = 5, End = 1 };
                    tensor.StringData.Add(ByteString.CopyFromUtf8("x"));
                    what = "segment and string_data";
                    break;
                default:
                    bytes = Pick<byte[]>([[], [0x08], [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01], Encoding.ASCII.GetBytes("not a protobuf")], _random);
                    what = $"{bytes.Length}-byte garbage";
                    break;
            }

            bytes ??= tensor.ToByteArray();
            Remove($"{Calib}/s1/");
            Add(new FolderEntry($"{Calib}/s1"));
            Add(new FileEntry($"{Calib}/s1/{name}", bytes));
            return $"pb {name} {what}";
        }

        public string Image()
        {
            Remove(Calib + "/");
            Add(new FolderEntry(Calib));
            bool sampleFolder = _random.Next(3) == 0;
            string Place(string file) => sampleFolder ? $"{Calib}/{Path.GetFileNameWithoutExtension(file)}/{_input}{Path.GetExtension(file)}" : $"{Calib}/{file}";
            Add(new FileEntry(Place("a.png"), Encode(16, 16, SKEncodedImageFormat.Png)));
            string what;
            string file = "b.png";
            byte[] bytes;
            switch (_random.Next(10))
            {
                case 0:
                    var png = Encode(16, 16, SKEncodedImageFormat.Png);
                    int keep = _random.Next(png.Length);
                    (what, bytes) = ($"PNG truncated to {keep} of {png.Length} bytes", png[..keep]);
                    break;
                case 1:
                    var jpeg = Encode(16, 16, SKEncodedImageFormat.Jpeg);
                    int cut = _random.Next(jpeg.Length);
                    (file, what, bytes) = ("b.jpg", $"JPEG truncated to {cut} of {jpeg.Length} bytes", jpeg[..cut]);
                    break;
                case 2:
                    (what, bytes) = ("text with a .png name", Encoding.ASCII.GetBytes("this is not an image\n"));
                    break;
                case 3:
                    (what, bytes) = ("0-byte .png", []);
                    break;
                case 4:
                    var flipped = Encode(16, 16, SKEncodedImageFormat.Png);
                    int pos = _random.Next(flipped.Length);
                    flipped[pos] ^= (byte)(1 << _random.Next(8));
                    (what, bytes) = ($"PNG bit flip at {pos}", flipped);
                    break;
                case 5:
                    var huge = Encode(16, 16, SKEncodedImageFormat.Png);
                    uint side = Pick<uint>([100_000, 0x7FFFFFFF, 0, 65535], _random);
                    BinaryPrimitives.WriteUInt32BigEndian(huge.AsSpan(16), side);
                    BinaryPrimitives.WriteUInt32BigEndian(huge.AsSpan(20), side);
                    BinaryPrimitives.WriteUInt32BigEndian(huge.AsSpan(29), HtmlReportPng.Crc32(huge.AsSpan(12, 17)));
                    (what, bytes) = ($"PNG declaring {side}x{side} pixels (valid CRC)", huge);
                    break;
                case 6:
                    int w = Pick([1, 3, 200, 1000], _random), h = Pick([1, 2, 300], _random);
                    var format = Pick([SKEncodedImageFormat.Png, SKEncodedImageFormat.Jpeg, SKEncodedImageFormat.Webp], _random);
                    file = "b." + (format == SKEncodedImageFormat.Jpeg ? "jpg" : format.ToString().ToLowerInvariant());
                    (what, bytes) = ($"valid {format} {w}x{h}", Encode(w, h, format));
                    break;
                case 7:
                    (file, what, bytes) = ("b.bmp", "BMP header with garbage", [(byte)'B', (byte)'M', 0xFF, 0xFF, 0xFF, 0x7F, 0, 0, 0, 0, 54, 0, 0, 0, 40, 0, 0, 0, 0xFF, 0xFF, 0, 0, 0xFF, 0xFF, 0, 0, 1, 0, 24, 0]);
                    break;
                case 8:
                    (file, what, bytes) = ("b.webp", "RIFF/WEBP header only", Encoding.ASCII.GetBytes("RIFF\u00ff\u00ff\u00ff\u007fWEBPVP8 "));
                    break;
                default:
                    var jpg = Encode(16, 16, SKEncodedImageFormat.Jpeg);
                    (file, what, bytes) = ("b.png", "a JPEG named .png", jpg);
                    break;
            }

            Add(new FileEntry(Place(file), bytes));
            if (_random.Next(4) == 0)
            {
                CliArgs.AddRange(["--image-size", "8x8"]);
                Apply = o => o with { Images = new ImageOptions { Size = (8, 8) } };
                what += ", --image-size 8x8";
            }

            return $"image{(sampleFolder ? " (in sample folders)" : "")} {file}: {what}";
        }

        public string List()
        {
            string list = $"{Calib}/list.txt";
            var lines = new List<string> { "s0", "s1" };
            string what;
            switch (_random.Next(12))
            {
                case 0:
                    lines.Add("missing");
                    what = "a missing entry";
                    break;
                case 1:
                    lines = ["/etc/hostname"];
                    what = "an absolute path outside";
                    break;
                case 2:
                    lines.Add("../model.onnx");
                    what = "'..' to the model";
                    break;
                case 3:
                    lines.Insert(1, "");
                    lines.Insert(0, "   ");
                    lines.Add("# comment");
                    what = "blank, space-only and comment lines";
                    break;
                case 4:
                    lines.Add(new string('a', Pick([5000, 100_000, 1_000_000], _random)));
                    what = $"a {lines[^1].Length}-character line";
                    break;
                case 5:
                    lines = ["", "# only comments"];
                    what = "no entries";
                    break;
                case 6:
                    lines.Add("list.txt");
                    what = "lists itself";
                    break;
                case 7:
                    lines = ["./s0/", "s0/../s1", "s0\\", " s1 "];
                    what = "./, trailing separators, .. inside, padded entries";
                    break;
                case 8:
                    lines.Add("s0/" + _input + ".npy");
                    what = "a sample folder and a tensor file mixed";
                    break;
                case 9:
                    lines.Add("s\0x");
                    what = "an entry with a NUL character";
                    break;
                case 10:
                    Add(new FileEntry($"{Calib}/inner.txt", Encoding.UTF8.GetBytes("s0\n")));
                    lines = ["inner.txt"];
                    what = "a list of a list";
                    break;
                default:
                    lines = [.. Enumerable.Repeat("s0", 3)];
                    what = "the same sample three times";
                    break;
            }

            string separator = _random.Next(3) == 0 ? "\r\n" : "\n";
            byte[] bytes = Encoding.UTF8.GetBytes(string.Join(separator, lines));
            if (_random.Next(5) == 0)
            {
                bytes = [0xEF, 0xBB, 0xBF, .. bytes, 0xFF, 0xFE];
                what += " (BOM, invalid UTF-8 at the end)";
            }

            Add(new FileEntry(list, bytes));
            Calibration = list;
            if (_random.Next(4) == 0)
            {
                Validation = list;
                what += ", also as --validation";
            }

            return $"list {what}{(separator == "\r\n" ? " (CRLF)" : "")}";
        }

        public string Layout()
        {
            switch (_random.Next(11))
            {
                case 0:
                    Remove(Calib + "/");
                    Add(new FolderEntry(Calib));
                    return "layout empty calibration folder";
                case 1:
                    Remove(Calib + "/");
                    Add(new FolderEntry($"{Calib}/s0"));
                    Add(new FolderEntry($"{Calib}/s1"));
                    return "layout empty sample folders";
                case 2:
                    Remove($"{Calib}/s1/");
                    Add(new FileEntry($"{Calib}/s1/wrong_name.npy", ValidNpy()));
                    return "layout a sample folder with a file for another input name";
                case 3:
                    Add(new FileEntry($"{Calib}/c.npz", Zip([(_input + ".npy", ValidNpy())])));
                    Add(new FileEntry($"{Calib}/d.npy", ValidNpy()));
                    return "layout sample folders, an .npz and an .npy side by side";
                case 4:
                    Remove(Calib + "/");
                    Add(new FileEntry($"{Calib}/expected/{_input}.npy", ValidNpy()));
                    Add(new FileEntry($"{Calib}/.hidden/{_input}.npy", ValidNpy()));
                    return "layout only 'expected' and hidden folders";
                case 5:
                    Add(new FileEntry($"{Calib}/s1/{_input}.pb", ValidTensor().ToByteArray()));
                    return "layout a sample with both .npy and .pb for the input";
                case 6:
                    Add(new FileEntry($"{Calib}/s1/{_input.ToUpperInvariant()}.npy", ValidNpy()));
                    return "layout a sample with names differing only in case";
                case 7:
                    Add(new FileEntry($"{Calib}/s2/deeper/{_input}.npy", ValidNpy()));
                    return "layout a nested sample folder";
                case 8:
                    Calibration = $"{Calib}/s0/{_input}.npy";
                    return "layout --calibration names a .npy file";
                case 9:
                    Calibration = "model.onnx";
                    return "layout --calibration names the model";
                default:
                    Add(new FileEntry($"{Calib}/cat/a.png", Encode(16, 16, SKEncodedImageFormat.Png)));
                    Validation = Calib;
                    return "layout sample folders and a class folder of images, also as --validation";
            }
        }

        public string Options()
        {
            (string[] Cli, Func<QuantizationOptions, QuantizationOptions> Lib)[] table =
            [
                Image("--image-size", Pick(["0x0", "x", "-1x5", "99999999x99999999", "16x16", "1e3x2", "16X16", " ", "65536x65536"], _random), s => new ImageOptions { Size = ImageOptions.ParseSize(s) }),
                Image("--image-mean", Pick(["a;b", "1;2;3;4", "nan", "1e309", ";", "0.5;0.5;0.5", "-inf"], _random), s => new ImageOptions { Mean = ImageOptions.ParseValues("image mean", s, positive: false) }),
                Image("--image-std", Pick(["0", "-1", "nan", "1e-320", "1;0;1", "1e309"], _random), s => new ImageOptions { Std = ImageOptions.ParseValues("image std", s, positive: true) }),
                Image("--image-resize", Pick(["bogus", "", "letterbox", "FIT"], _random), s => new ImageOptions { Resize = ImageOptions.Names.Parse<ImageResize>("image resize", s) }),
                Image("--image-layout", Pick(["nhwc", "nchw", "x"], _random), s => new ImageOptions { Layout = ImageOptions.Names.Parse<ImageLayout>("image layout", s) }),
                Percentile(Pick(["1e309", "nan", "-1", "0", "100", "50", "1e-300", "-Infinity"], _random)),
                Check(Pick(["sqnr>=nan", "sqnr>=", ">=3", "foo>=1", "sqnr>=1e309", "top1-agreement>=2", "sqnr", "sqnr>=-inf", "max-abs-error<=0", "top0>=1"], _random)),
                Int("--max-calibration-samples", Pick([-1, 0, int.MaxValue, 1], _random), (o, v) => o with { MaxCalibrationSamples = v }),
                Target(Pick(["x86", "", "x64;arm64", "avx512", "arm64", "X64", ";;"], _random)),
                Int("--app-threads", Pick([-1, 0, 1_000_000, int.MinValue], _random), (o, v) => o with { AppThreads = v }),
                Weight4("--block-size", Pick([3, 0, -16, 1 << 30, 16, 17], _random), (o, v) => o with { BlockSize = v }),
                Weight4("--accuracy-level", Pick([-1, 5, 4, int.MaxValue], _random), (o, v) => o with { AccuracyLevel = v }),
                Int("--latency-runs", Pick([0, -5, 2], _random), (o, v) => o with { LatencyRuns = v }),
                Int("--calibration-shuffle-seed", Pick([-1, int.MinValue, 0], _random), (o, v) => o with { CalibrationShuffleSeed = v }),
                MinSpeedup(Pick(["0", "-1", "nan", "1e309", "1e-300"], _random)),
                List("--exclude-nodes", Pick([";;;", "nonexistent", " ; "], _random), (o, v) => o with { ExcludedNodes = v }),
                List("--exclude-op-types", Pick(["Conv;Relu;Gemm;MatMul;Add", "conv", "*"], _random), (o, v) => o with { ExcludedOpTypes = v }),
                Mode(Pick(["dynamic", "fp16", "weight4"], _random)),
            ];
            int pick = _random.Next(table.Length);
            var (cli, lib) = table[pick];
            CliArgs.AddRange(cli);
            Apply = lib;
            if (cli[0] is "--check" or "--min-speedup")
            {
                // Both act on validation samples.
                Validation = Calib;
            }

            return "options " + string.Join(' ', cli.Select(a => a.Length == 0 || a.Contains(' ', StringComparison.Ordinal) ? $"\"{a}\"" : a));
        }

        public string Paths()
        {
            bool linux = OperatingSystem.IsLinux();
            int choice = _random.Next(linux ? 14 : 6);
            switch (choice)
            {
                case 0:
                    Validation = Calib;
                    OutputPath = "model.onnx";
                    return "paths output = the model (with --validation)";
                case 1:
                    Report = "model.onnx";
                    return "paths --report = the model";
                case 2:
                    Report = Output;
                    return "paths --report = the output";
                case 3:
                    string longName = new('n', 250);
                    OutputPath = "out/" + longName[..245] + ".onnx";
                    Add(new FileEntry($"{Calib}/{longName}/{_input}.npy", ValidNpy()));
                    return "paths a 250-character sample folder and output name";
                case 4:
                    Add(new FileEntry("file", [1]));
                    OutputPath = "file/model.int8.onnx";
                    return "paths output folder is a file";
                case 5:
                    OutputPath = $"{Calib}/s0/out.onnx";
                    return "paths output inside the calibration folder";
                case 6:
                    Add(new LinkEntry("calib-link", Calib, ToFolder: true));
                    Calibration = "calib-link";
                    return "paths --calibration is a link to the folder";
                case 7:
                    Remove($"{Calib}/s1/");
                    Add(new FileEntry($"real/{_input}.npy", ValidNpy()));
                    Add(new LinkEntry($"{Calib}/s1/{_input}.npy", $"../../real/{_input}.npy", ToFolder: false));
                    return "paths a sample file is a link (out of the folder)";
                case 8:
                    Remove($"{Calib}/s1/");
                    Add(new LinkEntry($"{Calib}/s1/{_input}.npy", "nowhere.npy", ToFolder: false));
                    return "paths a dangling link as a sample file";
                case 9:
                    Remove($"{Calib}/s1/");
                    Add(new LinkEntry($"{Calib}/s1/{_input}.npy", $"{_input}.npy", ToFolder: false));
                    return "paths a link to itself as a sample file";
                case 10:
                    Add(new LinkEntry($"{Calib}/s2", ".", ToFolder: true));
                    return "paths a sample folder that is a link to the calibration folder (loop)";
                case 11:
                    Remove($"{Calib}/s1/");
                    Add(new FifoEntry($"{Calib}/s1/{_input}.npy"));
                    return "paths a named pipe as a sample file";
                case 12:
                    Add(new FifoEntry($"{Calib}/d.npy"));
                    return "paths a named pipe beside the sample folders";
                default:
                    Add(new FifoEntry("pipe.txt"));
                    Calibration = "pipe.txt";
                    return "paths --calibration is a named pipe (.txt)";
            }
        }

        private static (string[], Func<QuantizationOptions, QuantizationOptions>) Image(string name, string value, Func<string, ImageOptions> parse) =>
            ([name, value], o => o with { Images = parse(value) });

        private static (string[], Func<QuantizationOptions, QuantizationOptions>) Percentile(string value) =>
            (["--calibration-method", "percentile", "--calibration-percentile", value],
                o => o with { CalibrationMethod = CalibrationMethod.Percentile, CalibrationPercentile = double.Parse(value, CultureInfo.InvariantCulture) });

        private static (string[], Func<QuantizationOptions, QuantizationOptions>) Check(string value) =>
            (["--check", value], o => o with { Validation = new ValidationOptions { Checks = [AccuracyCheck.Parse(value)] } });

        private static (string[], Func<QuantizationOptions, QuantizationOptions>) MinSpeedup(string value) =>
            (["--min-speedup", value], o => o with { Validation = new ValidationOptions { MinSpeedup = double.Parse(value, CultureInfo.InvariantCulture) } });

        private static (string[], Func<QuantizationOptions, QuantizationOptions>) Int(string name, int value, Func<QuantizationOptions, int, QuantizationOptions> apply) =>
            ([name, Num(value)], o => apply(o, value));

        private static (string[], Func<QuantizationOptions, QuantizationOptions>) Weight4(string name, int value, Func<QuantizationOptions, int, QuantizationOptions> apply) =>
            (["--mode", "weight4", name, Num(value)], o => apply(o with { Mode = QuantizationMode.Weight4 }, value));

        private static (string[], Func<QuantizationOptions, QuantizationOptions>) List(string name, string value, Func<QuantizationOptions, HashSet<string>, QuantizationOptions> apply) =>
            ([name, value], o => apply(o, value.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToHashSet(StringComparer.Ordinal)));

        private static (string[], Func<QuantizationOptions, QuantizationOptions>) Mode(string mode) =>
            (["--mode", mode], o => o with { Mode = Enum.Parse<QuantizationMode>(mode, ignoreCase: true) });

        /// <summary>The library gets what the CLI would pass: the parsed known targets (none: portable); unknown names are the CLI's QNT1901-free refusal, so the library gets an empty list.</summary>
        private static (string[], Func<QuantizationOptions, QuantizationOptions>) Target(string value) =>
            (["--target", value], o => o with
            {
                Targets = value.Split(';', StringSplitOptions.RemoveEmptyEntries).Select(t => QuantizeTargets.TryParse(t.Trim(), out var target) ? target : (QuantizeTarget?)null)
                    .OfType<QuantizeTarget>().Distinct().Order().ToList(),
            });

        private void Sample(string name, bool pb = false)
        {
            Add(new FileEntry($"{Calib}/{name}/{_input}.{(pb ? "pb" : "npy")}", pb ? ValidTensor().ToByteArray() : ValidNpy()));
        }

        /// <summary>Puts a mutated .npy in the calibration set (sample s1), or in a validation set of its own (one case in four).</summary>
        private string InSampleOrValidation(string target, byte[] bytes, string what)
        {
            if (_random.Next(4) == 0)
            {
                Add(new FileEntry($"val/v0/{_input}.npy", bytes));
                Validation = "val";
                return what + " (validation sample)";
            }

            Add(new FileEntry(target, bytes));
            return what;
        }

        private byte[] ValidNpy() => NpyBytes("'<f4'", "False", ShapeText(_shape), Floats(Elements));

        private TensorProto ValidTensor()
        {
            var tensor = new TensorProto { Name = _input, DataType = (int)TensorProto.Types.DataType.Float, RawData = ByteString.CopyFrom(Floats(Elements)) };
            tensor.Dims.AddRange(_shape);
            return tensor;
        }

        private byte[] Floats(long count, float? value = null)
        {
            var bytes = new byte[count * 4];
            for (int i = 0; i < count; i++)
            {
                BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(i * 4), value ?? (float)((_random.NextDouble() * 2) - 1));
            }

            return bytes;
        }

        private byte[] Encode(int width, int height, SKEncodedImageFormat format)
        {
            using var bitmap = new SKBitmap(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Opaque));
            int tone = _random.Next(256);
            for (int y = 0; y < height; y++)
            {
                for (int x = 0; x < width; x++)
                {
                    bitmap.SetPixel(x, y, new SKColor((byte)(x * 16), (byte)(y * 16), (byte)tone));
                }
            }

            using var data = bitmap.Encode(format, 90);
            return data.ToArray();
        }

        private static byte[] Zip(IReadOnlyList<(string Name, byte[] Bytes)> entries, CompressionLevel level = CompressionLevel.Fastest)
        {
            using var stream = new MemoryStream();
            using (var zip = new ZipArchive(stream, ZipArchiveMode.Create, leaveOpen: true))
            {
                foreach (var (name, bytes) in entries)
                {
                    var entry = zip.CreateEntry(name, level);
                    entry.LastWriteTime = new DateTimeOffset(2020, 1, 1, 0, 0, 0, TimeSpan.Zero);
                    using var entryStream = entry.Open();
                    entryStream.Write(bytes);
                }
            }

            return stream.ToArray();
        }

        private void Add(DataEntry entry) => Entries[entry.Path] = entry;

        /// <summary>Removes every entry under <paramref name="prefix"/> (a folder path ending in '/').</summary>
        private void Remove(string prefix)
        {
            foreach (var key in Entries.Keys.Where(k => k.StartsWith(prefix, StringComparison.Ordinal) || k + "/" == prefix).ToList())
            {
                Entries.Remove(key);
            }
        }
    }
}
