using Microsoft.ML.OnnxRuntime;
using Quantize.Onnx.Model;
using Quantize.Onnx.Model.Proto;
using Quantize.Onnx.Samples;

namespace Quantize.Onnx.Calibration;

/// <summary>
/// Streams every calibration sample through the model and folds the values of each tensor of
/// interest (of the main graph or of a control-flow body: <see cref="BodyTensorExport"/>) into its <see cref="Histogram"/> (bounded memory per tensor, re-binned when a sample
/// exceeds the range seen so far). Histogram methods need the tensors themselves, not two scalars,
/// so the tensors are made graph outputs — in groups whose total size (measured on the first sample
/// with a Size node per tensor) stays under a byte budget: a model whose activations together exceed
/// the budget is run once per group. Each sample's outputs are folded and released before the next run.
/// Every group costs one inference per sample, so the budget grows with the memory the process may use: a 1024²
/// segmentation net (≈6 GB of activations per sample) ran 27 groups under a fixed 96 MB, about 11 minutes for 8
/// samples. The histograms do not depend on the grouping.
/// </summary>
internal static class HistogramCalibrator
{
    /// <summary>Least bytes of fetched tensors per run.</summary>
    public const long MinBudgetBytes = 96L << 20;

    /// <summary>Most bytes of fetched tensors per run: beyond it the runs saved are few and the memory is not.</summary>
    public const long MaxBudgetBytes = 1L << 30;

    /// <summary>Bytes of fetched tensors per run: an eighth of the memory available to the process (container limits included), within [<see cref="MinBudgetBytes"/>, <see cref="MaxBudgetBytes"/>].</summary>
    public static long BudgetBytes(long availableBytes) => Math.Clamp(availableBytes / 8, MinBudgetBytes, MaxBudgetBytes);

    /// <summary><see cref="BudgetBytes(long)"/> of this process.</summary>
    public static long BudgetBytes() => BudgetBytes(GC.GetGCMemoryInfo().TotalAvailableMemoryBytes);

    public static Dictionary<string, Histogram> Collect(
        ModelProto model,
        IReadOnlyList<string> inputNames,
        IReadOnlyList<string> tensors,
        SampleSet samples,
        long budgetBytes,
        Action<int, int>? onProgress,
        CancellationToken cancellation,
        int bins = Histogram.DefaultBins)
    {
        var histograms = tensors.Distinct(StringComparer.Ordinal).ToDictionary(t => t, _ => new Histogram(bins), StringComparer.Ordinal);
        using var options = new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL, EnableMemoryPattern = false };
        using var runOptions = new RunOptions();
        using var feeds = new CalibrationFeeds(samples, inputNames);
        var inputs = inputNames.ToHashSet(StringComparer.Ordinal);
        var computed = histograms.Keys.Where(t => !inputs.Contains(t)).ToList();
        var groups = Group(computed, Sizes(model, computed, feeds, options, runOptions), budgetBytes);
        var passes = Math.Max(1, groups.Count);
        var gen0 = Gen0Bound.Start();
        for (var g = 0; g < passes; g++)
        {
            var group = groups.Count == 0 ? [] : groups[g];
            var (augmented, outputs) = BodyTensorExport.WithOutputs(model, group);
            using var session = group.Count == 0 ? null : CalibrationRuns.CreateSession(augmented, options);
            var names = group.Select(t => outputs[t]).ToArray();
            for (var s = 0; s < samples.Count; s++)
            {
                cancellation.ThrowIfCancellationRequested();
                var source = feeds.Load(s);
                if (g == 0)
                {
                    // Graph inputs are folded straight from the feeds, once.
                    foreach (var input in inputNames.Where(histograms.ContainsKey))
                    {
                        histograms[input].Add(feeds.Values[input].GetTensorDataAsSpan<float>());
                    }
                }

                if (session is not null)
                {
                    using var results = CalibrationRuns.Run(session, runOptions, feeds.Values, names, source);
                    for (var i = 0; i < names.Length; i++)
                    {
                        histograms[group[i]].Add(results[i].GetTensorDataAsSpan<float>());
                    }
                }

                onProgress?.Invoke((g * samples.Count) + s + 1, passes * samples.Count);
                gen0.Tick();
            }
        }

        return histograms;
    }

    /// <summary>Splits tensors (graph order) into groups of at most <paramref name="budgetBytes"/> each (a larger tensor is a group of its own).</summary>
    internal static List<List<string>> Group(IReadOnlyList<string> tensors, IReadOnlyDictionary<string, long> bytes, long budgetBytes)
    {
        var groups = new List<List<string>>();
        var current = new List<string>();
        long size = 0;
        foreach (var tensor in tensors)
        {
            var b = bytes.GetValueOrDefault(tensor);
            if (current.Count > 0 && size + b > budgetBytes)
            {
                groups.Add(current);
                current = [];
                size = 0;
            }

            current.Add(tensor);
            size += b;
        }

        if (current.Count > 0)
        {
            groups.Add(current);
        }

        return groups;
    }

    /// <summary>Bytes of each tensor on the first sample: one Size node per tensor, scalar outputs only.</summary>
    private static Dictionary<string, long> Sizes(ModelProto model, IReadOnlyList<string> tensors, CalibrationFeeds feeds, SessionOptions options, RunOptions runOptions)
    {
        var result = new Dictionary<string, long>(StringComparer.Ordinal);
        if (tensors.Count == 0)
        {
            return result;
        }

        // Body tensors are sized where their If or loop passes them out: 0 when the first sample skips their branch.
        var (sized, exported) = BodyTensorExport.WithOutputs(model, tensors);
        var graph = sized.Graph;
        var names = new NameAllocator(ControlFlowBodies.AllNames(graph));
        graph.Output.Clear();
        var outputs = new string[tensors.Count];
        for (var i = 0; i < tensors.Count; i++)
        {
            outputs[i] = names.Next(tensors[i] + "_Size");
            graph.Node.Add(new NodeProto { OpType = "Size", Name = names.Next(outputs[i]), Input = { exported[tensors[i]] }, Output = { outputs[i] } });
            graph.Output.Add(new ValueInfoProto { Name = outputs[i] });
        }

        using var session = CalibrationRuns.CreateSession(sized, options);
        var source = feeds.Load(0);
        using var results = CalibrationRuns.Run(session, runOptions, feeds.Values, outputs, source);
        for (var i = 0; i < tensors.Count; i++)
        {
            result[tensors[i]] = results[i].GetTensorDataAsSpan<long>()[0] * sizeof(float);
        }

        return result;
    }
}
