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

    /// <summary>Every dimension is known.</summary>
    public bool IsStatic => Shape is { } shape && shape.All(d => d is not null);
}

/// <summary>
/// Element type and shape of every tensor of the main graph and of the control-flow bodies the engine quantizes (see
/// <see cref="BodyTypeProbe"/>). ONNX Runtime is the type inferencer:
/// every node output is declared as a graph output without a type, the session (never run) infers
/// them, and its output metadata tells us what it found. This follows ORT's own rules exactly,
/// including contrib ops, which a hand-written inferencer would not.
/// </summary>
public sealed class TensorTypes
{
    private readonly Dictionary<string, TensorType> _types;

    private TensorTypes(Dictionary<string, TensorType> types, Dictionary<string, string> untypedBodies)
    {
        _types = types;
        UntypedBodies = untypedBodies;
    }

    /// <summary>Control-flow bodies ORT could not type on their own (by <see cref="Body.Describe"/>), and why: they stay float.</summary>
    internal IReadOnlyDictionary<string, string> UntypedBodies { get; }

    public TensorType? this[string name] => _types.GetValueOrDefault(name);

    public bool IsFloat32(string name) => _types.TryGetValue(name, out var t) && t.IsFloat32;

    internal static TensorTypes Infer(ModelProto model)
    {
        var types = new Dictionary<string, TensorType>(StringComparer.Ordinal);
        var untyped = new Dictionary<string, string>(StringComparer.Ordinal);
        Collect(BodyTypeProbe.Main(model), types, replace: true);

        // Bodies in pre-order: the graph around a body is typed before it.
        foreach (var body in ControlFlowBodies.Of(model))
        {
            try
            {
                if (BodyTypeProbe.Body(model, body, name => types.GetValueOrDefault(name)) is { } probe)
                {
                    Collect(probe, types, replace: false);
                }
                else
                {
                    untyped[body.Describe()] = "a value it reads from outside, or one of its inputs, has no tensor type";
                }
            }
            catch (OnnxRuntimeException e)
            {
                // ORT cannot type this body on its own: its tensors stay untyped, so float.
                untyped[body.Describe()] = e.Message;
            }
        }

        return new TensorTypes(types, untyped);
    }

    /// <param name="replace">Main graph: initializers' own types win. A body probe types what it reads from outside by element type alone, so the outer graph's types stay.</param>
    private static void Collect(ModelProto probe, Dictionary<string, TensorType> types, bool replace)
    {
        using (var options = new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_DISABLE_ALL })
        using (var session = OrtSessions.Create(probe.ToByteArray(), options))
        {
            foreach (var (name, meta) in session.InputMetadata.Concat(session.OutputMetadata))
            {
                if (meta.OnnxValueType == OnnxValueType.ONNX_TYPE_TENSOR)
                {
                    var type = new TensorType(meta.ElementDataType, ToShape(meta.Dimensions));
                    if (replace || !types.ContainsKey(name))
                    {
                        types[name] = type;
                    }
                }
            }
        }

        foreach (var initializer in probe.Graph.Initializer)
        {
            types[initializer.Name] = new TensorType(
                (TensorElementType)initializer.DataType, initializer.Dims.Select(d => (long?)d).ToArray());
        }
    }

    private static long?[] ToShape(int[] dims) => dims.Select(d => d < 0 ? null : (long?)d).ToArray();
}
