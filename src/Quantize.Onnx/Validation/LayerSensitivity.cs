using Google.Protobuf;
using Quantize.Onnx.Model;
using Quantize.Onnx.Model.Proto;
using Quantize.Onnx.Preparation;
using Quantize.Onnx.Samples;

namespace Quantize.Onnx.Validation;

/// <summary>
/// Per-layer SQNR between FP32 and INT8: every activation the INT8 model quantizes is read through the
/// DequantizeLinear of its QuantizeLinear and compared with the same tensor of the FP32 (prepared)
/// model on a few samples. Tensors are exported as extra graph outputs, at most a byte budget per run
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

        var pairs = Pairs(fp32.Graph, int8.Graph);
        if (pairs.Count == 0)
        {
            return [];
        }

        var sizes = Sizes(fp32, samples[0]);
        var sqnr = new Dictionary<string, SqnrAccumulator>(StringComparer.Ordinal);
        foreach (var group in Groups(pairs, sizes, budgetBytes))
        {
            using var a = new ModelRunner(WithOutputs(fp32, group.Select(p => p.Fp32)).ToByteArray(), inputNames);
            using var b = new ModelRunner(WithOutputs(int8, group.Select(p => p.Int8)).ToByteArray(), inputNames);
            foreach (var sample in samples)
            {
                var ra = a.Run(sample);
                var rb = b.Run(sample);
                foreach (var (f, q) in group)
                {
                    if (ra.TryGetValue(f, out var va) && rb.TryGetValue(q, out var vb) && va.Values.Length == vb.Values.Length)
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

        return Rank(new GraphView(fp32.Graph), quantizedNodes, sqnr.ToDictionary(kv => kv.Key, kv => Math.Min(Cap, kv.Value.Decibels), StringComparer.Ordinal));
    }

    /// <summary>(FP32 tensor, INT8 DequantizeLinear output) for every quantized activation.</summary>
    internal static List<(string Fp32, string Int8)> Pairs(GraphProto fp32, GraphProto int8)
    {
        var fp32View = new GraphView(fp32);
        var fp32Tensors = fp32.Input.Select(i => i.Name).Concat(fp32.Node.SelectMany(n => n.Output)).ToHashSet(StringComparer.Ordinal);
        var int8View = new GraphView(int8);
        var pairs = new List<(string, string)>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var q in int8.Node.Where(n => n.OpType == "QuantizeLinear" && n.Input.Count > 0 && !int8View.IsInitializer(n.Input[0])))
        {
            var dq = int8View.Consumers(q.Output[0]).Select(c => c.Node).FirstOrDefault(n => n.OpType == "DequantizeLinear");
            if (dq is null)
            {
                continue;
            }

            var name = fp32Tensors.Contains(q.Input[0]) ? q.Input[0] : fp32Tensors.Contains(dq.Output[0]) ? dq.Output[0] : null;
            if (name is not null && !fp32View.IsInitializer(name) && seen.Add(name))
            {
                pairs.Add((name, dq.Output[0]));
            }
        }

        return pairs;
    }

    private static List<LayerError> Rank(GraphView graph, IReadOnlySet<string> quantizedNodes, Dictionary<string, double> sqnr)
    {
        var layers = new List<LayerError>();
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
            layers.Add(new LayerError(node.Name, node.OpType, output, sqnr[output], Math.Max(0, before - sqnr[output])));
        }

        // Ranked by the noise power the layer adds relative to the signal (10^(-SQNR/10) after minus before):
        // 100 -> 40 dB adds far less noise than 30 -> 25 dB, although more dB are lost.
        return layers.OrderByDescending(l => AddedNoise(l)).ThenBy(l => l.SqnrDb).ThenBy(l => l.Node, StringComparer.Ordinal).ToList();
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

    /// <summary>Bytes of each float tensor on a sample like <paramref name="sample"/> (input shapes fixed, then ORT's inference).</summary>
    /// <summary>Bytes of every float tensor on one sample (shapes inferred with the sample's input shapes); tensors ORT cannot size are missing.</summary>
    internal static Dictionary<string, long> Sizes(ModelProto model, InputSample sample)
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

        var sizes = new Dictionary<string, long>(StringComparer.Ordinal);
        TensorTypes types;
        try
        {
            types = TensorTypes.Infer(probe);
        }
        catch (Microsoft.ML.OnnxRuntime.OnnxRuntimeException)
        {
            return sizes;
        }

        foreach (var name in probe.Graph.Input.Select(i => i.Name).Concat(probe.Graph.Node.SelectMany(n => n.Output)))
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

    private static ModelProto WithOutputs(ModelProto model, IEnumerable<string> outputs)
    {
        var clone = model.Clone();
        clone.Graph.Output.Clear();
        foreach (var name in outputs)
        {
            clone.Graph.Output.Add(new ValueInfoProto { Name = name });
        }

        return clone;
    }
}
