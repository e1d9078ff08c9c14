using Microsoft.ML.OnnxRuntime;
using Quantize.Onnx.Quantization;
using Quantize.Onnx.Samples;
using Quantize.Onnx.Validation;

namespace Quantize.Onnx.Decision;

/// <summary>What keeps an INT8 model from shipping whatever the user's checks say: no integer kernel, no size win, or noise.</summary>
internal static class ShipGuards
{
    /// <summary>Why an INT8 model is not worth shipping whatever its accuracy: no integer kernel runs it, or it is not smaller. Null when it is.</summary>
    /// <param name="fp32Ships">What ships instead (<see cref="Fp32Ships"/>).</param>
    public static (string Code, string Result, string Message)? NotWorthShipping(FusionReport fusion, long fp32Bytes, long int8Bytes, bool floatKernelsByDesign, string fp32Ships)
    {
        if (fusion.FusedCount == 0 && !floatKernelsByDesign)
        {
            return (ErrorCodes.NoIntegerKernels, "kept-fp32-no-integer-kernels",
                $"ONNX Runtime runs none of the quantized nodes on integer kernels (every QDQ group stays DequantizeLinear -> float op -> QuantizeLinear), so INT8 would only add work. {fp32Ships} " +
                "The model's compute is in ops without an integer kernel here (e.g. inside control flow, or ConvTranspose).");
        }

        if (int8Bytes > fp32Bytes)
        {
            return (ErrorCodes.LargerThanSource, "kept-fp32-larger",
                $"The quantized model ({int8Bytes / 1e6:F2} MB) is larger than its FP32 source ({fp32Bytes / 1e6:F2} MB): its quantization parameters outweigh the weights it makes smaller. {fp32Ships}");
        }

        return null;
    }

    /// <summary>
    /// The sentence the warnings end with when FP32 ships: unchanged, or, with uint8 model I/O, with the same uint8 inputs
    /// and outputs as the INT8 model (the app's contract does not depend on the verdict).
    /// </summary>
    public static string Fp32Ships(QuantizationOptions options) => (options.UInt8Inputs, options.UInt8Outputs) switch
    {
        (true, true) => "The FP32 model is shipped with the same uint8 inputs and outputs as the INT8 model (the image preprocessing in its graph, its outputs quantized on the INT8 model's grids named in its metadata), so the app feeds and reads it alike.",
        (true, false) => "The FP32 model is shipped with the same uint8 inputs as the INT8 model (the image preprocessing in its graph), so the app feeds it alike.",
        (false, true) => "The FP32 model is shipped with the same uint8 outputs as the INT8 model (quantized on the INT8 model's grids named in its metadata), so the app reads it alike.",
        _ => "The FP32 model is shipped unchanged.",
    };

    /// <summary>The layers that lose the most, for the fidelity floor's message ("" when none could be measured).</summary>
    public static string WorstLayers(Candidate candidate, IReadOnlyList<string> inputNames, SampleSet data, ValidationOptions gate)
    {
        try
        {
            var samples = data.ReadSpread(gate.LayerSamples);
            var layers = LayerSensitivity.Analyze(candidate.Fp32, candidate.Quantized, candidate.QuantizedNodeNames, inputNames, samples, gate.LayerBudgetBytes);
            var worst = layers.OrderBy(l => l.SqnrDb).Take(gate.WorstLayerCount).ToList();
            return worst.Count == 0 ? "" : " (the worst layers, SQNR vs FP32: " + string.Join(", ", worst.Select(l => $"{l.Node} ({l.OpType}) {l.SqnrDb:F1} dB")) + ")";
        }
        catch (OnnxRuntimeException)
        {
            return "";
        }
    }
}
