using Quantize.Onnx.Model;
using Quantize.Onnx.Model.Proto;

namespace Quantize.Onnx.Preparation;

/// <summary>Where a rank came from.</summary>
internal enum RankSource
{
    /// <summary>Neither static inference nor a sample could tell.</summary>
    Unknown,

    /// <summary>ORT's static shape inference.</summary>
    Static,

    /// <summary>A run on a real sample, for a tensor whose rank the graph fixes.</summary>
    Sample,
}

/// <summary>
/// The rank of each tensor the opset upgrade asks about. ORT's static inference comes first; where it
/// knows nothing (a Reshape whose shape is computed from <c>Shape</c>/<c>Gather</c>/<c>Concat</c>, as
/// paddle2onnx and tf2onnx export them), the model runs once on a real sample and the rank it shows is
/// taken — but only for tensors whose rank the graph fixes, the same for every input the model accepts
/// (<see cref="FixedByGraph"/>). Dimensions are never taken from the sample: they may differ on the next one.
/// </summary>
internal sealed class TensorRanks
{
    private readonly TensorTypes _types;
    private readonly ShapeProbe? _probe;
    private readonly HashSet<string> _fixed;
    private readonly Dictionary<string, int> _observed = new(StringComparer.Ordinal);

    public TensorRanks(GraphProto graph, TensorTypes types, ShapeProbe? probe)
    {
        _types = types;
        _probe = probe;
        _fixed = FixedByGraph(graph, types);
    }

    /// <summary>Why the sample could not be run, if it was tried and failed.</summary>
    public string? ProbeFailure { get; private set; }

    /// <summary>
    /// The rank ORT's static inference found. ORT reports an unknown shape and a scalar alike (no
    /// dimensions), so an empty shape counts as unknown: every caller asks about tensors of rank ≥ 1.
    /// </summary>
    public int? Static(string name) => _types[name]?.Shape is { Count: > 0 } shape ? shape.Count : null;

    /// <summary>Whether the graph fixes the rank of <paramref name="name"/> (see <see cref="FixedByGraph"/>).</summary>
    public bool IsFixedByGraph(string name) => _fixed.Contains(name);

    /// <summary>
    /// Runs the sample once for those of <paramref name="names"/> whose rank static inference left
    /// unknown and the graph fixes. Without a probe, or if the run fails, they stay unknown.
    /// </summary>
    public void Observe(IEnumerable<string> names)
    {
        var wanted = names.Where(n => Static(n) is null && _fixed.Contains(n) && !_observed.ContainsKey(n)).Distinct(StringComparer.Ordinal).ToList();
        if (wanted.Count == 0 || _probe is null)
        {
            return;
        }

        try
        {
            foreach (var (name, shape) in _probe(wanted))
            {
                _observed[name] = shape.Length;
            }
        }
        catch (Microsoft.ML.OnnxRuntime.OnnxRuntimeException e)
        {
            ProbeFailure = e.Message;
        }
    }

    public (int? Rank, RankSource Source) this[string name] =>
        Static(name) is { } rank ? (rank, RankSource.Static)
        : _observed.TryGetValue(name, out var observed) ? (observed, RankSource.Sample)
        : (null, RankSource.Unknown);

    // Ops whose output shape depends on the values of an input (a target shape, pads, scales, k, axes
    // given as an input) or on the data itself: the output's size is fixed only when those inputs are constants.
    private static readonly HashSet<string> ValueShaped = new(StringComparer.Ordinal)
    {
        "AffineGrid", "BlackmanWindow", "CenterCropPad", "Col2Im", "Compress", "ConstantOfShape", "DFT", "Expand",
        "HammingWindow", "HannWindow", "MaxUnpool", "MelWeightMatrix", "NonMaxSuppression", "NonZero", "OneHot",
        "Pad", "Range", "Reshape", "Resize", "STFT", "Slice", "Split", "Squeeze", "StringSplit", "TfIdfVectorizer",
        "Tile", "TopK", "Unique", "Unsqueeze", "Upsample",
    };

