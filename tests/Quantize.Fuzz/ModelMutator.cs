using System.Globalization;
using Google.Protobuf;
using Quantize.Onnx.Model.Proto;
using AttributeType = Quantize.Onnx.Model.Proto.AttributeProto.Types.AttributeType;
using DataLocation = Quantize.Onnx.Model.Proto.TensorProto.Types.DataLocation;

namespace Quantize.Fuzz;

/// <summary>One mutated model: its bytes and what was done to the seed (for the failure report).</summary>
public sealed record MutatedModel(byte[] Bytes, string Description);

/// <summary>
/// Deterministic mutations of a serialized model. Byte-level ones (truncation, bit flips, byte
/// overwrites, chunk duplication) test the parser; field-level ones parse the seed, change one thing
/// a hostile or broken exporter could produce (dims, types, data, external-data locations, ops,
/// domains, attributes, graph wiring, opsets, nesting) and serialize it again, which tests everything
/// after the parser. The same <see cref="Random"/> state always gives the same mutation.
/// </summary>
public static class ModelMutator
{
    /// <summary>The external-data locations a mutated tensor may point at (the case runner creates the files).</summary>
    public static readonly string[] Locations =
        ["weights.bin", "missing.bin", "../outside.bin", "/etc/hostname", "sub/../../outside.bin", "link.bin", ".", "sub/", "C:\\x.bin", ""];

    private static readonly string[] OpTypes =
        ["Conv", "Relu", "Add", "MatMul", "Gemm", "Concat", "Reshape", "Resize", "If", "Loop", "QuantizeLinear", "DequantizeLinear",
         "Softmax", "MaxPool", "BatchNormalization", "Identity", "Constant", "NotAnOp", ""];

    private static readonly string[] Domains = ["com.evil.customops", "ai.onnx.ml", "com.microsoft", "ai.onnx", "", "ai.onnx.preview.training"];

    private static readonly long[] AbsurdDims = [-1, 0, 1L << 40, long.MaxValue, int.MaxValue, 1 << 20, 3];

    private delegate string Mutation(Random random, ModelProto model, GraphProto graph);

    /// <summary>Field mutations; the last three change the model as a whole, the others one graph (<see cref="PickGraph"/>).</summary>
    private static readonly (string Name, Mutation Apply)[] FieldMutations =
    [
        ("tensor-dims", TensorDims),
        ("tensor-type", TensorType),
        ("tensor-data", TensorData),
        ("tensor-external", TensorExternal),
        ("node-op", NodeOpType),
        ("node-domain", NodeDomain),
        ("node-inputs", NodeInputs),
        ("node-outputs", NodeOutputs),
        ("node-attribute", NodeAttribute),
        ("node-order", NodeOrder),
        ("graph-input", GraphInput),
        ("graph-output", GraphOutput),
        ("body", BodyStructure),
        ("opset", Opset),
        ("nesting", Nesting),
    ];

    /// <summary>A mutation of <paramref name="seed"/> chosen by <paramref name="random"/>: about 40 % byte-level, the rest field-level.</summary>
    public static MutatedModel Mutate(byte[] seed, Random random)
    {
        int pick = random.Next(10);
        if (pick < 4)
        {
            return MutateBytes(seed, random, pick);
        }

        var model = ModelProto.Parser.ParseFrom(seed);
        int kind = random.Next(FieldMutations.Length);
        var (name, apply) = FieldMutations[kind];
        var (graph, where) = kind < FieldMutations.Length - 3 ? PickGraph(random, model) : (model.Graph, "");
        string what = apply(random, model, graph);
        return new MutatedModel(model.ToByteArray(), $"{name}: {what}{where}");
    }

