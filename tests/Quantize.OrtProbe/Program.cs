using System.Buffers.Binary;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using Microsoft.ML.OnnxRuntime;
using Quantize.Onnx;
using Quantize.Onnx.Hardware;
using Quantize.Onnx.Tuning;

// Quantize.OrtProbe <input.npy or folder of .npy> <output-folder> <model.onnx>...
// Prints "machine <class label>", then per model "<file name> <SHA-256 of its output bytes>", and writes the
// output bytes (every output in order, little-endian float32 or uint8 as the model returns them; for a folder, every
// input's outputs in file-name order) to <output-folder>/<model file name>.bin. Inputs are float32 or uint8 (image bytes).
//
// Quantize.OrtProbe quantize <model.onnx> <calibration-folder> <output.onnx> <lock-file>
// Quantizes the model with the engine's defaults and the lock file (replayed when it is current; a missing file is no
// lock, and the probe never writes one), and prints "machine <class label>", then "key value" lines: output (the kind
// shipped), sha256 (of the written file), decided-here (";"-separated, "-" when none), calibration-ms, total-ms,
// warnings (codes, "-" when none).
if (args is ["quantize", ..])
{
    if (args.Length != 5)
    {
        Console.Error.WriteLine("usage: Quantize.OrtProbe quantize <model.onnx> <calibration-folder> <output.onnx> <lock-file>");
        return 2;
    }

    try
    {
        return Quantize(args[1], args[2], args[3], args[4]);
    }
    catch (Exception e)
    {
        // Exit 1, not the runtime's abort on an unhandled exception (SIGABRT, 134), which the tests take for a qemu crash and retry.
        Console.Error.WriteLine(e);
        return 1;
    }
}

if (args.Length < 3)
{
    Console.Error.WriteLine("usage: Quantize.OrtProbe <input.npy> <output-folder> <model.onnx>...");
    return 2;
}

var inputs = Directory.Exists(args[0]) ? Directory.GetFiles(args[0], "*.npy").Order(StringComparer.Ordinal).Select(ReadNpy).ToList() : [ReadNpy(args[0])];
Directory.CreateDirectory(args[1]);
Console.WriteLine("machine " + BuildMachine.Current.ClassLabel);
foreach (var model in args.Skip(2))
{
    // As an application runs a model: every graph optimisation (the fused integer kernels), one thread.
    using var options = new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL, IntraOpNumThreads = 1 };
    using var session = new InferenceSession(model, options);
    using var runOptions = new RunOptions();
    var names = session.OutputNames.ToArray();
    using var bytes = new MemoryStream();
    foreach (var (shape, values) in inputs)
    {
        using var input = values is byte[] pixels ? OrtValue.CreateTensorValueFromMemory(pixels, shape) : OrtValue.CreateTensorValueFromMemory((float[])values, shape);
        using var outputs = session.Run(runOptions, new Dictionary<string, OrtValue> { [session.InputNames[0]] = input }, names);
        foreach (var output in outputs)
        {
            // x64: little-endian
            bytes.Write(output.GetTensorTypeAndShape().ElementDataType == Microsoft.ML.OnnxRuntime.Tensors.TensorElementType.UInt8
                ? output.GetTensorDataAsSpan<byte>() : MemoryMarshal.AsBytes(output.GetTensorDataAsSpan<float>()));
        }
    }

    var name = Path.GetFileName(model);
    File.WriteAllBytes(Path.Combine(args[1], name + ".bin"), bytes.ToArray());
    Console.WriteLine($"{name} {Convert.ToHexStringLower(SHA256.HashData(bytes.ToArray()))}");
}

return 0;

static int Quantize(string model, string calibration, string output, string lockFile)
{
    Console.WriteLine("machine " + BuildMachine.Current.ClassLabel);
    var options = new QuantizationOptions { Tuning = new TuningOptions { LockFile = lockFile }, LatencyRuns = 1, FidelitySamples = 1 };
    var result = new Quantizer(options).Run(model, calibration, output);
    Console.WriteLine("output " + result.Output);
    Console.WriteLine("sha256 " + Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(output))));
    Console.WriteLine("decided-here " + (result.DecidedHere.Count == 0 ? "-" : string.Join(";", result.DecidedHere)));
    Console.WriteLine("calibration-ms " + result.CalibrationTime.TotalMilliseconds.ToString("F0", CultureInfo.InvariantCulture));
    Console.WriteLine("total-ms " + result.TotalTime.TotalMilliseconds.ToString("F0", CultureInfo.InvariantCulture));
    Console.WriteLine("warnings " + (result.Warnings.Count == 0 ? "-" : string.Join(";", result.Warnings.Select(w => w.Code))));
    return 0;
}

// A C-order little-endian float32 or uint8 .npy (format 1, 2 or 3): float[] or byte[] values.
static (long[] Shape, Array Values) ReadNpy(string path)
{
    var file = File.ReadAllBytes(path);
    if (file.Length < 10 || file[0] != 0x93 || Encoding.ASCII.GetString(file, 1, 5) != "NUMPY")
    {
        throw new InvalidDataException($"{path} is not a .npy file");
    }

    var (headerLength, headerStart) = file[6] == 1
        ? (BinaryPrimitives.ReadUInt16LittleEndian(file.AsSpan(8)), 10)
        : ((int)BinaryPrimitives.ReadUInt32LittleEndian(file.AsSpan(8)), 12);
    var header = Encoding.UTF8.GetString(file, headerStart, headerLength);
    var isBytes = header.Contains("'|u1'", StringComparison.Ordinal);
    if (!(isBytes || header.Contains("'<f4'", StringComparison.Ordinal)) || header.Contains("True", StringComparison.Ordinal))
    {
        throw new InvalidDataException($"{path}: only C-order little-endian float32 or uint8 is supported ({header.Trim()})");
    }

    var dims = Regex.Match(header, @"'shape':\s*\(([^)]*)\)").Groups[1].Value
        .Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
        .Select(d => long.Parse(d, CultureInfo.InvariantCulture)).ToArray();
    var data = file.AsSpan(headerStart + headerLength);
    if (isBytes)
    {
        return (dims, data.ToArray());
    }

    var values = new float[data.Length / 4];
    for (var i = 0; i < values.Length; i++)
    {
        values[i] = BinaryPrimitives.ReadSingleLittleEndian(data[(i * 4)..]);
    }

    return (dims, values);
}
