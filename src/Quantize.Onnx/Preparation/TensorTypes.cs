using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Quantize.Onnx.Model;
using Quantize.Onnx.Model.Proto;

namespace Quantize.Onnx.Preparation;

/// <summary>Element type and (where known) shape of a tensor; a null dimension is dynamic.</summary>
public sealed record TensorType(TensorElementType ElementType, IReadOnlyList<long?>? Shape)
{
    public bool IsFloat32 => ElementType == TensorElementType.Float;

    public int? Rank => Shape?.Count;
}

/// <summary>
/// Element type and shape of every tensor of the main graph and of the If branches the engine quantizes (see
/// <see cref="BranchTypeProbe"/>). ONNX Runtime is the type inferencer:
/// every node output is declared as a graph output without a type, the session (never run) infers
/// them, and its output metadata tells us what it found. This follows ORT's own rules exactly,
/// including contrib ops, which a hand-written inferencer would not.
/// </summary>
public sealed class TensorTypes
{
    private readonly Dictionary<string, TensorType> _types;

    private TensorTypes(Dictionary<string, TensorType> types) => _types = types;

    public TensorType? this[string name] => _types.GetValueOrDefault(name);

    public bool IsFloat32(string name) => _types.TryGetValue(name, out var t) && t.IsFloat32;

    internal static TensorTypes Infer(ModelProto model)
    {
        var probe = model.Clone();
        BranchTypeProbe.Inline(probe);
        var declared = probe.Graph.Output.Select(o => o.Name).ToHashSet(StringComparer.Ordinal);
        foreach (var node in probe.Graph.Node)
        {
            foreach (var output in node.Output)
            {
                if (output.Length > 0 && declared.Add(output))
                {
                    probe.Graph.Output.Add(new ValueInfoProto { Name = output });
                }
            }
        }

        var types = new Dictionary<string, TensorType>(StringComparer.Ordinal);
        using (var options = new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_DISABLE_ALL })
        using (var session = OrtSessions.Create(probe.ToByteArray(), options))
        {
            foreach (var (name, meta) in session.InputMetadata.Concat(session.OutputMetadata))
            {
                if (meta.OnnxValueType == OnnxValueType.ONNX_TYPE_TENSOR)
                {
                    types[name] = new TensorType(meta.ElementDataType, ToShape(meta.Dimensions));
                }
            }
        }

        foreach (var initializer in probe.Graph.Initializer)
        {
            types[initializer.Name] = new TensorType(
                (TensorElementType)initializer.DataType, initializer.Dims.Select(d => (long?)d).ToArray());
        }

        return new TensorTypes(types);
    }

    private static long?[] ToShape(int[] dims) => dims.Select(d => d < 0 ? null : (long?)d).ToArray();
}
