using System.Buffers.Binary;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace Quantize.Onnx.Samples;

/// <summary>
/// An input for timing a model when the user gave no samples (dynamic quantization needs none): float
/// inputs get seeded standard-normal values, integer and bool inputs 1 (a valid token id, mask value
/// and index for any embedding table), free dimensions 1 for the first (batch) and 32 for the rest.
/// Only latency is measured on it; fidelity needs real samples.
/// </summary>
internal static class SyntheticSample
{
    public const string Source = "synthetic";
    private const long FreeDimension = 32;

    public static InputSample For(IReadOnlyList<InputSpec> inputs, string modelPath)
    {
        var random = new Random(20260101);
        var tensors = new List<TensorData>();
        foreach (var input in inputs)
        {
            if (!input.RankKnown)
            {
                throw new QuantizeException(ErrorCodes.SampleShapeUnknown, modelPath,
                    $"Model input '{input.Name}' declares no shape, so no input can be made up to time the model. Give sample inputs with --calibration or --validation (QuantizeCalibrationData / QuantizeValidationData).");
            }

            var shape = input.Dims.Select((d, i) => d ?? (i == 0 ? 1 : FreeDimension)).ToArray();
            var count = shape.Aggregate(1L, (a, b) => a * b);
            var size = ElementTypes.SizeOf(input.ElementType);
            var data = new byte[count * size];
            for (long i = 0; i < count; i++)
            {
                Write(data.AsSpan((int)(i * size), size), input.ElementType, random);
            }

            tensors.Add(new TensorData(input.Name, input.ElementType, shape, data));
        }

        return new InputSample(Source, tensors);
    }

    private static void Write(Span<byte> target, TensorElementType type, Random random)
    {
        switch (type)
        {
            case TensorElementType.Float:
                BinaryPrimitives.WriteSingleLittleEndian(target, (float)Normal(random));
                break;
            case TensorElementType.Double:
                BinaryPrimitives.WriteDoubleLittleEndian(target, Normal(random));
                break;
            case TensorElementType.Float16:
                BinaryPrimitives.WriteHalfLittleEndian(target, (Half)Normal(random));
                break;
            default:
                // Integers and bool: little-endian 1.
                target.Clear();
                target[0] = 1;
                break;
        }
    }

    private static double Normal(Random random) =>
        Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble());
}
