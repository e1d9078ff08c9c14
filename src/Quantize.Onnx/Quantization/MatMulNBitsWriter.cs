using Quantize.Onnx.Model;
using Quantize.Onnx.Model.Proto;

namespace Quantize.Onnx.Quantization;

/// <summary>
/// Weight-only 4-bit quantization (<see cref="QuantizationMode.Weight4"/>): each planned MatMul/Gemm
/// with a constant [K, N] weight becomes one com.microsoft MatMulNBits (bits 4, the options' block size
/// and accuracy level) reading the block-quantized weight (<see cref="Block4Quantizer"/>):
/// <code>
/// MatMulNBits(A, B uint8 [N, blocks, block_size / 2], scales [N * blocks], zero_points?, , bias?)
/// </code>
/// A constant [N] bias (a Gemm's C, or the following Add dynamic planning joins to the unit) becomes the
/// op's bias input, so the unit stays one node. Activations stay float: no calibration, no run-time
/// quantization unless accuracy level 4 asks ORT to quantize them to int8 inside the kernel.
/// </summary>
internal sealed class MatMulNBitsWriter(GraphView graph, IReadOnlyList<DynamicMatMul> units, QuantizationOptions options)
{
    public const string Domain = "com.microsoft";
    public const int Bits = 4;

    private readonly NameAllocator _names = new(graph.AllNames());
    private readonly List<TensorProto> _initializers = [];

    /// <summary>Packed weights by source weight and orientation: a weight read by several units is stored once.</summary>
    private readonly Dictionary<(string Weight, bool Transposed), (string Packed, string Scales, string? ZeroPoints, long K, long N)> _packed = [];

    /// <summary>
    /// The units worth 4-bit blocks: K and N at least one block. Smaller weights (a classifier head with a
    /// few classes, a tiny projection) save almost nothing, and K shorter than a block would be mostly padding.
    /// </summary>
    public static List<DynamicMatMul> Eligible(IEnumerable<DynamicMatMul> units, int blockSize) =>
        units.Where(u => KN(u) is var (k, n) && k >= blockSize && n >= blockSize).ToList();

    /// <summary>Writes the rewritten graph into <paramref name="model"/> and imports the com.microsoft domain.</summary>
    public void Write(ModelProto model)
    {
        model.Graph = WriteGraph();
        if (!model.OpsetImport.Any(o => o.Domain == Domain))
        {
            model.OpsetImport.Add(new OperatorSetIdProto { Domain = Domain, Version = 1 });
        }
    }

    private GraphProto WriteGraph() => UnitRewriter.Rewrite(graph.Graph, units, unit => [Rewrite(unit)], _initializers);

    private NodeProto Rewrite(DynamicMatMul unit)
    {
        var (packed, scales, zeroPoints, k, n) = Pack(unit);
        var node = unit.Node;
        var prefix = node.Name.Length > 0 ? node.Name : node.Output[0];
        var inputs = new List<string> { node.Input[0], packed, scales };
        if (zeroPoints is not null || unit.Bias is not null)
        {
            inputs.Add(zeroPoints ?? "");
        }

        if (unit.Bias is { } bias)
        {
            inputs.Add(""); // g_idx: blocks are consecutive rows, no reordering
            inputs.Add(bias.Name);
        }

        var result = new NodeProto { OpType = "MatMulNBits", Domain = Domain, Name = _names.Next(prefix + "_Q4"), Input = { inputs }, Output = { unit.Output } };
        result.SetInt("K", k);
        result.SetInt("N", n);
        result.SetInt("bits", Bits);
        result.SetInt("block_size", options.BlockSize);
        if (options.AccuracyLevel != 0)
        {
            // Left out at 0 (unset), as ORT's tool does: not every execution provider reads it.
            result.SetInt("accuracy_level", options.AccuracyLevel);
        }

        return result;
    }

    private (string Packed, string Scales, string? ZeroPoints, long K, long N) Pack(DynamicMatMul unit)
    {
        var key = (unit.Weight.Name, unit.TransposeWeight);
        if (_packed.TryGetValue(key, out var done))
        {
            return done;
        }

        var (k, n) = KN(unit);
        var q = Block4Quantizer.Quantize(TensorValues.ReadFloats(unit.Weight), (int)k, (int)n, unit.TransposeWeight, options.BlockSize, options.Weight4Asymmetric);
        // Through TensorValues, so a large model's packed weights go to the run's spill file, not the managed heap.
        var packed = TensorValues.FromUInt8(_names.Next(unit.Weight.Name + "_Q4"), [n, q.BlocksPerColumn, q.BlobSize], q.Packed);
        var scales = TensorValues.FromFloats(_names.Next(unit.Weight.Name + "_scales"), [q.Scales.Length], q.Scales);
        _initializers.Add(packed);
        _initializers.Add(scales);
        string? zeroPoints = null;
        if (q.ZeroPoints is { } zp)
        {
            zeroPoints = _names.Next(unit.Weight.Name + "_zero_points");
            _initializers.Add(TensorValues.FromUInt8(zeroPoints, [zp.Length], zp));
        }

        return _packed[key] = (packed.Name, scales.Name, zeroPoints, k, n);
    }

    /// <summary>K (inner) and N (output) of the unit's weight: [K, N], or [N, K] for a Gemm with transB = 1.</summary>
    private static (long K, long N) KN(DynamicMatMul unit) =>
        unit.TransposeWeight ? (unit.Weight.Dims[1], unit.Weight.Dims[0]) : (unit.Weight.Dims[0], unit.Weight.Dims[1]);
}
