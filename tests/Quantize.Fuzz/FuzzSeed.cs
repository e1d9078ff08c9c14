using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using Quantize.Onnx.Model.Proto;

namespace Quantize.Fuzz;

/// <summary>
/// A valid model the campaign mutates, with calibration samples that fit it (float inputs: fixed
/// dimensions as declared, dynamic ones 32; seeded values in [-1, 1]).
/// </summary>
public sealed class FuzzSeed
{
    private const int DynamicDim = 32;

    public FuzzSeed(string name, byte[] model)
    {
        Name = name;
        Model = model;
        var graph = ModelProto.Parser.ParseFrom(model).Graph;
        var initializers = graph.Initializer.Select(t => t.Name).ToHashSet(StringComparer.Ordinal);
        Inputs = graph.Input.Where(i => !initializers.Contains(i.Name))
            .Select(i => (i.Name, i.Type.TensorType.Shape.Dim.Select(d => d.DimValue > 0 ? d.DimValue : DynamicDim).ToArray()))
            .ToList();
    }

    public string Name { get; }

    public byte[] Model { get; }

    /// <summary>Every graph input (all float32 in the seeds) and the shape its calibration samples have.</summary>
    public IReadOnlyList<(string Name, long[] Shape)> Inputs { get; }

    /// <summary>Reads every <c>*.onnx</c> in <paramref name="folder"/> (sorted by name) as seeds.</summary>
    public static IEnumerable<FuzzSeed> FromFolder(string folder) =>
        Directory.EnumerateFiles(folder, "*.onnx", SearchOption.AllDirectories)
            .Order(StringComparer.Ordinal)
            .Select(f => new FuzzSeed(Path.GetFileNameWithoutExtension(f), File.ReadAllBytes(f)));

    /// <summary>Writes <paramref name="samples"/> calibration samples (one sub-folder each, one .npy per input) and returns the folder.</summary>
    public string WriteCalibration(string folder, int samples = 2)
    {
        foreach (var (s, sample) in Samples(samples).Index())
        {
            string path = Directory.CreateDirectory(Path.Combine(folder, s.ToString("D3", CultureInfo.InvariantCulture))).FullName;
            foreach (var (name, shape, values) in sample)
            {
                WriteNpy(Path.Combine(path, name + ".npy"), shape, values);
            }
        }

        return folder;
    }

    /// <summary>The values of the calibration samples <see cref="WriteCalibration"/> writes, per sample and input.</summary>
    public IEnumerable<List<(string Name, long[] Shape, float[] Values)>> Samples(int samples = 2)
    {
        var random = new Random(17);
        for (int s = 0; s < samples; s++)
        {
            var sample = new List<(string, long[], float[])>();
            foreach (var (name, shape) in Inputs)
            {
                var values = new float[shape.Aggregate(1L, (a, b) => a * b)];
                for (int i = 0; i < values.Length; i++)
                {
                    values[i] = (float)((random.NextDouble() * 2) - 1);
                }

                sample.Add((name, shape, values));
            }

            yield return sample;
        }
    }

    private static void WriteNpy(string path, long[] shape, float[] values)
    {
        string dims = string.Join(", ", shape.Select(d => d.ToString(CultureInfo.InvariantCulture))) + (shape.Length == 1 ? "," : "");
        string dict = $"{{'descr': '<f4', 'fortran_order': False, 'shape': ({dims}), }}";
        int unpadded = 10 + dict.Length + 1;
        string header = dict + new string(' ', ((unpadded + 63) / 64 * 64) - unpadded) + "\n";
        using var stream = File.Create(path);
        stream.Write([0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', 1, 0]);
        Span<byte> length = stackalloc byte[2];
        BinaryPrimitives.WriteUInt16LittleEndian(length, (ushort)header.Length);
        stream.Write(length);
        stream.Write(Encoding.ASCII.GetBytes(header));
        var bytes = new byte[values.Length * 4];
        for (int i = 0; i < values.Length; i++)
        {
            BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(i * 4), values[i]);
        }

        stream.Write(bytes);
    }
}