    /// <summary>
    /// Tensors whose rank is the same on every input the model accepts. Graph inputs with a declared
    /// shape have a fixed rank (ORT refuses others) and initializers a fixed shape; a node's outputs have a
    /// fixed rank when its inputs do, except where the rank comes from values: a Reshape's target shape,
    /// an Expand/ConstantOfShape shape, the axes of a Squeeze/Unsqueeze/Reduce given as an input. Those
    /// need the <em>length</em> of that input fixed, which holds when its whole shape is fixed (e.g.
    /// <c>Concat(Shape(x)[0:1], [-1, 2, 8])</c> has 4 elements whatever x's dims are). A Squeeze without
    /// axes (which drops whatever dims are 1), control flow and ops of other domains fix nothing; ranks
    /// ORT's inference found are fixed too. One pass in node order (ONNX graphs are topologically sorted).
    /// </summary>
    internal static HashSet<string> FixedByGraph(GraphProto graph, TensorTypes types)
    {
        var rankFixed = new HashSet<string>(StringComparer.Ordinal);
        var shapeFixed = new HashSet<string>(StringComparer.Ordinal); // every dim the same on every input
        var constant = new HashSet<string>(StringComparer.Ordinal); // the same values on every input
        foreach (var initializer in graph.Initializer)
        {
            rankFixed.Add(initializer.Name);
            shapeFixed.Add(initializer.Name);
            constant.Add(initializer.Name);
        }

        foreach (var input in graph.Input.Where(i => !constant.Contains(i.Name)))
        {
            if (input.Type?.TensorType?.Shape is { } shape)
            {
                rankFixed.Add(input.Name);
                if (shape.Dim.All(d => d.ValueCase == TensorShapeProto.Types.Dimension.ValueOneofCase.DimValue))
                {
                    shapeFixed.Add(input.Name);
                }
            }
        }

        foreach (var node in graph.Node)
        {
            bool Present(int i) => i < node.Input.Count && node.Input[i].Length > 0;
            bool All(HashSet<string> set, int from = 0) => node.Input.Skip(from).All(i => i.Length == 0 || set.Contains(i));
            bool Rank(int i) => !Present(i) || rankFixed.Contains(node.Input[i]);
            bool Shape(int i) => !Present(i) || shapeFixed.Contains(node.Input[i]);
            var inputsConstant = All(constant);

            bool rank, shapeOfOutput;
            if (node.Domain is not ("" or "ai.onnx") || node.HasSubgraph())
            {
                (rank, shapeOfOutput) = (false, false);
            }
            else
            {
                (rank, shapeOfOutput) = node.OpType switch
                {
                    "Constant" => (true, true),
                    "Shape" or "Size" => (true, node.OpType == "Size" || Rank(0)),
                    "Flatten" => (true, Shape(0)),
                    "Reshape" => (Shape(1), Shape(0)),
                    "Expand" => (Rank(0) && Shape(1), Shape(0) && All(constant, 1)),
                    "ConstantOfShape" => (Shape(0), All(constant)),
                    "Squeeze" => (Rank(0) && (node.Find("axes") is not null || (Present(1) && Shape(1))), Shape(0)),
                    "Unsqueeze" => (Rank(0) && (node.Find("axes") is not null || Shape(1)), Shape(0)),
                    _ when node.OpType.StartsWith("Reduce", StringComparison.Ordinal) => (Rank(0) && Shape(1), Shape(0) && All(constant, 1)),
                    _ when ValueShaped.Contains(node.OpType) => (All(rankFixed), All(shapeFixed) && All(constant, 1)),
                    _ => (All(rankFixed), All(shapeFixed)),
                };
            }

            foreach (var output in node.Output.Where(o => o.Length > 0))
            {
                var known = types[output]?.Shape;
                if (rank || known is { Count: > 0 })
                {
                    rankFixed.Add(output);
                }

                if ((rank && shapeOfOutput) || known is { Count: > 0 } && known.All(d => d is not null))
                {
                    shapeFixed.Add(output);
                }

                if (node.OpType == "Constant" || (node.OpType is "Shape" or "Size" && shapeFixed.Contains(node.Input[0])) || (inputsConstant && node.Input.Count > 0))
                {
                    constant.Add(output);
                }
            }
        }

        return rankFixed;
    }
}
