using System.Diagnostics;
using System.Globalization;
using System.Text;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

// Loads Models/waifu2x.onnx from the output folder (the INT8 model the build put there, under the
// same relative path as the FP32 one in the project) and runs it on one image, writing the result as
// a PPM file. waifu2x 2x takes the nearest-neighbour 2x enlargement of an image and restores the
// detail, so the output has the input's size (here a 48x48 photo crop enlarged to 96x96).
//
// The project sets QuantizeUInt8Inputs and QuantizeUInt8Outputs, so the model takes and returns bytes:
// - in: the image's RGB bytes as decoded, [1,3,H,W] (channels first), 0-255. The float model's /255 is
//   inside the model now; decoding, the 2x enlargement and the channel-first layout are still the app's.
// - out: bytes on the output's own grid, not pixels: the model's value is (u - zero point) * scale, with
//   scale and zero point in its metadata (quantize.output.<name>.scale / .zero_point), exactly what the
//   build measured. That value is the float model's output (RGB in [0,1]), so pixels are value * 255.
// The contract holds whatever the build decides: when FP32 ships instead (INT8 slower, or a failed gate
// under ship-fp32), it takes and returns the same bytes.
string modelPath = Path.Combine(AppContext.BaseDirectory, "Models", "waifu2x.onnx");
string inputPath = args.Length > 0 ? args[0] : Path.Combine(AppContext.BaseDirectory, "sample-input.npy");
string outputPath = args.Length > 1 ? args[1] : "upscaled.ppm";

(byte[] pixels, int[] shape) = Npy.ReadUInt8(inputPath);
using var options = new SessionOptions { IntraOpNumThreads = 1 };
using var session = new InferenceSession(modelPath, options);
var input = new DenseTensor<byte>(pixels, shape);

var watch = Stopwatch.StartNew();
using var results = session.Run([NamedOnnxValue.CreateFromTensor(session.InputMetadata.Keys.First(), input)]);
watch.Stop();

var result = results.First();
var output = result.AsTensor<byte>();
var metadata = session.ModelMetadata.CustomMetadataMap;
float scale = float.Parse(metadata[$"quantize.output.{result.Name}.scale"], CultureInfo.InvariantCulture);
int zeroPoint = int.Parse(metadata[$"quantize.output.{result.Name}.zero_point"], CultureInfo.InvariantCulture);
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
                float value = (output[0, c, y, x] - zeroPoint) * scale;
                file.WriteByte((byte)Math.Clamp(MathF.Round(value * 255f), 0f, 255f));
            }
        }
    }
}

Console.WriteLine($"Model: {modelPath} ({new FileInfo(modelPath).Length / 1024} KB)");
Console.WriteLine($"Super-resolved {string.Join('x', shape)} -> {string.Join('x', output.Dimensions.ToArray())} in {watch.Elapsed.TotalMilliseconds:F1} ms: {Path.GetFullPath(outputPath)}");

/// <summary>Just enough of the .npy format for a uint8 C-order array.</summary>
internal static class Npy
{
    public static (byte[] Data, int[] Shape) ReadUInt8(string path)
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
        if (!header.Contains("'|u1'") || header.Contains("'fortran_order': True"))
        {
            throw new InvalidDataException($"{path}: only uint8 in C order is supported (image bytes).");
        }

        string dims = header[(header.IndexOf('(') + 1)..header.IndexOf(')')];
        int[] shape = dims.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(int.Parse).ToArray();
        return (reader.ReadBytes(shape.Aggregate(1, (a, b) => a * b)), shape);
    }
}