    private static MutatedModel MutateBytes(byte[] seed, Random random, int kind)
    {
        var bytes = (byte[])seed.Clone();
        switch (kind)
        {
            case 0:
                {
                    int length = random.Next(bytes.Length);
                    return new MutatedModel(bytes[..length], $"truncated to {length} of {seed.Length} bytes");
                }

            case 1:
                {
                    int flips = 1 + random.Next(8);
                    var positions = new List<int>();
                    for (int i = 0; i < flips; i++)
                    {
                        int at = Position(bytes.Length, random);
                        bytes[at] ^= (byte)(1 << random.Next(8));
                        positions.Add(at);
                    }

                    return new MutatedModel(bytes, $"bits flipped at {string.Join(",", positions)}");
                }

            case 2:
                {
                    byte[] values = [0x00, 0xFF, 0x7F, 0x80, 0x01, 0x0A, 0x12];
                    int at = Position(bytes.Length, random);
                    int count = 1 + random.Next(4);
                    for (int i = at; i < Math.Min(bytes.Length, at + count); i++)
                    {
                        bytes[i] = values[random.Next(values.Length)];
                    }

                    return new MutatedModel(bytes, $"{count} byte(s) overwritten at {at}");
                }

            default:
                {
                    int at = Position(bytes.Length, random);
                    int count = Math.Min(1 + random.Next(256), bytes.Length - at);
                    var result = new byte[bytes.Length + count];
                    bytes.AsSpan(0, at + count).CopyTo(result);
                    bytes.AsSpan(at).CopyTo(result.AsSpan(at + count));
                    return new MutatedModel(result, $"{count} byte(s) duplicated at {at}");
                }
        }
    }

    /// <summary>Half uniform, half in the first or last 2 KB, where the graph structure of a weight-heavy model lives.</summary>
    private static int Position(int length, Random random)
    {
        if (random.Next(2) == 0 || length <= 4096)
        {
            return random.Next(length);
        }

        return random.Next(2) == 0 ? random.Next(2048) : length - 1 - random.Next(2048);
    }

    /// <summary>
    /// The graph a field mutation changes: in a model with If/Loop/Scan bodies (any depth), half the time one of them,
    /// so the engine's body handling sees broken bodies too; the main graph otherwise (drawing nothing for a model without
    /// bodies).
    /// </summary>
    private static (GraphProto Graph, string Where) PickGraph(Random random, ModelProto model)
    {
        var bodies = Bodies(model.Graph);
        if (bodies.Count == 0 || random.Next(2) == 0)
        {
            return (model.Graph, "");
        }

        var (owner, attribute, graph) = Pick(bodies, random);
        return (graph, $" (in {attribute} of {owner.OpType} '{owner.Name}')");
    }

    /// <summary>The graph-valued attributes of the nodes of <paramref name="graph"/>, at any depth, in pre-order.</summary>
    private static List<(NodeProto Owner, string Attribute, GraphProto Graph)> Bodies(GraphProto graph)
    {
        var bodies = new List<(NodeProto, string, GraphProto)>();
        foreach (var node in graph.Node)
        {
            foreach (var attribute in node.Attribute.Where(a => a.G is not null))
            {
                bodies.Add((node, attribute.Name, attribute.G));
                bodies.AddRange(Bodies(attribute.G));
            }
        }

        return bodies;
    }

    /// <summary>Every node of <paramref name="graph"/> and of its bodies.</summary>
    private static IEnumerable<NodeProto> AllNodes(GraphProto graph) =>
        graph.Node.SelectMany(n => n.Attribute.Where(a => a.G is not null).SelectMany(a => AllNodes(a.G)).Prepend(n));

