using Google.Protobuf;
using Quantize.Onnx.Model;
using Quantize.Onnx.Model.Proto;
using Quantize.Onnx.Preparation;
using Quantize.Onnx.Samples;

namespace Quantize.Onnx.Validation;

/// <summary>
/// Per-layer SQNR between FP32 and INT8: every activation the INT8 model quantizes (in the main graph and in the
/// control-flow bodies <see cref="BodyTensorExport"/> reaches) is read through the DequantizeLinear of its QuantizeLinear and compared with the same tensor of the FP32
/// (prepared) model on a few samples. Tensors are exported as extra graph outputs, at most a byte budget per run
/// (more passes when the model has more), so memory stays bounded. A layer's damage is the SQNR its
/// inputs had minus the SQNR of its output: the dB lost in that layer, which is what excluding it can win back.
/// </summary>
internal static class LayerSensitivity
{
    private const double Cap = 100;

    public static List<LayerError> Analyze(
        ModelProto fp32, ModelProto int8, IReadOnlySet<string> quantizedNodes, IReadOnlyList<string> inputNames,
        IReadOnlyList<InputSample> samples, long budgetBytes)
    {
        if (samples.Count == 0)
        {
            return [];
        }

        var types = TypesOn(fp32, samples[0]);
        var pairs = Pairs(fp32, int8, t => types?[t]?.IsStatic == true);
        var sizes = Sizes(fp32, types);
        try
        {
            return Measure(fp32, int8, quantizedNodes, inputNames, samples, budgetBytes, pairs, sizes);
        }
        catch (Microsoft.ML.OnnxRuntime.OnnxRuntimeException) when (Pairs(fp32, int8, _ => false) is var outsideLoops && outsideLoops.Count < pairs.Count)
        {
            // Shape inference can call static a loop-body tensor whose shape a run changes between iterations, and ORT
            // refuses to stack it: the loops' layers are then left out of the analysis.
            return Measure(fp32, int8, quantizedNodes, inputNames, samples, budgetBytes, outsideLoops, sizes);
        }
    }

    private static List<LayerError> Measure(
        ModelProto fp32, ModelProto int8, IReadOnlySet<string> quantizedNodes, IReadOnlyList<string> inputNames,
        IReadOnlyList<InputSample> samples, long budgetBytes, List<(string Fp32, string Int8)> pairs, Dictionary<string, long> sizes)
    {
        if (pairs.Count == 0)
        {
            return [];
        }

        var sqnr = new Dictionary<string, SqnrAccumulator>(StringComparer.Ordinal);
        foreach (var group in Groups(pairs, sizes, budgetBytes))
        {
            var (fp32Model, fp32Outputs) = BodyTensorExport.WithOutputs(fp32, group.Select(p => p.Fp32));
            var (int8Model, int8Outputs) = BodyTensorExport.WithOutputs(int8, group.Select(p => p.Int8));
            using var a = new ModelRunner(fp32Model.ToByteArray(), inputNames);
            using var b = new ModelRunner(int8Model.ToByteArray(), inputNames);
            foreach (var sample in samples)
            {
                var ra = a.Run(sample);
                var rb = b.Run(sample);
                foreach (var (f, q) in group)
                {
                    // An If branch the sample does not take gives an empty tensor: nothing to compare there.
                    if (ra.TryGetValue(fp32Outputs[f], out var va) && rb.TryGetValue(int8Outputs[q], out var vb)
                        && va.Values.Length == vb.Values.Length && va.Values.Length > 0)
                    {
                        if (!sqnr.TryGetValue(f, out var acc))
                        {
                            sqnr[f] = acc = new SqnrAccumulator();
                        }

                        acc.Add(va.Values, vb.Values);
                    }
                }
            }
        }

        return Rank(fp32, quantizedNodes, sqnr.ToDictionary(kv => kv.Key, kv => Math.Min(Cap, kv.Value.Decibels), StringComparer.Ordinal));
    }

