using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using Quantize.Onnx.Model;
using Quantize.Onnx.Model.Proto;

namespace Quantize.Onnx.Preparation;

/// <summary>
/// Runs ONNX Runtime's basic (hardware-independent) graph optimisations offline: constant folding,
/// Constant nodes turned into initializers, Conv+BatchNormalization / Conv+Mul/Add folding, redundant
/// node removal. Only standard ONNX ops come out, so the result is still a portable model.
/// </summary>
internal static class OrtGraphOptimizer
{
    public static ModelProto Optimize(ModelProto model)
    {
        var optimized = Run(model, GraphOptimizationLevel.ORT_ENABLE_BASIC);
        RemoveUnusedOpsetImports(optimized);

        // ORT stamps itself as producer; keep the user's model identity instead.
        optimized.ProducerName = model.ProducerName;
        optimized.ProducerVersion = model.ProducerVersion;
        return optimized;
    }

    /// <summary>The graph ORT builds from <paramref name="model"/> at <paramref name="level"/>, as ORT saves it.</summary>
    public static ModelProto Run(ModelProto model, GraphOptimizationLevel level)
    {
        if (ExternalDataScope.Current is { HasDeferredTensors: true } scope)
        {
            return RunDeferred(model, level, scope);
        }

        var folder = Directory.CreateTempSubdirectory("quantize-ort-");
        try
        {
            var optimizedPath = Path.Combine(folder.FullName, "optimized.onnx");
            using (var options = new SessionOptions { GraphOptimizationLevel = level, OptimizedModelFilePath = optimizedPath, IntraOpNumThreads = 1 })
            using (new InferenceSession(model.ToByteArray(), options))
            {
                // Creating the session writes the optimised model.
            }

            return ModelProto.Parser.ParseFrom(File.ReadAllBytes(optimizedPath));
        }
        finally
        {
            folder.Delete(recursive: true);
        }
    }

    /// <summary>
    /// A model with deferred tensors: ORT saves the optimized model into the scope's work folder with its
    /// large initializers in a data file beside it, so they stay deferred (relative to that folder) when parsed back.
    /// </summary>
    private static ModelProto RunDeferred(ModelProto model, GraphOptimizationLevel level, ExternalDataScope scope)
    {
        var stem = scope.NewWorkFile("optimized");
        var optimizedPath = stem + ".onnx";
        try
        {
            using (var options = new SessionOptions { GraphOptimizationLevel = level, OptimizedModelFilePath = optimizedPath, IntraOpNumThreads = 1 })
            {
                options.AddSessionConfigEntry("session.optimized_model_external_initializers_file_name", Path.GetFileName(stem) + ".data");
                options.AddSessionConfigEntry("session.optimized_model_external_initializers_min_size_in_bytes", scope.DeferMinBytes.ToString(System.Globalization.CultureInfo.InvariantCulture));
                using (OrtSessions.Create(model.ToByteArray(), options))
                {
                    // Creating the session writes the optimised model and its data file.
                }
            }

            using var stream = File.OpenRead(optimizedPath);
            var optimized = ModelProto.Parser.ParseFrom(CodedInputStream.CreateWithLimits(stream, int.MaxValue, ModelLoader.RecursionLimit));
            DropConstantsSavedTwice(optimized.Graph);
            return optimized;
        }
        finally
        {
            File.Delete(optimizedPath);
        }
    }

    /// <summary>
    /// Saving with external initializers, ORT writes a Constant node of a nested body (an If branch inside a Loop body)
    /// both as an initializer of that body and as the node: the name is defined twice, and ORT refuses the model it wrote
    /// (fuzz: a bias as a Constant node in such a branch, tensors kept on disk). The initializer stays.
    /// </summary>
    private static void DropConstantsSavedTwice(GraphProto graph)
    {
        var initializers = graph.Initializer.Select(t => t.Name).ToHashSet(StringComparer.Ordinal);
        foreach (var node in graph.Node.Where(n => n is { OpType: "Constant", Domain: "" or "ai.onnx", Output.Count: 1 } && initializers.Contains(n.Output[0])).ToList())
        {
            graph.Node.Remove(node);
        }

        foreach (var body in graph.Node.SelectMany(ControlFlowBodies.Subgraphs))
        {
            DropConstantsSavedTwice(body);
        }
    }

    /// <summary>ORT lists every domain it knows in the saved model; keep only those nodes use.</summary>
    internal static void RemoveUnusedOpsetImports(ModelProto model)
    {
        var used = new HashSet<string>(StringComparer.Ordinal);
        CollectDomains(model.Graph, used);
        foreach (var function in model.Functions)
        {
            used.Add(function.Domain);
            foreach (var node in function.Node)
            {
                used.Add(node.Domain);
            }
        }

        for (var i = model.OpsetImport.Count - 1; i >= 0; i--)
        {
            var domain = model.OpsetImport[i].Domain;
            if (domain is not ("" or "ai.onnx") && !used.Contains(domain))
            {
                model.OpsetImport.RemoveAt(i);
            }
        }
    }

    private static void CollectDomains(GraphProto graph, HashSet<string> used)
    {
        foreach (var node in graph.Node)
        {
            used.Add(node.Domain);
            foreach (var attribute in node.Attribute)
            {
                if (attribute.G is not null)
                {
                    CollectDomains(attribute.G, used);
                }

                foreach (var g in attribute.Graphs)
                {
                    CollectDomains(g, used);
                }
            }
        }
    }
}