    /// <summary>
    /// Changes one control-flow body the way real exports differ from our seeds, keeping the model mostly valid so the
    /// engine's body handling runs: a weight read from the outer scope moved into the body (a Constant node, or a body
    /// initializer in every body of the node: the copies ORT's folding writes), the branch or loop never run, a body
    /// output taken straight from outside or from a body input, a body output listed twice, a Loop/Scan's trailing
    /// outputs left off, a body initializer shadowing an outer weight, or a body tensor renamed to a name another graph
    /// defines.
    /// </summary>
    private static string BodyStructure(Random random, ModelProto model, GraphProto graph)
    {
        var bodies = Bodies(model.Graph);
        if (bodies.Count == 0)
        {
            return "no bodies";
        }

        var (owner, attribute, body) = Pick(bodies, random);
        string where = $"{attribute} of {owner.OpType} '{owner.Name}'";
        var outer = model.Graph.Initializer.GroupBy(t => t.Name).ToDictionary(g => g.Key, g => g.First(), StringComparer.Ordinal);
        var weights = body.Node.SelectMany(n => n.Input).Where(outer.ContainsKey).Distinct().ToList();
        void Rewire(GraphProto g, string from, string to)
        {
            foreach (var node in AllNodes(g))
            {
                for (int i = 0; i < node.Input.Count; i++)
                {
                    node.Input[i] = node.Input[i] == from ? to : node.Input[i];
                }
            }
        }

        switch (random.Next(8))
        {
            case 0 when weights.Count > 0:
                {
                    string weight = Pick(weights, random), local = weight + "_in_body";
                    var value = outer[weight].Clone();
                    value.Name = local;
                    body.Node.Insert(0, new NodeProto
                    {
                        OpType = "Constant",
                        Name = local,
                        Output = { local },
                        Attribute = { new AttributeProto { Name = "value", Type = AttributeType.Tensor, T = value } },
                    });
                    Rewire(body, weight, local);
                    return $"{weight} a Constant node of the {where}";
                }

            case 1 when weights.Count > 0:
                {
                    string weight = Pick(weights, random);
                    var siblings = owner.Attribute.Where(a => a.G is not null).ToList();
                    foreach (var sibling in siblings.Where(a => AllNodes(a.G).Any(n => n.Input.Contains(weight))))
                    {
                        var copy = outer[weight].Clone();
                        copy.Name = $"{weight}_{sibling.Name}";
                        sibling.G.Initializer.Add(copy);
                        Rewire(sibling.G, weight, copy.Name);
                    }

                    return $"{weight} copied into the bodies of {owner.OpType} '{owner.Name}' that read it";
                }

            case 2 when (owner.OpType == "If" && owner.Input.Count > 0) || (owner.OpType == "Loop" && owner.Input.Count > 1):
                {
                    string never = owner.Name + "_never";
                    int at = owner.OpType == "Loop" && random.Next(2) == 0 ? 1 : 0;
                    var tensor = owner.OpType == "If" || at == 1
                        ? new TensorProto { Name = never, DataType = (int)TensorProto.Types.DataType.Bool, Int32Data = { random.Next(2) } }
                        : new TensorProto { Name = never, DataType = (int)TensorProto.Types.DataType.Int64, Int64Data = { 0 } };
                    model.Graph.Initializer.Add(tensor);
                    string before = owner.Input[at];
                    owner.Input[at] = never;
                    return $"{owner.OpType} '{owner.Name}' input {at} ({before}) a constant {(tensor.Int32Data.Count > 0 ? tensor.Int32Data[0] : 0)}";
                }

            case 3 when body.Output.Count > 0:
                {
                    var from = body.Input.Select(i => i.Name)
                        .Concat(AllNodes(body).SelectMany(n => n.Input).Where(i => i.Length > 0 && !body.Node.SelectMany(n => n.Output).Contains(i)))
                        .Distinct().ToList();
                    if (from.Count == 0)
                    {
                        return $"no input nor outer read in the {where}";
                    }

                    int at = random.Next(body.Output.Count);
                    string before = body.Output[at].Name;
                    body.Output[at].Name = Pick(from, random);
                    return $"output {at} of the {where} ({before}) is '{body.Output[at].Name}', not computed there";
                }

            case 4 when body.Output.Count > 1:
                {
                    int at = 1 + random.Next(body.Output.Count - 1);
                    string before = body.Output[at].Name;
                    body.Output[at].Name = body.Output[at - 1].Name;
                    return $"output {at} of the {where} ({before}) is output {at - 1} again";
                }

            case 5 when owner.OpType is "Loop" or "Scan" && owner.Output.Count > 1:
                {
                    string dropped = owner.Output[^1];
                    owner.Output.RemoveAt(owner.Output.Count - 1);
                    var listed = model.Graph.Output.FirstOrDefault(o => o.Name == dropped);
                    if (listed is not null)
                    {
                        model.Graph.Output.Remove(listed);
                    }

                    return $"last output of {owner.OpType} '{owner.Name}' ({dropped}) left off";
                }

            case 6 when weights.Count > 0:
                {
                    string weight = Pick(weights, random);
                    var shadow = outer[weight].Clone();
                    body.Initializer.Add(shadow);
                    return $"{weight} shadowed by an initializer of the {where}";
                }

            default:
                {
                    var mine = body.Node.Where(n => n.Output.Count > 0 && n.Output[0].Length > 0).ToList();
                    var elsewhere = AllNodes(model.Graph).Where(n => !body.Node.Contains(n)).SelectMany(n => n.Output).Where(o => o.Length > 0).Distinct().ToList();
                    if (mine.Count == 0 || elsewhere.Count == 0)
                    {
                        return $"nothing to rename in the {where}";
                    }

                    var node = Pick(mine, random);
                    string before = node.Output[0], name = Pick(elsewhere, random);
                    node.Output[0] = name;
                    Rewire(body, before, name);
                    foreach (var output in body.Output.Where(o => o.Name == before))
                    {
                        output.Name = name;
                    }

                    return $"{before} of the {where} renamed to '{name}', defined elsewhere too";
                }
        }
    }

