using Quantize.Onnx.Model;
using Quantize.Onnx.Model.Proto;
using Quantize.Onnx.Preparation;

namespace Quantize.Onnx.Calibration;

/// <summary>Turns what calibration observed into the range each activation is quantized with, by the chosen method.</summary>
internal static class ActivationRanges
{
    /// <summary>The consumers of every tensor (what saturation-aware ranges and MSE weighting look at).</summary>
    public static Dictionary<string, IReadOnlyList<ConsumerResponse>> Consumers(GraphView graph, IEnumerable<string> tensors, QuantizationOptions options) =>
        tensors.Distinct(StringComparer.Ordinal).ToDictionary(
            t => t,
            t => options.SaturationAwareRanges ? ConsumerResponses.Of(graph, t) : (IReadOnlyList<ConsumerResponse>)[ConsumerResponse.Identity],
            StringComparer.Ordinal);

    /// <summary>Consumers of control-flow body tensors, found in their body (the main graph does not see them).</summary>
    public static void AddBranchConsumers(Dictionary<string, IReadOnlyList<ConsumerResponse>> consumers, ModelProto model, QuantizationOptions options)
    {
        foreach (var body in ControlFlowBodies.Of(model))
        {
            var view = new GraphView(body.Graph);
            foreach (var tensor in body.Graph.Input.Select(i => i.Name).Concat(body.Graph.Node.SelectMany(n => n.Output)).Where(consumers.ContainsKey))
            {
                consumers[tensor] = options.SaturationAwareRanges ? ConsumerResponses.Of(view, tensor) : [ConsumerResponse.Identity];
            }
        }
    }

    /// <summary>The float tensors of the control-flow bodies the engine quantizes.</summary>
    public static IEnumerable<string> BranchTensors(ModelProto model, TensorTypes types) =>
        ControlFlowBodies.Of(model).SelectMany(b => BodyRangeOutputs.FloatTensors(b.Graph, types));

    public static TensorRange FromHistogram(Histogram histogram, IReadOnlyList<ConsumerResponse> consumers, QuantizationOptions options)
    {
        var (below, above) = ConsumerResponses.SaturationBounds(consumers);
        return options.CalibrationMethod switch
        {
            CalibrationMethod.Percentile => RangeEstimators.Percentile(histogram, options.CalibrationPercentile, below, above),
            CalibrationMethod.Entropy => RangeEstimators.Entropy(histogram, saturatesBelow: below, saturatesAbove: above),
            CalibrationMethod.Mse => RangeEstimators.Mse(histogram, consumers, options.SymmetricActivations),
            _ => RangeEstimators.MinMax(histogram, below, above),
        };
    }

    /// <summary>A min/max range cut at the consumers' saturation bounds (still containing at least one value).</summary>
    public static TensorRange Cut(TensorRange range, IReadOnlyList<ConsumerResponse> consumers)
    {
        var (below, above) = ConsumerResponses.SaturationBounds(consumers);
        var min = Math.Clamp(range.Min, below, Math.Max(below, above));
        return new TensorRange((float)min, (float)Math.Clamp(range.Max, min, above));
    }
}
