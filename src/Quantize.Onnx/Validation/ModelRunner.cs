using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Quantize.Onnx.Hardware;
using Quantize.Onnx.Model;
using Quantize.Onnx.Samples;

namespace Quantize.Onnx.Validation;

/// <summary>One float output of a run: values (C order) and shape.</summary>
internal sealed record FloatOutput(float[] Values, long[] Shape);

/// <summary>An ORT session that runs calibration samples and returns the model's float outputs.</summary>
internal sealed class ModelRunner : IDisposable
{
    private readonly InferenceSession _session;
    private readonly IReadOnlyList<string> _inputNames;
    private readonly string[] _floatOutputs;

    /// <param name="arithmetic">For an INT8 model: its fused integer kernels, or the unfused QDQ graph (<see cref="Int8Arithmetic.ExactReference"/>).</param>
    public ModelRunner(byte[] model, IReadOnlyList<string> inputNames, Int8Arithmetic arithmetic = Int8Arithmetic.Native)
    {
        using var options = new SessionOptions { GraphOptimizationLevel = OptimizationFor(arithmetic) };
        _session = OrtSessions.Create(model, options);
        _inputNames = inputNames;
        _floatOutputs = _session.OutputMetadata.Where(o => o.Value.ElementDataType == TensorElementType.Float).Select(o => o.Key).ToArray();
    }

    /// <summary>The model's float outputs, in model order.</summary>
    public IReadOnlyList<string> FloatOutputs => _floatOutputs;

    public Dictionary<string, FloatOutput> Run(InputSample sample)
    {
        if (_floatOutputs.Length == 0)
        {
            return []; // nothing to compare, and ORT refuses a run that requests no output (fuzz: a model whose one output is a Constant)
        }

        LargeGarbageBound.Tick();
        using var feeds = new Feeds(_inputNames, sample);
        using var runOptions = new RunOptions();
        using var results = _session.Run(runOptions, feeds.Values, _floatOutputs);
        var map = new Dictionary<string, FloatOutput>(StringComparer.Ordinal);
        for (var i = 0; i < _floatOutputs.Length; i++)
        {
            map[_floatOutputs[i]] = new FloatOutput(results[i].GetTensorDataAsSpan<float>().ToArray(), results[i].GetTensorTypeAndShape().Shape);
        }

        return map;
    }

    public static Dictionary<string, FloatOutput> RunOnce(byte[] model, IReadOnlyList<string> inputNames, InputSample sample)
    {
        using var runner = new ModelRunner(model, inputNames);
        return runner.Run(sample);
    }

    public void Dispose() => _session.Dispose();

    /// <summary>The exact reference keeps ORT from fusing QDQ groups into integer kernels, so each runs as DQ → float op → Q.</summary>
    public static GraphOptimizationLevel OptimizationFor(Int8Arithmetic arithmetic) =>
        arithmetic == Int8Arithmetic.ExactReference ? GraphOptimizationLevel.ORT_DISABLE_ALL : GraphOptimizationLevel.ORT_ENABLE_ALL;
}

/// <summary>The ORT inputs of one sample, disposed together.</summary>
internal sealed class Feeds : IDisposable
{
    public Feeds(IReadOnlyList<string> names, InputSample sample)
    {
        for (var i = 0; i < names.Count; i++)
        {
            Values[names[i]] = sample.Inputs[i].ToOrtValue();
        }
    }

    public Dictionary<string, OrtValue> Values { get; } = new(StringComparer.Ordinal);

    public void Dispose()
    {
        foreach (var v in Values.Values)
        {
            v.Dispose();
        }
    }
}