    private static List<TensorProto> Tensors(GraphProto graph)
    {
        var tensors = new List<TensorProto>(graph.Initializer);
        foreach (var node in graph.Node)
        {
            tensors.AddRange(node.Attribute.Where(a => a.T is not null).Select(a => a.T));
        }

        return tensors;
    }

    private static T Pick<T>(IList<T> items, Random random) => items[random.Next(items.Count)];

    private static string TensorDims(Random random, ModelProto model, GraphProto graph)
    {
        var tensors = Tensors(graph);
        if (tensors.Count == 0)
        {
            return "no tensors";
        }

        var tensor = Pick(tensors, random);
        switch (random.Next(3))
        {
            case 0 when tensor.Dims.Count > 0:
                int i = random.Next(tensor.Dims.Count);
                tensor.Dims[i] = Pick(AbsurdDims, random);
                return $"{tensor.Name} dim {i} = {tensor.Dims[i]}";
            case 1:
                tensor.Dims.Add(Pick(AbsurdDims, random));
                return $"{tensor.Name} extra dim {tensor.Dims[^1]}";
            default:
                tensor.Dims.Clear();
                return $"{tensor.Name} dims removed";
        }
    }

    private static string TensorType(Random random, ModelProto model, GraphProto graph)
    {
        var tensors = Tensors(graph);
        if (tensors.Count == 0)
        {
            return "no tensors";
        }

        var tensor = Pick(tensors, random);
        tensor.DataType = random.Next(-1, 26);
        return $"{tensor.Name} data_type = {tensor.DataType}";
    }

    private static string TensorData(Random random, ModelProto model, GraphProto graph)
    {
        var tensors = Tensors(graph);
        if (tensors.Count == 0)
        {
            return "no tensors";
        }

        var tensor = Pick(tensors, random);
        switch (random.Next(4))
        {
            case 0 when tensor.RawData.Length > 0:
                int length = random.Next(tensor.RawData.Length);
                tensor.RawData = ByteString.CopyFrom(tensor.RawData.Span[..length]);
                return $"{tensor.Name} raw_data cut to {length} bytes";
            case 1:
                tensor.ClearRawData();
                tensor.FloatData.Clear();
                tensor.Int64Data.Clear();
                return $"{tensor.Name} data removed";
            case 2:
                tensor.FloatData.Add(1.5f);
                return $"{tensor.Name} float_data added beside raw_data";
            default:
                tensor.RawData = ByteString.CopyFrom(new byte[tensor.RawData.Length + 1 + random.Next(64)]);
                return $"{tensor.Name} raw_data grown to {tensor.RawData.Length} bytes";
        }
    }

