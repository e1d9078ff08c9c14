using Quantize.Onnx.Model.Proto;
using DataType = Quantize.Onnx.Model.Proto.TensorProto.Types.DataType;

namespace Quantize.Onnx.Model;

/// <summary>
/// Refuses hostile or broken models before anything is computed from them: tensors written twice,
/// tensors whose declared
/// type and dimensions do not match the data they hold (a few bytes declaring a terabyte is a memory
/// bomb for whoever trusts the dims), subgraphs nested absurdly deep, and operators from domains that
/// neither ONNX nor ONNX Runtime defines (running them would need a custom-op library, and the
/// quantizer never loads one). Runs on a self-contained model, as <see cref="ModelLoader.Load"/> returns it.
/// </summary>
internal static class ModelChecker
{
    /// <summary>Deepest If/Loop/Scan nesting accepted; real models stay in single digits.</summary>
    public const int MaxSubgraphDepth = 32;

    /// <summary>Operator domains ONNX Runtime's CPU provider implements (custom-op libraries aside).</summary>
    private static readonly HashSet<string> KnownDomains = new(StringComparer.Ordinal)
    {
        "", "ai.onnx", "ai.onnx.ml", "com.microsoft", "com.microsoft.nchwc", "ai.onnx.preview.training",
    };

    public static void Check(ModelProto model, string path)
    {
        var functionDomains = model.Functions.Select(f => f.Domain).ToHashSet(StringComparer.Ordinal);
        CheckOpsetImports(model, path);
        CheckSingleAssignment(model.Graph, path);
        CheckGraph(model.Graph, path, functionDomains, 0);
        CheckEndlessLoops(model.Graph, [], path);
        foreach (var function in model.Functions)
        {
            CheckNodes(function.Node, path, functionDomains, 0);
        }

        foreach (var (tensor, _) in ModelTensors.All(model))
        {
            CheckTensor(tensor, path);
        }
    }

    /// <summary>
    /// One version per operator domain ('' and 'ai.onnx' are one). With two, ONNX Runtime and the engine need not read
    /// the same one: the engine wrote per-channel DequantizeLinear (opset 13) into a model ORT then ran at opset 11.
    /// </summary>
    private static void CheckOpsetImports(ModelProto model, string path)
    {
        foreach (var domain in model.OpsetImport.GroupBy(o => o.Domain == "ai.onnx" ? "" : o.Domain, StringComparer.Ordinal))
        {
            var versions = domain.Select(o => o.Version).Distinct().ToList();
            if (versions.Count > 1)
            {
                throw new QuantizeException(ErrorCodes.ModelCorrupt, path,
                    $"'{path}' is not a valid ONNX model (its opset_import gives domain '{(domain.Key.Length == 0 ? "ai.onnx" : domain.Key)}' " +
                    $"versions {string.Join(" and ", versions)}; a domain has one); re-export it, or keep the one entry the model was written for.");
            }
        }
    }

    /// <summary>Every tensor of the main graph has one producer: a graph input, an initializer or one node output.</summary>
    private static void CheckSingleAssignment(GraphProto graph, string path)
    {
        var producers = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (string name in graph.Input.Select(i => i.Name).Concat(graph.Initializer.Select(t => t.Name)))
        {
            producers.TryAdd(name, "a graph input or initializer"); // old IR versions list initializers as inputs too
        }

        foreach (var node in graph.Node)
        {
            foreach (string output in node.Output.Where(o => o.Length > 0))
            {
                if (!producers.TryAdd(output, $"node '{node.Name}'"))
                {
                    throw new QuantizeException(ErrorCodes.ModelCorrupt, path,
                        $"'{path}' is not a valid ONNX model (tensor '{output}' is written by {producers[output]} and again by node '{node.Name}'); re-export it.");
                }
            }
        }
    }

    private static void CheckGraph(GraphProto graph, string path, HashSet<string> functionDomains, int depth)
    {
        if (depth > MaxSubgraphDepth)
        {
            throw new QuantizeException(ErrorCodes.SubgraphsTooDeep, path,
                $"'{path}' nests subgraphs (If/Loop/Scan bodies) more than {MaxSubgraphDepth} levels deep (graph '{graph.Name}'); " +
                "such a model is not one an exporter writes — re-export it, or flatten the control flow.");
        }

        CheckNodes(graph.Node, path, functionDomains, depth);
    }

