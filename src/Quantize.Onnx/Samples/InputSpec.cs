using Microsoft.ML.OnnxRuntime.Tensors;
using Quantize.Onnx.Model.Proto;

namespace Quantize.Onnx.Samples;

/// <summary>
/// What the model expects for one input: name, element type and dimensions (null for a dynamic or
/// symbolic dimension). <see cref="RankKnown"/> is false when the model declares no shape at all,
/// in which case any shape is accepted.
/// </summary>
public sealed record InputSpec(string Name, TensorElementType ElementType, IReadOnlyList<long?> Dims)
{
    /// <summary>False when the model gives no shape for the input (any rank is accepted).</summary>
    public bool RankKnown { get; init; } = true;

    /// <summary>Builds the spec of a graph input; throws <see cref="ErrorCodes.ModelUnsupported"/> for non-tensor or non-numeric inputs.</summary>
    public static InputSpec FromValueInfo(ValueInfoProto valueInfo)
    {
        ArgumentNullException.ThrowIfNull(valueInfo);
        string name = valueInfo.Name;
        var tensorType = valueInfo.Type?.TensorType
            ?? throw new QuantizeException(ErrorCodes.ModelUnsupported, null,
                $"Model input '{name}' is not a dense tensor (it is a sequence, map, optional or sparse tensor); calibration only feeds dense tensors.");

        var elementType = ElementTypes.FromOnnx(tensorType.ElemType);
        if (elementType is null || !ElementTypes.IsSupported(elementType.Value))
        {
            throw new QuantizeException(ErrorCodes.ModelUnsupported, null,
                $"Model input '{name}' has element type {ElementTypes.DescribeOnnx(tensorType.ElemType)}, which calibration data cannot provide.");
        }

        if (tensorType.Shape is null)
        {
            return new InputSpec(name, elementType.Value, Array.Empty<long?>()) { RankKnown = false };
        }

        var dims = tensorType.Shape.Dim
            .Select(d => d.ValueCase == TensorShapeProto.Types.Dimension.ValueOneofCase.DimValue && d.DimValue >= 0 ? d.DimValue : (long?)null)
            .ToArray();
        return new InputSpec(name, elementType.Value, dims);
    }

    /// <summary>True when <paramref name="shape"/> has this input's rank and every fixed dimension matches.</summary>
    public bool Accepts(IReadOnlyList<long> shape)
    {
        if (!RankKnown)
        {
            return true;
        }

        if (shape.Count != Dims.Count)
        {
            return false;
        }

        for (int i = 0; i < shape.Count; i++)
        {
            if (Dims[i] is long d && d != shape[i])
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>The expected shape as messages show it: [?,3,96,96] (? = any size), or "any shape".</summary>
    public string FormatShape() =>
        RankKnown ? "[" + string.Join(",", Dims.Select(d => d?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "?")) + "]" : "any shape";
}
