using System.Diagnostics;
using System.Text;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

// Loads Models/waifu2x.onnx from the output folder (the INT8 model the build put there, under the
// same relative path as the FP32 one in the project) and runs it on one image, writing the result as
// a PPM file. waifu2x 2x takes the nearest-neighbour 2x enlargement of an image and restores the
// detail, so the output has the input's size (here a 48x48 photo crop enlarged to 96x96).
string modelPath = Path.Combine(AppContext.BaseDirectory, "Models", "waifu2x.onnx");
string inputPath = args.Length > 0 ? args[0] : Path.Combine(AppContext.BaseDirectory, "sample-input.npy");
string outputPath = args.Length > 1 ? args[1] : "upscaled.ppm";

(float[] data, int[] shape) = Npy.ReadFloat32(inputPath);
using var options = new SessionOptions { IntraOpNumThreads = 1 };
using var session = new InferenceSession(modelPath, options);
var input = new DenseTensor<float>(data, shape);

var watch = Stopwatch.StartNew();
using var results = session.Run([NamedOnnxValue.CreateFromTensor(session.InputMetadata.Keys.First(), input)]);
watch.Stop();

var output = results.First().AsTensor<float>();
int height = output.Dimensions[2], width = output.Dimensions[3];
using (var file = File.Create(outputPath))
{
    file.Write(Encoding.ASCII.GetBytes($"P6\n{width} {height}\n255\n"));
    for (int y = 0; y < height; y++)
    {
        for (int x = 0; x < width; x++)
        {
            for (int c = 0; c < 3; c++)
            {
                file.WriteByte((byte)Math.Clamp(MathF.Round(output[0, c, y, x] * 255f), 0f, 255f));
            }
        }
    }
}

Console.WriteLine($"Model: {modelPath} ({new FileInfo(modelPath).Length / 1024} KB)");
Console.WriteLine($"Super-resolved {string.Join('x', shape)} -> {string.Join('x', output.Dimensions.ToArray())} in {watch.Elapsed.TotalMilliseconds:F1} ms: {Path.GetFullPath(outputPath)}");

/// <summary>Just enough of the .npy format for a little-endian float32 C-order array.</summary>
internal static class Npy
{
    public static (float[] Data, int[] Shape) ReadFloat32(string path)
    {
        using var reader = new BinaryReader(File.OpenRead(path));
        if (reader.ReadByte() != 0x93 || Encoding.ASCII.GetString(reader.ReadBytes(5)) != "NUMPY")
        {
            throw new InvalidDataException($"{path} is not a .npy file.");
        }

        byte major = reader.ReadByte();
        reader.ReadByte();
        int headerLength = major == 1 ? reader.ReadUInt16() : (int)reader.ReadUInt32();
        string header = Encoding.ASCII.GetString(reader.ReadBytes(headerLength));
        if (!header.Contains("'<f4'") || header.Contains("'fortran_order': True"))
        {
            throw new InvalidDataException($"{path}: only little-endian float32 in C order is supported.");
        }

        string dims = header[(header.IndexOf('(') + 1)..header.IndexOf(')')];
        int[] shape = dims.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(int.Parse).ToArray();
        var data = new float[shape.Aggregate(1, (a, b) => a * b)];
        Buffer.BlockCopy(reader.ReadBytes(data.Length * 4), 0, data, 0, data.Length * 4);
        return (data, shape);
    }
}