    /// <summary>
    /// (FP32 tensor, INT8 DequantizeLinear output) for every quantized activation of the main graph and of the bodies
    /// whose tensors can be read out (<see cref="BodyTensorExport"/>: in a Loop/Scan body, those of static shape).
    /// </summary>
    internal static List<(string Fp32, string Int8)> Pairs(ModelProto fp32, ModelProto int8, Func<string, bool> staticShape)
    {
        var fp32Graphs = GraphsOf(fp32);
        var fp32Tensors = fp32.Graph.Input.Select(i => i.Name).Concat(fp32Graphs.SelectMany(g => g.Graph.Node.SelectMany(n => n.Output))).ToHashSet(StringComparer.Ordinal);
        var fp32Initializers = fp32Graphs.SelectMany(g => g.Graph.Initializer).Select(t => t.Name).ToHashSet(StringComparer.Ordinal);
        var int8Graphs = GraphsOf(int8);
        var int8Initializers = int8Graphs.SelectMany(g => g.Graph.Initializer).Select(t => t.Name).ToHashSet(StringComparer.Ordinal);
        var pairs = new List<(string, string)>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (graph, loop) in int8Graphs)
        {
            var view = new GraphView(graph);
            foreach (var q in graph.Node.Where(n => n.OpType == "QuantizeLinear" && n.Input.Count > 0 && !int8Initializers.Contains(n.Input[0])))
            {
                var dq = view.Consumers(q.Output[0]).Select(c => c.Node).FirstOrDefault(n => n.OpType == "DequantizeLinear");
                if (dq is null)
                {
                    continue;
                }

                // A loop stacks what leaves it per iteration: only a shape that cannot change between iterations may.
                var name = fp32Tensors.Contains(q.Input[0]) ? q.Input[0] : fp32Tensors.Contains(dq.Output[0]) ? dq.Output[0] : null;
                if (name is not null && !fp32Initializers.Contains(name) && (!loop || staticShape(name)) && seen.Add(name))
                {
                    pairs.Add((name, dq.Output[0]));
                }
            }
        }

