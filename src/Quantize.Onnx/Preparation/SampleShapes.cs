using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using Quantize.Onnx.Model;
using Quantize.Onnx.Model.Proto;
using Quantize.Onnx.Samples;
using Quantize.Onnx.Validation;

namespace Quantize.Onnx.Preparation;

/// <summary>The shapes chosen tensors have on one real input; tensors that are not tensors (sequences, maps) are missing.</summary>
internal delegate IReadOnlyDictionary<string, long[]> ShapeProbe(IReadOnlyCollection<string> tensors);

/// <summary>
/// Runs a model once on a real sample with chosen intermediate tensors declared as graph outputs
/// (as the calibrators do) and reads the shapes ORT gives them: what static shape inference could
/// not tell, the sample shows.
/// </summary>
internal static class SampleShapes
{
    /// <summary>A probe that runs <paramref name="model"/> on <paramref name="sample"/> each time it is asked.</summary>
    public static ShapeProbe For(ModelProto model, IReadOnlyList<string> inputNames, InputSample sample) =>
        tensors => Observe(model, inputNames, sample, tensors);

    public static IReadOnlyDictionary<string, long[]> Observe(ModelProto model, IReadOnlyList<string> inputNames, InputSample sample, IReadOnlyCollection<string> tensors)
    {
        var shapes = new Dictionary<string, long[]>(StringComparer.Ordinal);
        var wanted = new List<string>();
        foreach (var name in tensors.Distinct(StringComparer.Ordinal))
        {
            var index = IndexOf(inputNames, name);
            if (index >= 0)
            {
                shapes[name] = sample.Inputs[index].Shape;
            }
            else if (model.Graph.Initializer.FirstOrDefault(t => t.Name == name) is { } initializer)
            {
                shapes[name] = [.. initializer.Dims];
            }
            else
            {
                wanted.Add(name);
            }
        }

        if (wanted.Count == 0)
        {
            return shapes;
        }

        var probe = model.Clone();
        probe.Graph.Output.Clear();
        probe.Graph.Output.Add(wanted.Select(name => new ValueInfoProto { Name = name }));
        using var options = new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_DISABLE_ALL };
        using var session = OrtSessions.Create(probe.ToByteArray(), options);
        var tensorOutputs = wanted.Where(name => session.OutputMetadata[name].OnnxValueType == OnnxValueType.ONNX_TYPE_TENSOR).ToArray();
        using var feeds = new Feeds(inputNames, sample);
        using var runOptions = new RunOptions();
        using var results = session.Run(runOptions, feeds.Values, tensorOutputs);
        for (var i = 0; i < tensorOutputs.Length; i++)
        {
            shapes[tensorOutputs[i]] = results[i].GetTensorTypeAndShape().Shape;
        }

        return shapes;
    }

    private static int IndexOf(IReadOnlyList<string> names, string name)
    {
        for (var i = 0; i < names.Count; i++)
        {
            if (names[i] == name)
            {
                return i;
            }
        }

        return -1;
    }
}
