using Quantize.Onnx.Quantization;
using Quantize.Onnx.Validation;

namespace Quantize.Onnx.Tuning;

/// <summary>
/// What the tuner needs from the engine: configurations built and validated, the units that can be kept float with
/// their cost, the per-layer analysis and timings. The search itself runs no model (<see cref="SessionTuningSource"/>
/// runs them with ONNX Runtime; tests give it made-up measurements).
/// </summary>
internal interface ITuningSource
{
    /// <summary>The model has Conv → activation → Conv pairs, so equalization is a choice.</summary>
    bool HasEqualizationPairs { get; }

    /// <summary>Per-channel weights are possible (opset ≥ 13 after preparation).</summary>
    bool PerChannelPossible { get; }

    /// <summary>Builds and validates one configuration.</summary>
    (Candidate Candidate, ValidationReport Validation) Evaluate(QuantizationOptions options);

    /// <summary>Quantized units of <paramref name="candidate"/> that can be kept float, in graph order (see <see cref="FloatUnits"/>).</summary>
    IReadOnlyList<string[]> FloatUnits(Candidate candidate);

    /// <summary>Multiply-accumulates of each node of <paramref name="candidate"/>'s graph.</summary>
    IReadOnlyDictionary<string, double> NodeCosts(Candidate candidate);

    /// <summary>Per node, the most dB a layer of it loses in <paramref name="candidate"/> (the per-layer analysis); for shortlisting.</summary>
    IReadOnlyDictionary<string, double> LayerLoss(Candidate candidate, ValidationReport validation);

    /// <summary>INT8 vs FP32 speed-up of <paramref name="candidate"/> over <paramref name="runs"/> timed runs, at the app's thread count.</summary>
    double Speedup(Candidate candidate, int runs);

    /// <summary>One attempt was built and validated (a search at 1024² takes minutes: the user sees it move).</summary>
    void Attempted(TuningAttempt attempt)
    {
    }
}