    private static void CheckNodes(IEnumerable<NodeProto> nodes, string path, HashSet<string> functionDomains, int depth)
    {
        foreach (var node in nodes)
        {
            if (!KnownDomains.Contains(node.Domain) && !functionDomains.Contains(node.Domain))
            {
                throw new QuantizeException(ErrorCodes.UnknownOperatorDomain, path,
                    $"Node '{node.Name}' of '{path}' is operator '{node.OpType}' of domain '{node.Domain}', which neither ONNX nor ONNX Runtime defines. " +
                    "It would need a custom-op library, and the quantizer never loads one (a library is code that would run in the build). " +
                    "Exclude that part from the model you quantize, or replace the custom op with standard ONNX operators.");
            }

            foreach (var attribute in node.Attribute)
            {
                if (attribute.G is not null)
                {
                    CheckGraph(attribute.G, path, functionDomains, depth + 1);
                }

                foreach (var graph in attribute.Graphs)
                {
                    CheckGraph(graph, path, functionDomains, depth + 1);
                }
            }
        }
    }

    /// <summary>
    /// A Loop without a trip count whose condition starts true (no input, or a constant) and that its body passes on
    /// unchanged (its condition input, through Identity nodes, or a constant true) never ends on any input: ORT would run
    /// the first sample until the build is killed (fuzz: a Loop whose trip count input was dropped).
    /// </summary>
    /// <param name="scopes">The graphs around <paramref name="graph"/>, innermost first.</param>
    private static void CheckEndlessLoops(GraphProto graph, List<GraphProto> scopes, string path)
    {
        var visible = scopes.Prepend(graph).ToList();
        foreach (var node in graph.Node)
        {
            if (node is { OpType: "Loop", Domain: "" or "ai.onnx" } && node.Attribute.FirstOrDefault(a => a.Name == "body")?.G is { } body
                && (node.Input.Count == 0 || node.Input[0].Length == 0)
                && (node.Input.Count < 2 || node.Input[1].Length == 0 || IsConstantTrue(node.Input[1], visible))
                && body.Input.Count >= 2 && body.Output.Count >= 1 && StaysTrue(body.Output[0].Name, body.Input[1].Name, body, visible))
            {
                throw new QuantizeException(ErrorCodes.ModelUnsupported, path,
                    $"Loop '{node.Name}' of '{path}' never ends: it has no trip count, and its condition starts true and its body returns it unchanged, " +
                    "so ONNX Runtime would run it forever on any input. Give it a trip count or a condition its body computes, and check that the model runs in ONNX Runtime.");
            }

            foreach (var sub in node.Attribute.SelectMany(a => a.Graphs.Append(a.G)).OfType<GraphProto>())
            {
                CheckEndlessLoops(sub, visible, path);
            }
        }
    }

    /// <summary>Whether a Loop body's condition output <paramref name="name"/> is its condition input <paramref name="carried"/> (through Identity nodes) or a constant true.</summary>
    private static bool StaysTrue(string name, string carried, GraphProto body, List<GraphProto> outer)
    {
        for (var hops = 0; hops <= body.Node.Count; hops++)
        {
            if (name == carried)
            {
                return true;
            }

            if (body.Node.FirstOrDefault(n => n.Output.Contains(name)) is not { OpType: "Identity", Input.Count: 1 } identity)
            {
                return IsConstantTrue(name, [body, .. outer]);
            }

            name = identity.Input[0];
        }

        return false;
    }