    private static string TensorExternal(Random random, ModelProto model, GraphProto graph)
    {
        var tensors = Tensors(graph);
        if (tensors.Count == 0)
        {
            return "no tensors";
        }

        var tensor = Pick(tensors, random);
        string location = Pick(Locations, random);
        tensor.ClearRawData();
        tensor.DataLocation = DataLocation.External;
        tensor.ExternalData.Clear();
        tensor.ExternalData.Add(new StringStringEntryProto { Key = "location", Value = location });
        string[] numbers = ["0", "16", "4096", "-1", "99999999999", "x", "9223372036854775807"];
        string offset = Pick(numbers, random);
        string length = Pick(numbers, random);
        if (random.Next(2) == 0)
        {
            tensor.ExternalData.Add(new StringStringEntryProto { Key = "offset", Value = offset });
        }

        if (random.Next(2) == 0)
        {
            tensor.ExternalData.Add(new StringStringEntryProto { Key = "length", Value = length });
        }

        return $"{tensor.Name} external at '{location}' ({string.Join(", ", tensor.ExternalData.Skip(1).Select(e => e.Key + "=" + e.Value))})";
    }

    private static NodeProto? PickNode(Random random, GraphProto graph) => graph.Node.Count == 0 ? null : Pick(graph.Node, random);

    private static string NodeOpType(Random random, ModelProto model, GraphProto graph)
    {
        if (PickNode(random, graph) is not { } node)
        {
            return "no nodes";
        }

        string before = node.OpType;
        node.OpType = Pick(OpTypes, random);
        return $"{node.Name} {before} -> '{node.OpType}'";
    }

    private static string NodeDomain(Random random, ModelProto model, GraphProto graph)
    {
        if (PickNode(random, graph) is not { } node)
        {
            return "no nodes";
        }

        node.Domain = Pick(Domains, random);
        if (random.Next(2) == 0)
        {
            model.OpsetImport.Add(new OperatorSetIdProto { Domain = node.Domain, Version = 1 });
        }

        return $"{node.Name} ({node.OpType}) domain '{node.Domain}'";
    }

    private static string NodeInputs(Random random, ModelProto model, GraphProto graph)
    {
        if (PickNode(random, graph) is not { } node)
        {
            return "no nodes";
        }

        switch (random.Next(4))
        {
            case 0 when node.Input.Count > 0:
                node.Input[random.Next(node.Input.Count)] = "";
                return $"{node.Name} input emptied";
            case 1 when node.Input.Count > 0:
                node.Input[random.Next(node.Input.Count)] = "no_such_tensor";
                return $"{node.Name} input renamed to a missing tensor";
            case 2 when node.Output.Count > 0 && node.Input.Count > 0:
                node.Input[0] = node.Output[0];
                return $"{node.Name} reads its own output (cycle)";
            default:
                node.Input.Add(node.Input.Count > 0 ? node.Input[0] : "x");
                return $"{node.Name} extra input";
        }
    }

    private static string NodeOutputs(Random random, ModelProto model, GraphProto graph)
    {
        if (PickNode(random, graph) is not { } node || node.Output.Count == 0)
        {
            return "no nodes";
        }

        var other = Pick(graph.Node, random);
        if (random.Next(2) == 0 && other.Output.Count > 0)
        {
            node.Output[0] = other.Output[0];
            return $"{node.Name} writes {other.Name}'s output";
        }

        node.Output[0] = random.Next(2) == 0 ? "" : graph.Input.FirstOrDefault()?.Name ?? "x";
        return $"{node.Name} output '{node.Output[0]}'";
    }

    private static string NodeAttribute(Random random, ModelProto model, GraphProto graph)
    {
        var nodes = graph.Node.Where(n => n.Attribute.Count > 0).ToList();
        if (nodes.Count == 0)
        {
            return "no attributes";
        }

        var node = Pick(nodes, random);
        var attribute = Pick(node.Attribute, random);
        switch (random.Next(5))
        {
            case 0:
                node.Attribute.Remove(attribute);
                return $"{node.Name}.{attribute.Name} removed";
            case 1:
                attribute.Type = (AttributeType)random.Next(0, 15);
                return $"{node.Name}.{attribute.Name} type {attribute.Type}";
            case 2:
                attribute.Ints.Clear();
                attribute.Ints.Add(Pick(AbsurdDims, random));
                attribute.I = Pick(AbsurdDims, random);
                return $"{node.Name}.{attribute.Name} ints [{attribute.Ints[0]}], i {attribute.I}";
            case 3:
                attribute.F = Pick(new[] { float.NaN, float.PositiveInfinity, -1e30f, 0f }, random);
                attribute.Floats.Add(float.NaN);
                return $"{node.Name}.{attribute.Name} f {attribute.F.ToString(CultureInfo.InvariantCulture)}";
            default:
                attribute.Name = attribute.Name + "_x";
                return $"{node.Name}.{attribute.Name} renamed";
        }
    }

