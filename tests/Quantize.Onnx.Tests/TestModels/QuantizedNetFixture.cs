using Quantize.Onnx.Model;
using Quantize.Onnx.Model.Proto;

namespace Quantize.Onnx.Tests.TestModels;

/// <summary>
/// A test net quantized once with the test defaults and everything the tests read about the result:
/// the INT8 model, ORT's optimised graph of it, and the SQNR of each output on held-out inputs
/// (measured by the tests, not the engine). Shared by a test class as its class fixture.
/// </summary>
public abstract class QuantizedNetFixture : IDisposable
{
    private protected QuantizedNetFixture(TestNet net)
    {
        Net = net;
        (ModelPath, CalibrationFolder) = QuantizeTestKit.Prepare(Net, Folder.Path);
        OutputPath = Path.Combine(Folder.Path, "out", "model.int8.onnx");
        Directory.CreateDirectory(Path.GetDirectoryName(OutputPath)!);
        Result = new Quantizer(QuantizeTestKit.Options()).Run(ModelPath, CalibrationFolder, OutputPath);
        Quantized = ModelLoader.Load(OutputPath);
        Optimized = QuantizeTestKit.OptimizedGraph(OutputPath);
        Sqnr = QuantizeTestKit.Sqnr(ModelPath, OutputPath, Net);
    }

    internal TestNet Net { get; }

    internal TempFolder Folder { get; } = new();

    public string ModelPath { get; }

    public string CalibrationFolder { get; }

    public string OutputPath { get; }

    public QuantizeResult Result { get; }

    public ModelProto Quantized { get; }

    /// <summary>The INT8 model's graph after ORT's extended (QDQ fusion) optimisations.</summary>
    public GraphProto Optimized { get; }

    /// <summary>SQNR of each output on the held-out inputs.</summary>
    public Dictionary<string, double> Sqnr { get; }

    public void Dispose()
    {
        Folder.Dispose();
        GC.SuppressFinalize(this);
    }
}