    /// <summary>Whether <paramref name="name"/>, looked up from the innermost of <paramref name="scopes"/> out, is a one-element bool initializer or Constant that is true.</summary>
    private static bool IsConstantTrue(string name, List<GraphProto> scopes)
    {
        foreach (var graph in scopes)
        {
            var tensor = graph.Initializer.FirstOrDefault(t => t.Name == name)
                ?? graph.Node.FirstOrDefault(n => n.OpType == "Constant" && n.Output.Contains(name))?.Attribute.FirstOrDefault(a => a.Name == "value")?.T;
            if (tensor is not null)
            {
                return tensor.DataType == (int)DataType.Bool && tensor.Dims.All(d => d == 1)
                    && (tensor.HasRawData ? tensor.RawData.Length == 1 && tensor.RawData[0] != 0 : tensor.Int32Data is [not 0]);
            }

            if (graph.Input.Any(i => i.Name == name) || graph.Node.Any(n => n.Output.Contains(name)))
            {
                return false;
            }
        }

        return false;
    }

    /// <summary>The declared dims and type must account for exactly the data the tensor holds.</summary>
    private static void CheckTensor(TensorProto tensor, string path)
    {
        string name = string.IsNullOrEmpty(tensor.Name) ? "(unnamed)" : tensor.Name;
        string Mismatch(string why) =>
            $"Tensor '{name}' of '{path}' {why}; the model is corrupt or was crafted — re-export it.";

        if (!TensorElementInfo.TryGetElementCount(tensor.Dims, out long count))
        {
            throw new QuantizeException(ErrorCodes.TensorDataMismatch, path,
                Mismatch($"declares dims [{string.Join(", ", tensor.Dims)}], which have a negative value or more elements than a 64-bit count holds"));
        }

        var type = (DataType)tensor.DataType;
        if (type == DataType.String)
        {
            if (tensor.StringData.Count != count)
            {
                throw new QuantizeException(ErrorCodes.TensorDataMismatch, path,
                    Mismatch($"declares {count} strings (dims [{string.Join(", ", tensor.Dims)}]) but holds {tensor.StringData.Count}"));
            }

            return;
        }

        if (!TensorElementInfo.HasFixedSize(type))
        {
            throw new QuantizeException(ErrorCodes.TensorDataMismatch, path, Mismatch($"has element type {tensor.DataType}, which ONNX does not define"));
        }

        if (ExternalDataScope.IsExternal(tensor))
        {
            return; // deferred by the loader, which checked its length against dims and type (QNT1004)
        }

        if (TensorElementInfo.BitsPerElement(type) < 8 && !tensor.HasRawData)
        {
            return; // packed 4/2-bit values in int32_data: ORT checks them; nothing here reads them.
        }

        long held = HeldElements(tensor, type, out string field);
        long expected = count;
        if (field == "raw_data" && !TensorElementInfo.TryGetByteSize(tensor, out expected))
        {
            throw new QuantizeException(ErrorCodes.TensorDataMismatch, path,
                Mismatch($"declares dims [{string.Join(", ", tensor.Dims)}] of {TensorElementInfo.Name(type)}, more bytes than a 64-bit size holds, but holds {held} bytes"));
        }

        if (held != expected)
        {
            string unit = field == "raw_data" ? "bytes" : "values";
            throw new QuantizeException(ErrorCodes.TensorDataMismatch, path,
                Mismatch($"declares {TensorElementInfo.Name(type)} dims [{string.Join(", ", tensor.Dims)}] ({count} elements, {expected} {unit} of {field}) but holds {held} {unit}"));
        }
    }

    /// <summary>How much data the tensor holds, in bytes for raw_data or values for the typed field its type uses.</summary>
    private static long HeldElements(TensorProto tensor, DataType type, out string field)
    {
        if (tensor.HasRawData)
        {
            field = "raw_data";
            return tensor.RawData.Length;
        }

        (field, long values) = type switch
        {
            DataType.Float => ("float_data", tensor.FloatData.Count),
            DataType.Double => ("double_data", tensor.DoubleData.Count),
            DataType.Int64 => ("int64_data", tensor.Int64Data.Count),
            DataType.Uint32 or DataType.Uint64 => ("uint64_data", tensor.Uint64Data.Count),
            DataType.Complex64 => ("float_data", tensor.FloatData.Count / 2),
            DataType.Complex128 => ("double_data", tensor.DoubleData.Count / 2),
            _ => ("int32_data", (long)tensor.Int32Data.Count),
        };

        return values;
    }
}
