using Microsoft.ML.OnnxRuntime;
using Quantize.Onnx.Model;
using Quantize.Onnx.Model.Proto;
using Quantize.Onnx.Preparation;
using Quantize.Onnx.Samples;

namespace Quantize.Onnx.Calibration;

/// <summary>
/// MinMax calibration computed inside the graph: a ReduceMin and a ReduceMax (scalar outputs) are
/// appended for every tensor of interest and the model's own outputs are dropped, so a run returns
/// two floats per tensor. Intermediate tensors are freed by ORT as soon as their consumers ran, so
/// memory is that of one inference, whatever the tensor sizes, and does not grow with the number of
/// samples (each sample is folded into the running ranges before the next one is read). Tensors
/// asked for per channel get a [C] ReduceMin/ReduceMax instead (cross-layer equalization needs them).
/// </summary>
internal static class MinMaxCalibrator
{
    /// <summary>ORT intra-op threads for calibration, 0 = one per core. Tests vary it to show the ranges do not depend on it.</summary>
    internal static int IntraOpThreads { get; set; }

    public static (Dictionary<string, TensorRange> Ranges, Dictionary<string, ChannelRange> Channels) Collect(
        ModelProto model,
        IReadOnlyList<string> inputNames,
        IReadOnlyCollection<string> tensors,
        IReadOnlyCollection<string> channelTensors,
        SampleSet samples,
        Action<int>? onSampleDone,
        CancellationToken cancellation,
        InputStatistics? statistics = null,
        TensorTypes? branchTypes = null)
    {
        var (augmented, outputs) = Augment(model, tensors, channelTensors, branchTypes);
        var ranges = new Dictionary<string, TensorRange>(StringComparer.Ordinal);
        var channels = new Dictionary<string, ChannelRange>(StringComparer.Ordinal);
        // Full optimisation: the model runs as fast as an application would run it (NCHWc convs).
        // No memory pattern: ORT would otherwise keep one planned block per tensor alive across runs,
        // which with a reduction on every tensor cost PaddleOCR det 354 MB peak instead of 244 MB.
        // Any thread count gives the same ranges: min and max are exact whatever the order of the partial
        // reductions, and ORT's conv/gemm kernels compute each output element on one thread.
        using var options = new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL, EnableMemoryPattern = false, IntraOpNumThreads = IntraOpThreads };
        using var session = CalibrationRuns.CreateSession(augmented, options);
        using var runOptions = new RunOptions();
        var outputNames = outputs.SelectMany(o => new[] { o.MinOutput, o.MaxOutput }).ToArray();

        // One set of input tensors for the whole run, filled in place from each sample's files.
        using var feeds = new CalibrationFeeds(samples, inputNames, statistics);
        var gen0 = Gen0Bound.Start();
        for (var s = 0; s < samples.Count; s++)
        {
            cancellation.ThrowIfCancellationRequested();
            var source = feeds.Load(s);
            using (var results = CalibrationRuns.Run(session, runOptions, feeds.Values, outputNames, source))
            {
                for (var i = 0; i < outputs.Count; i++)
                {
                    var min = results[2 * i].GetTensorDataAsSpan<float>();
                    var max = results[(2 * i) + 1].GetTensorDataAsSpan<float>();
                    var name = outputs[i].Tensor;
                    if (outputs[i].PerChannel)
                    {
                        if (channels.TryGetValue(name, out var seenChannels))
                        {
                            seenChannels.Union(min, max);
                        }
                        else
                        {
                            channels[name] = new ChannelRange(min.ToArray(), max.ToArray());
                        }

                        continue;
                    }

                    var observed = new TensorRange(min[0], max[0]);
                    ranges[name] = ranges.TryGetValue(name, out var seen) ? seen.Union(observed) : observed;
                }
            }

            onSampleDone?.Invoke(s + 1);
            gen0.Tick(); // after the callback, so the host's garbage counts too
        }

        return (ranges, channels);
    }

    /// <param name="branchTypes">Types of the control-flow bodies' tensors, to calibrate them too (<see cref="BodyRangeOutputs"/>); null: main graph only.</param>
    private static (ModelProto Model, List<RangeOutputs> Outputs) Augment(
        ModelProto model, IReadOnlyCollection<string> tensors, IReadOnlyCollection<string> channelTensors, TensorTypes? branchTypes)
    {
        var augmented = model.Clone();
        var graph = augmented.Graph;
        var names = new NameAllocator(new GraphView(graph).AllNames().Concat(ControlFlowBodies.AllNames(graph)));
        graph.Output.Clear();
        var outputs = new List<RangeOutputs>();
        foreach (var tensor in tensors)
        {
            var entry = new RangeOutputs(tensor, names.Next(tensor + "_ReduceMin"), names.Next(tensor + "_ReduceMax"));
            outputs.Add(entry);
            foreach (var (op, output) in new[] { ("ReduceMin", entry.MinOutput), ("ReduceMax", entry.MaxOutput) })
            {
                var node = new NodeProto { OpType = op, Name = names.Next(output), Input = { tensor }, Output = { output } };
                node.SetInt("keepdims", 0);
                graph.Node.Add(node);
                graph.Output.Add(new ValueInfoProto
                {
                    Name = output,
                    Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Float, Shape = new TensorShapeProto() } },
                });
            }
        }

        var opset = augmented.DefaultOpset();
        foreach (var tensor in channelTensors)
        {
            var min = ChannelReduction.Add(graph, names, "ReduceMin", tensor, opset);
            var max = ChannelReduction.Add(graph, names, "ReduceMax", tensor, opset);
            graph.Output.Add(new ValueInfoProto { Name = min });
            graph.Output.Add(new ValueInfoProto { Name = max });
            outputs.Add(new RangeOutputs(tensor, min, max, PerChannel: true));
        }

        if (branchTypes is not null)
        {
            outputs.AddRange(BodyRangeOutputs.Add(augmented, names, branchTypes));
        }

        return (augmented, outputs);
    }
}

/// <summary>The two scalar outputs (or [C] outputs, per channel) that carry one tensor's range out of a calibration run.</summary>
internal sealed record RangeOutputs(string Tensor, string MinOutput, string MaxOutput, bool PerChannel = false);
