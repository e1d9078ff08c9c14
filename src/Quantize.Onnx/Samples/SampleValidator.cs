namespace Quantize.Onnx.Samples;

/// <summary>Checks one tensor read from <c>file</c> against the model input it feeds.</summary>
internal static class SampleValidator
{
    /// <summary>Type, shape and finite values.</summary>
    public static void Check(TensorData tensor, InputSpec spec, string file) =>
        Check(tensor.ElementType, tensor.Shape, tensor.Data, spec, file);

    /// <summary>Type, shape and finite values of little-endian element bytes (e.g. read straight into an ORT tensor).</summary>
    public static void Check(Microsoft.ML.OnnxRuntime.Tensors.TensorElementType type, long[] shape, ReadOnlySpan<byte> data, InputSpec spec, string file)
    {
        CheckTypeAndShape(type, shape, spec, file);
        CheckFinite(type, shape, data, file);
    }

    /// <summary>Finite values (NaN and infinities are rejected) of little-endian element bytes.</summary>
    public static void CheckFinite(Microsoft.ML.OnnxRuntime.Tensors.TensorElementType type, long[] shape, ReadOnlySpan<byte> data, string file)
    {
        long index = TensorData.FindNonFinite(type, data);
        if (index >= 0)
        {
            throw new QuantizeException(ErrorCodes.CalibrationNonFinite, file,
                $"Calibration file '{file}' contains {TensorData.DescribeElement(type, data, index)} at element index {index} (flat C-order index{PositionOf(index, shape)}). " +
                "Calibration ranges need finite values: fix or drop this sample.");
        }
    }

    public static void CheckTypeAndShape(Microsoft.ML.OnnxRuntime.Tensors.TensorElementType type, long[] shape, InputSpec spec, string file)
    {
        if (type != spec.ElementType)
        {
            string expected = ElementTypes.Describe(spec.ElementType);
            throw new QuantizeException(ErrorCodes.CalibrationTypeMismatch, file,
                $"Calibration file '{file}' holds {ElementTypes.Describe(type)} data but model input '{spec.Name}' expects {expected}. " +
                (spec.ElementType == Microsoft.ML.OnnxRuntime.Tensors.TensorElementType.BFloat16
                    ? "Save the data as bfloat16 (a TensorProto .pb with data_type BFLOAT16; numpy has no bfloat16)."
                    : $"Save the data as {expected} (e.g. numpy: array.astype(numpy.{expected}))."));
        }

        if (!spec.Accepts(shape))
        {
            throw new QuantizeException(ErrorCodes.CalibrationShapeMismatch, file,
                $"Calibration file '{file}' has shape {ElementTypes.FormatShape(shape)} but model input '{spec.Name}' expects {spec.FormatShape()} " +
                "(? = any size). Save the sample with the shape the model takes (including the batch dimension).");
        }
    }

    private static string PositionOf(long index, long[] shape)
    {
        if (shape.Length < 2)
        {
            return string.Empty;
        }

        var position = new long[shape.Length];
        for (int axis = shape.Length - 1; axis >= 0; axis--)
        {
            position[axis] = index % shape[axis];
            index /= shape[axis];
        }

        return ", position " + ElementTypes.FormatShape(position);
    }
}