    private static string NodeOrder(Random random, ModelProto model, GraphProto graph)
    {
        var nodes = graph.Node;
        if (nodes.Count < 2)
        {
            return "too few nodes";
        }

        switch (random.Next(3))
        {
            case 0:
                var removed = nodes[random.Next(nodes.Count)];
                nodes.Remove(removed);
                return $"{removed.Name} removed";
            case 1:
                var copy = nodes[random.Next(nodes.Count)].Clone();
                nodes.Add(copy);
                return $"{copy.Name} duplicated";
            default:
                var reversed = nodes.Reverse().ToList();
                nodes.Clear();
                nodes.AddRange(reversed);
                return "node order reversed";
        }
    }

    private static string GraphInput(Random random, ModelProto model, GraphProto graph)
    {
        if (graph.Input.Count == 0)
        {
            return "no inputs";
        }

        var input = Pick(graph.Input, random);
        var tensor = input.Type?.TensorType;
        switch (random.Next(4))
        {
            case 0 when tensor?.Shape is { Dim.Count: > 0 } shape:
                var dim = shape.Dim[random.Next(shape.Dim.Count)];
                dim.DimValue = Pick(AbsurdDims, random);
                return $"input {input.Name} dim {dim.DimValue}";
            case 1 when tensor is not null:
                tensor.ElemType = random.Next(0, 25);
                return $"input {input.Name} elem_type {tensor.ElemType}";
            case 2:
                input.Type = null;
                return $"input {input.Name} without type";
            default:
                graph.Input.Remove(input);
                return $"input {input.Name} removed";
        }
    }

    private static string GraphOutput(Random random, ModelProto model, GraphProto graph)
    {
        if (graph.Output.Count == 0)
        {
            return "no outputs";
        }

        var output = Pick(graph.Output, random);
        switch (random.Next(3))
        {
            case 0:
                graph.Output.Remove(output);
                return $"output {output.Name} removed";
            case 1:
                output.Name = graph.Input.FirstOrDefault()?.Name ?? "x";
                return $"output renamed to input {output.Name}";
            default:
                output.Name = "no_such_output";
                return "output renamed to a missing tensor";
        }
    }

    private static string Opset(Random random, ModelProto model, GraphProto graph)
    {
        switch (random.Next(4))
        {
            case 0:
                model.OpsetImport.Clear();
                return "opset_import removed";
            case 1:
                long[] versions = [0, 1, 6, 9, 12, 18, 21, 1000, -5];
                foreach (var opset in model.OpsetImport)
                {
                    opset.Version = Pick(versions, random);
                }

                return $"opset versions {string.Join(",", model.OpsetImport.Select(o => o.Version))}";
            case 2:
                model.IrVersion = Pick(new long[] { 0, 1, 3, 100, -1 }, random);
                return $"ir_version {model.IrVersion}";
            default:
                model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = 11 });
                return "duplicate default-domain opset";
        }
    }

    private static string Nesting(Random random, ModelProto model, GraphProto graph)
    {
        int levels = 1 + random.Next(120);
        var nested = new GraphProto { Name = "leaf" };
        for (int i = 0; i < levels; i++)
        {
            var node = new NodeProto { OpType = "If", Name = $"if{i}", Input = { "cond" }, Output = { $"y{i}" } };
            node.Attribute.Add(new AttributeProto { Name = "then_branch", Type = AttributeType.Graph, G = nested });
            node.Attribute.Add(new AttributeProto { Name = "else_branch", Type = AttributeType.Graph, G = new GraphProto { Name = "empty" } });
            nested = new GraphProto { Name = $"level{i}", Node = { node } };
        }

        graph.Node.Add(nested.Node[0]);
        return $"If nested {levels} levels deep";
    }
}
