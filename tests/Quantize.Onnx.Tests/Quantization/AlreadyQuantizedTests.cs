using Quantize.Onnx.Model;
using Quantize.Onnx.Model.Proto;
using Quantize.Onnx.Tests.TestModels;
using Quantize.Onnx.Validation;
using static Quantize.Onnx.Tests.TestModels.TestModelBuilder;

namespace Quantize.Onnx.Tests.Quantization;

/// <summary>Models that are already quantized are recognised and written unchanged; models dynamic mode cannot help are said so.</summary>
public sealed class AlreadyQuantizedTests : IDisposable
{
    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    [Fact]
    public void A_qdq_model_is_not_quantized_twice_and_is_written_unchanged_apart_from_provenance()
    {
        var net = TestNets.Mlp();
        var (model, calibration) = QuantizeTestKit.Prepare(net, _folder.Path);
        var qdq = _folder.File("mlp.int8.onnx");
        new Quantizer(QuantizeTestKit.Options()).Run(model, calibration, qdq);
        var again = _folder.File("mlp.int8.again.onnx");

        var result = new Quantizer(QuantizeTestKit.Options()).Run(qdq, calibration, again);

        Assert.Equal(OutputKind.Unchanged, result.Output);
        var warning = Assert.Single(result.Warnings, w => w.Code == ErrorCodes.AlreadyQuantized);
        Assert.Equal(qdq, warning.File);
        Assert.Contains("QuantizeLinear x", warning.Message);
        Assert.Contains("DequantizeLinear x", warning.Message);
        var (before, after) = (ModelLoader.Load(qdq), ModelLoader.Load(again));
        Assert.Equal(before.Graph, after.Graph);
        Assert.Contains(after.MetadataProps, p => p.Key == Provenance.SettingsKey && p.Value.Contains("unchanged-already-quantized", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData(true, false)]
    [InlineData(false, true)]
    public void Uint8_model_io_on_an_already_quantized_model_is_an_error_not_float_tensors_shipped_silently(bool inputs, bool outputs)
    {
        var net = TestNets.ConvNet();
        var (model, calibration) = QuantizeTestKit.Prepare(net, _folder.Path);
        var qdq = _folder.File("convnet.int8.onnx");
        new Quantizer(QuantizeTestKit.Options()).Run(model, calibration, qdq);
        var again = _folder.File("again.onnx");

        var error = Assert.Throws<QuantizeException>(() =>
            new Quantizer(QuantizeTestKit.Options() with { UInt8Inputs = inputs, UInt8Outputs = outputs }).Run(qdq, calibration, again));

        Assert.Equal(ErrorCodes.UInt8OnQuantizedModel, error.Code);
        Assert.Equal(qdq, error.File);
        Assert.Contains("Give the FP32 model", error.Message, StringComparison.Ordinal);
        Assert.False(File.Exists(again));
    }

    [Fact]
    public void A_dynamically_quantized_model_is_recognised_by_its_integer_ops()
    {
        var net = TransformerNet.Build();
        var model = _folder.File("transformer.onnx");
        ModelWriter.Save(net.Model, model);
        var dynamic = _folder.File("transformer.dynamic.onnx");
        var options = QuantizeTestKit.Options() with { Mode = QuantizationMode.Dynamic };
        new Quantizer(options).Run(model, null, dynamic);

        var result = new Quantizer(options).Run(dynamic, null, _folder.File("again.onnx"));

        Assert.Equal(OutputKind.Unchanged, result.Output);
        var message = Assert.Single(result.Warnings, w => w.Code == ErrorCodes.AlreadyQuantized).Message;
        Assert.Contains("MatMulInteger x6", message);
        Assert.Contains("DynamicQuantizeLinear x", message);
    }

    [Fact]
    public void A_qlinearconv_model_is_recognised_and_still_validated()
    {
        var model = _folder.File("qlinearconv.onnx");
        ModelWriter.Save(QLinearConvModel(), model);
        var validation = QuantizeTestKit.WriteCalibration(_folder.File("validation"), "x", [1, 2, 4, 4], [901, 902]);
        var options = QuantizeTestKit.Options() with { Validation = new ValidationOptions { Folder = validation, Checks = [AccuracyCheck.Parse("sqnr>=10")] } };

        // Static mode without calibration data: an already-quantized model needs none.
        var result = new Quantizer(options).Run(model, null, _folder.File("out.onnx"));

        Assert.Equal(OutputKind.Unchanged, result.Output);
        Assert.Contains("QLinearConv x1", Assert.Single(result.Warnings, w => w.Code == ErrorCodes.AlreadyQuantized).Message);
        Assert.NotNull(result.Validation);
        Assert.Equal(2, result.Validation!.Samples);
        Assert.True(result.Validation.Passed);
    }

    [Fact]
    public void Dynamic_mode_leaves_a_conv_net_unchanged_with_a_warning()
    {
        var net = TestNets.ConvNet();
        var model = _folder.File("conv.onnx");
        ModelWriter.Save(net.Model, model);
        var outputPath = _folder.File("conv.out.onnx");

        var result = new Quantizer(QuantizeTestKit.Options() with { Mode = QuantizationMode.Dynamic }).Run(model, null, outputPath);

        Assert.Equal(OutputKind.Unchanged, result.Output);
        Assert.Contains("no MatMul or Gemm", Assert.Single(result.Warnings, w => w.Code == ErrorCodes.NothingToQuantizeDynamically).Message);
        Assert.Equal(ModelLoader.Load(model).Graph.Node.Count, ModelLoader.Load(outputPath).Graph.Node.Count);
    }

    private string Transformer()
    {
        var model = _folder.File("transformer.onnx");
        ModelWriter.Save(TransformerNet.Build().Model, model);
        return model;
    }

    [Fact]
    public void Static_mode_without_calibration_is_a_coded_error_pointing_to_dynamic_mode()
    {
        var model = Transformer();

        var noCalibration = Assert.Throws<QuantizeException>(() => new Quantizer(QuantizeTestKit.Options()).Run(model, null, _folder.File("a.onnx")));

        Assert.Equal(ErrorCodes.CalibrationRequired, noCalibration.Code);
        Assert.Contains("--mode dynamic", noCalibration.Message);
        Assert.False(File.Exists(_folder.File("a.onnx")));
    }

    [Fact]
    public void Dynamic_mode_with_int8_activations_is_a_coded_error()
    {
        var model = Transformer();

        var int8 = Assert.Throws<QuantizeException>(() => new Quantizer(QuantizeTestKit.Options() with { Mode = QuantizationMode.Dynamic, ActivationType = Onnx.Quantization.QuantType.Int8 })
            .Run(model, null, _folder.File("b.onnx")));

        Assert.Equal(ErrorCodes.DynamicActivationType, int8.Code);
        Assert.False(File.Exists(_folder.File("b.onnx")));
    }

    [Fact]
    public void Dynamic_mode_without_samples_needs_declared_input_shapes()
    {
        // Without samples dynamic mode times the model on made-up inputs, which needs declared input shapes.
        var shapeless = TransformerNet.Build().Model;
        shapeless.Graph.Input[0].Type.TensorType.Shape = null;
        var shapelessPath = _folder.File("shapeless.onnx");
        ModelWriter.Save(shapeless, shapelessPath);
        var noShape = Assert.Throws<QuantizeException>(() => new Quantizer(QuantizeTestKit.Options() with { Mode = QuantizationMode.Dynamic })
            .Run(shapelessPath, null, _folder.File("c.onnx")));
        Assert.Equal(ErrorCodes.SampleShapeUnknown, noShape.Code);
        Assert.Contains("'embeddings'", noShape.Message);
    }

    /// <summary>QuantizeLinear → QLinearConv 2→2 3×3 (uint8, int8 weights) → DequantizeLinear, as an operator-form export has it.</summary>
    private static ModelProto QLinearConvModel()
    {
        var b = new TestModelBuilder(opset: 13, name: "qlinearconv");
        var x = b.Input("x", 1, 2, 4, 4);
        var model = b.Build();
        var g = model.Graph;
        g.Initializer.Add(TensorValues.FromFloats("x_scale", [], [2f / 255]));
        g.Initializer.Add(TensorValues.FromUInt8("x_zp", [], [128]));
        g.Initializer.Add(TensorValues.FromInt8("w", [2, 2, 3, 3], Enumerable.Range(0, 36).Select(i => (sbyte)((i * 37 % 61) - 30)).ToArray()));
        g.Initializer.Add(TensorValues.FromFloats("w_scale", [], [0.01f]));
        g.Initializer.Add(TensorValues.FromInt8("w_zp", [], [0]));
        g.Initializer.Add(TensorValues.FromFloats("y_scale", [], [0.05f]));
        g.Initializer.Add(TensorValues.FromUInt8("y_zp", [], [128]));
        g.Node.Add(new NodeProto { OpType = "QuantizeLinear", Name = "q", Input = { x, "x_scale", "x_zp" }, Output = { "xq" } });
        g.Node.Add(new NodeProto { OpType = "QLinearConv", Name = "conv", Input = { "xq", "x_scale", "x_zp", "w", "w_scale", "w_zp", "y_scale", "y_zp" }, Output = { "yq" }, Attribute = { Ints("pads", 1, 1, 1, 1) } });
        g.Node.Add(new NodeProto { OpType = "DequantizeLinear", Name = "dq", Input = { "yq", "y_scale", "y_zp" }, Output = { "y" } });
        g.Output.Add(FloatValueInfo("y", [1, 2, 4, 4]));
        return model;
    }
}
