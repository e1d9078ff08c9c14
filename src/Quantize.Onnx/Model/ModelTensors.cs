using Quantize.Onnx.Model.Proto;

namespace Quantize.Onnx.Model;

/// <summary>Where in a model a tensor sits.</summary>
internal enum TensorSite
{
    /// <summary>A graph initializer (main graph or a subgraph).</summary>
    Initializer,

    /// <summary>The values or indices of a sparse initializer.</summary>
    SparseInitializer,

    /// <summary>A tensor-valued node attribute (<c>t</c>/<c>tensors</c>, e.g. of a Constant node), or a function's attribute default.</summary>
    Attribute,

    /// <summary>The values or indices of a sparse tensor attribute.</summary>
    SparseAttribute,
}

/// <summary>
/// Enumerates every <see cref="TensorProto"/> of a model in a fixed order: the main graph, then
/// training-info graphs, then functions; within a graph initializers, sparse initializers, then node
/// attributes in node order, descending into subgraphs (<c>g</c>/<c>graphs</c>) where they appear.
/// </summary>
internal static class ModelTensors
{
    public static IEnumerable<(TensorProto Tensor, TensorSite Site)> All(ModelProto model)
    {
        ArgumentNullException.ThrowIfNull(model);
        var result = new List<(TensorProto, TensorSite)>();
        if (model.Graph is not null)
        {
            AddGraph(model.Graph, result);
        }

        foreach (var training in model.TrainingInfo)
        {
            if (training.Initialization is not null)
            {
                AddGraph(training.Initialization, result);
            }

            if (training.Algorithm is not null)
            {
                AddGraph(training.Algorithm, result);
            }
        }

        foreach (var function in model.Functions)
        {
            AddNodes(function.Node, result);
            AddAttributes(function.AttributeProto, result);
        }

        return result;
    }

    private static void AddGraph(GraphProto graph, List<(TensorProto, TensorSite)> result)
    {
        foreach (var tensor in graph.Initializer)
        {
            result.Add((tensor, TensorSite.Initializer));
        }

        foreach (var sparse in graph.SparseInitializer)
        {
            AddSparse(sparse, TensorSite.SparseInitializer, result);
        }

        AddNodes(graph.Node, result);
    }

    private static void AddNodes(IEnumerable<NodeProto> nodes, List<(TensorProto, TensorSite)> result)
    {
        foreach (var node in nodes)
        {
            AddAttributes(node.Attribute, result);
        }
    }

    private static void AddAttributes(IEnumerable<AttributeProto> attributes, List<(TensorProto, TensorSite)> result)
    {
        foreach (var attribute in attributes)
        {
            if (attribute.T is not null)
            {
                result.Add((attribute.T, TensorSite.Attribute));
            }

            foreach (var tensor in attribute.Tensors)
            {
                result.Add((tensor, TensorSite.Attribute));
            }

            if (attribute.SparseTensor is not null)
            {
                AddSparse(attribute.SparseTensor, TensorSite.SparseAttribute, result);
            }

            foreach (var sparse in attribute.SparseTensors)
            {
                AddSparse(sparse, TensorSite.SparseAttribute, result);
            }

            if (attribute.G is not null)
            {
                AddGraph(attribute.G, result);
            }

            foreach (var graph in attribute.Graphs)
            {
                AddGraph(graph, result);
            }
        }
    }

    private static void AddSparse(SparseTensorProto sparse, TensorSite site, List<(TensorProto, TensorSite)> result)
    {
        if (sparse.Values is not null)
        {
            result.Add((sparse.Values, site));
        }

        if (sparse.Indices is not null)
        {
            result.Add((sparse.Indices, site));
        }
    }
}