        return pairs;
    }

    /// <summary>The main graph, then the bodies whose tensors can be read out, each with whether it is a Loop/Scan body.</summary>
    private static List<(GraphProto Graph, bool Loop)> GraphsOf(ModelProto model) =>
        [(model.Graph, false), .. BodyTensorExport.Exportable(model).Select(b => (b.Graph, !b.IsBranch))];

    private static List<LayerError> Rank(ModelProto fp32, IReadOnlySet<string> quantizedNodes, Dictionary<string, double> sqnr)
    {
        var layers = new List<LayerError>();
        foreach (var graph in GraphsOf(fp32).Select(g => new GraphView(g.Graph)))
        {
            layers.AddRange(RankIn(graph, quantizedNodes, sqnr));
        }

        // Ranked by the noise power the layer adds relative to the signal (10^(-SQNR/10) after minus before):
        // 100 -> 40 dB adds far less noise than 30 -> 25 dB, although more dB are lost.
        return layers.OrderByDescending(l => AddedNoise(l)).ThenBy(l => l.SqnrDb).ThenBy(l => l.Node, StringComparer.Ordinal).ToList();
    }

    /// <summary>The layers of one graph's own nodes (a body's node reads what flows in from outside through its measured inputs).</summary>
    private static IEnumerable<LayerError> RankIn(GraphView graph, IReadOnlySet<string> quantizedNodes, Dictionary<string, double> sqnr)
    {
        foreach (var node in graph.Graph.Node.Where(n => quantizedNodes.Contains(n.Name)))
        {
            if (IsAbsorbed(graph, node, quantizedNodes, sqnr))
            {
                continue; // measured as part of its producer
            }

            // A Relu/Clip absorbed into this node's QuantizeLinear: its output is this node's quantized output.
            var outputs = node.Output
                .SelectMany(o => sqnr.ContainsKey(o) ? [o] : graph.Consumers(o).Where(c => IsAbsorbed(graph, c.Node, quantizedNodes, sqnr)).SelectMany(c => c.Node.Output))
                .Where(sqnr.ContainsKey).ToList();
            if (outputs.Count == 0)
            {
                continue;
            }

            var output = outputs.MinBy(o => sqnr[o])!;
            var before = InputSqnr(graph, node, sqnr);
            yield return new LayerError(node.Name, node.OpType, output, sqnr[output], Math.Max(0, before - sqnr[output]));
        }
    }

    /// <summary>A quantized Relu/Clip whose input has no QuantizeLinear: folded into its producer's.</summary>
    private static bool IsAbsorbed(GraphView graph, NodeProto node, IReadOnlySet<string> quantizedNodes, Dictionary<string, double> sqnr) =>
        node.OpType is "Relu" or "Clip" && quantizedNodes.Contains(node.Name) && node.Input.Count > 0 && !sqnr.ContainsKey(node.Input[0])
        && graph.Producer(node.Input[0]) is { } producer && quantizedNodes.Contains(producer.Name);

    /// <summary>The lowest SQNR of the measured tensors feeding the node (through unmeasured float ops); <see cref="Cap"/> at the graph inputs.</summary>
    private static double InputSqnr(GraphView graph, NodeProto node, Dictionary<string, double> sqnr)
    {
        var before = Cap;
        var pending = new Queue<string>(node.Input.Where(i => i.Length > 0 && !graph.IsInitializer(i)));
        var seen = new HashSet<string>(StringComparer.Ordinal);
        while (pending.Count > 0 && seen.Count < 64)
        {
            var tensor = pending.Dequeue();
            if (!seen.Add(tensor))
            {
                continue;
            }

            if (sqnr.TryGetValue(tensor, out var value))
            {
                before = Math.Min(before, value);
            }
            else if (graph.Producer(tensor) is { } producer)
            {
                foreach (var input in producer.Input.Where(i => i.Length > 0 && !graph.IsInitializer(i)))
                {
                    pending.Enqueue(input);
                }
            }
        }

        return before;
    }

    private static double AddedNoise(LayerError layer) => Math.Pow(10, -layer.SqnrDb / 10) - Math.Pow(10, -(layer.SqnrDb + layer.LossDb) / 10);

    /// <summary>Bytes of every float tensor on one sample (shapes inferred with the sample's input shapes); tensors ORT cannot size are missing.</summary>
    internal static Dictionary<string, long> Sizes(ModelProto model, InputSample sample) => Sizes(model, TypesOn(model, sample));

    /// <summary>Types and shapes of every tensor, bodies included, with the sample's input shapes; null where ORT cannot infer them.</summary>
    private static TensorTypes? TypesOn(ModelProto model, InputSample sample)
    {
        var probe = model.Clone();
        foreach (var input in probe.Graph.Input)
        {
            var data = sample.Inputs.FirstOrDefault(t => t.Name == input.Name);
            if (data is not null && input.Type?.TensorType is { } tensorType)
            {
                tensorType.Shape = new TensorShapeProto();
                foreach (var d in data.Shape)
                {
                    tensorType.Shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = d });
                }
            }
        }

        try
        {
            return TensorTypes.Infer(probe);
        }
        catch (Microsoft.ML.OnnxRuntime.OnnxRuntimeException)
        {
            return null;
        }
    }

    private static Dictionary<string, long> Sizes(ModelProto model, TensorTypes? types)
    {
        var sizes = new Dictionary<string, long>(StringComparer.Ordinal);
        if (types is null)
        {
            return sizes;
        }

        // Body tensors too, as far as their shapes are known (a dynamic dimension counts as 1).
        var bodyOutputs = ControlFlowBodies.Of(model).SelectMany(b => b.Graph.Node.SelectMany(n => n.Output));
        foreach (var name in model.Graph.Input.Select(i => i.Name).Concat(model.Graph.Node.SelectMany(n => n.Output)).Concat(bodyOutputs))
        {
            if (types[name]?.Shape is { } shape)
            {
                sizes[name] = 4 * shape.Aggregate(1L, (a, d) => a * (d ?? 1));
            }
        }

        return sizes;
    }

    private static IEnumerable<List<(string Fp32, string Int8)>> Groups(List<(string Fp32, string Int8)> pairs, Dictionary<string, long> sizes, long budget)
    {
        var group = new List<(string, string)>();
        long bytes = 0;
        foreach (var pair in pairs)
        {
            var size = 2 * sizes.GetValueOrDefault(pair.Fp32, 4); // FP32 and INT8 copies
            if (group.Count > 0 && bytes + size > budget)
            {
                yield return group;
                group = [];
                bytes = 0;
            }

            group.Add(pair);
            bytes += size;
        }

        if (group.Count > 0)
        {
            yield return group;
        }
    }
}
