using System.Diagnostics;
using Google.Protobuf;
using Quantize.Onnx.Calibration;
using Quantize.Onnx.Model;
using Quantize.Onnx.Model.Proto;
using Quantize.Onnx.Preparation;
using Quantize.Onnx.Quantization;
using Quantize.Onnx.Reporting;
using Quantize.Onnx.Samples;
using Quantize.Onnx.Validation;

namespace Quantize.Onnx;

/// <summary>One INT8 model built from the session's FP32 model with one set of options.</summary>
/// <param name="Fp32">The prepared FP32 model this candidate was quantized from (equalized when the options say so).</param>
internal sealed record Candidate(QuantizationOptions Options, ModelProto Fp32, ModelProto Quantized, byte[] Int8Bytes, QuantizationPlan Plan)
{
    /// <summary>Per tensor, where all its consumers saturate (saturation-aware ranges); values beyond are not clipping that matters.</summary>
    public IReadOnlyDictionary<string, (double Low, double High)> Saturation { get; init; } = new Dictionary<string, (double Low, double High)>();

    public IReadOnlySet<string> QuantizedNodeNames { get; } = Plan.QuantizedNodes.Select(n => n.Name).ToHashSet(StringComparer.Ordinal);

    /// <summary>The machine-dependent numbers this candidate was built from (static mode), for the lock file; null otherwise.</summary>
    public BuildNumbers? Numbers { get; init; }
}

/// <summary>Numbers a static candidate takes from runs on this machine: activation ranges, equalization's channel ranges, bias shifts.</summary>
internal sealed record BuildNumbers(
    IReadOnlyDictionary<string, TensorRange> Ranges, IReadOnlyDictionary<string, ChannelRange> Channels, IReadOnlyDictionary<string, int[]> BiasShifts);

/// <summary>
/// The loaded, checked and prepared inputs of one quantization, from which candidates are built: the
/// plain run builds one (static, or dynamic without calibration data), the tuner several. The MinMax pass runs once; histogram methods (percentile,
/// entropy, MSE) collect histograms once per equalization choice (equalization rescales the tensors
/// between the pairs it balances, which changes their distributions but not their per-channel extremes)
/// and derive every method's ranges from them. A candidate that only changes exclusions or per-channel
/// reuses everything.
/// </summary>
internal sealed class QuantizeSession
{
    private const int BiasCorrectionSamples = 16;

    /// <summary>Most bytes of FP32 validation outputs kept in memory so candidates are not compared against a re-run FP32 model.</summary>
    private const long Fp32CacheBudgetBytes = 512L * 1024 * 1024;

    private Calibrated? _minMax;
    private readonly Dictionary<bool, Dictionary<string, Histogram>> _histograms = [];

    // FP32 results are the same for every candidate (equalization is exact up to float rounding), so they are computed once.
    private readonly Dictionary<string, double[]> _fp32OutputMeans = new(StringComparer.Ordinal);
    private List<Dictionary<string, FloatOutput>>? _fp32Validation;
    private bool _fp32ValidationTooBig;
    private readonly Action<QuantizeProgress>? _progress;
    private readonly CancellationToken _cancellation;

    private readonly List<Diagnostic> _warnings;

    private QuantizeSession(string modelPath, Action<QuantizeProgress>? progress, CancellationToken cancellation, List<Diagnostic> warnings)
    {
        ModelPath = modelPath;
        _progress = progress;
        _cancellation = cancellation;
        _warnings = warnings;
    }

    public string ModelPath { get; }

    public required ModelProto Source { get; init; }

    public required byte[] Fp32Bytes { get; init; }

    public required IReadOnlyList<string> InputNames { get; init; }

    /// <summary>The calibration samples (static mode needs them; dynamic mode uses them, when given, only to measure).</summary>
    public SampleSet Data => CalibrationData ?? throw new InvalidOperationException("No calibration data (dynamic mode).");

    /// <summary>The calibration samples; null when none were given (dynamic mode).</summary>
    public SampleSet? CalibrationData { get; init; }

    /// <summary>Real samples to measure fidelity on: calibration, else validation; null when there are none.</summary>
    public SampleSet? Samples => CalibrationData ?? Validation;

    /// <summary>The first real sample, or made-up inputs (<see cref="SyntheticSample"/>) to time a model given without samples.</summary>
    public required InputSample FirstSample { get; init; }

    /// <summary>The accuracy gate's samples; null without a validation folder.</summary>
    public SampleSet? Validation { get; init; }

    public bool ValidationIsCalibration { get; init; }

    /// <summary>How INT8 candidates are run for bias correction and validation: natively, or as the exact class when only exact targets are declared and this machine saturates.</summary>
    public Hardware.Int8Arithmetic Arithmetic { get; set; }

    /// <summary>The prepared FP32 model (never equalized: candidates equalize a copy).</summary>
    public required ModelProto Prepared { get; init; }

    public required TensorTypes Types { get; init; }

    /// <summary>Per-channel weights are possible (opset ≥ 13 after preparation) and wanted.</summary>
    public required bool PerChannel { get; init; }

    /// <summary>Time spent in calibration passes so far.</summary>
    public TimeSpan CalibrationTime { get; private set; }

    /// <summary>Loads the model and the samples (checked up front), and prepares the model.</summary>
    public static QuantizeSession Open(
        string modelPath, string calibrationFolder, QuantizationOptions options, List<Diagnostic> warnings,
        Action<QuantizeProgress>? progress, CancellationToken cancellation) =>
        Open(ModelLoader.Load(modelPath), modelPath, calibrationFolder, options, warnings, progress, cancellation);

    /// <summary>Checks the samples (if any) up front and prepares the loaded <paramref name="source"/>; without calibration samples (dynamic mode) nothing can be calibrated.</summary>
    public static QuantizeSession Open(
        ModelProto source, string modelPath, string? calibrationFolder, QuantizationOptions options, List<Diagnostic> warnings,
        Action<QuantizeProgress>? progress, CancellationToken cancellation)
    {
        var fp32Bytes = source.ToByteArray();
        var inputs = ModelInputs(source);
        if (inputs.Count == 0)
        {
            throw new QuantizeException(ErrorCodes.ModelHasNoInputs, modelPath,
                $"'{modelPath}' has no graph inputs (other than initializers), so there is nothing to calibrate with; check that the model was exported with its inputs.");
        }

        SampleSet? data = null;
        if (calibrationFolder is not null)
        {
            var calibration = data = SampleSet.Open(calibrationFolder, inputs, new SampleSetOptions
            {
                MaxSamples = options.MaxCalibrationSamples,
                ShuffleSeed = options.CalibrationShuffleSeed,
                Images = options.Images,
            });
            calibration.Validate(done => progress?.Invoke(new QuantizeProgress("reading", done, calibration.Count))); // a bad file is reported before a long calibration, not after it
        }

        var validation = OpenValidation(options.Validation, calibrationFolder, inputs, source.Graph.Output.Select(o => o.Name).ToList(), modelPath, warnings, options.Images, out var sameAsCalibration);
        var inputNames = inputs.Select(i => i.Name).ToList();
        var firstSample = (data ?? validation)?.ReadSample(0) ?? SyntheticSample.For(inputs, modelPath);
        ActivationBudget.Check(source, inputNames, firstSample, modelPath); // before ORT runs the model on anything
        var prepared = ModelPreparer.Prepare(source, modelPath, options.PerChannel, fp32Bytes, inputNames, firstSample, warnings, out var perChannel, out var types);
        return new QuantizeSession(modelPath, progress, cancellation, warnings)
        {
            Source = source,
            Fp32Bytes = fp32Bytes,
            InputNames = inputNames,
            CalibrationData = data,
            FirstSample = firstSample,
            Validation = validation,
            ValidationIsCalibration = sameAsCalibration,
            Prepared = prepared,
            Types = types,
            PerChannel = perChannel,
        };
    }

    /// <summary>The graph inputs (preparation keeps them, so they describe the samples).</summary>
    public static List<InputSpec> ModelInputs(ModelProto source)
    {
        var initializerNames = source.Graph.Initializer.Select(t => t.Name).ToHashSet(StringComparer.Ordinal);
        return source.Graph.Input.Where(i => !initializerNames.Contains(i.Name)).Select(InputSpec.FromValueInfo).ToList();
    }

    /// <summary>
    /// Dynamic mode: MatMul/Gemm with constant weights on integer kernels, activations quantized at run
    /// time, no calibration. The plan lists those nodes and has no activation grids. Null when the model
    /// has nothing dynamic quantization runs on integer kernels (warning QNT2502).
    /// </summary>
    public Candidate? BuildDynamic(QuantizationOptions options, List<Diagnostic> warnings)
    {
        var fp32 = Prepared.Clone();
        var graph = new GraphView(fp32.Graph);
        var units = new DynamicMatMulPlanner(graph, Types, options).Plan();
        var lstms = fp32.Graph.Node.Any(n => LstmQuantizer.CanQuantize(n, graph.Initializers));
        if ((units.Count == 0 && !lstms) || (units.Count > 0 && fp32.DefaultOpset() < DynamicQuantizeWriter.MinimumOpset))
        {
            var why = units.Count == 0
                ? "it has no MatMul or Gemm with a constant weight and no LSTM (the only ops dynamic quantization runs on integer kernels; ORT's ConvInteger is slower than float Conv)"
                : $"its opset {fp32.DefaultOpset()} has no DynamicQuantizeLinear (needs {DynamicQuantizeWriter.MinimumOpset}) and could not be raised";
            warnings.Add(new Diagnostic(ErrorCodes.NothingToQuantizeDynamically, ModelPath, NothingToQuantizeMessage(why)));
            return null;
        }

        var plan = new QuantizationPlan();
        plan.QuantizedNodes.UnionWith(units.Select(u => u.Node));
        var quantized = fp32.Clone();
        quantized.Graph = new DynamicQuantizeWriter(graph, units, options, PerChannel && options.PerChannel).Write();
        EmbeddingQuantizer.Rewrite(quantized.Graph, options);
        LstmQuantizer.Rewrite(quantized, options);
        Provenance.Stamp(quantized, Quantizer.ToolVersion, options.ToSettings());
        return new Candidate(options, fp32, quantized, quantized.ToByteArray(), plan);
    }

    /// <summary>
    /// Weight-only 4-bit: MatMul/Gemm with a constant weight of at least one block in K and N become
    /// MatMulNBits; large embedding tables int8 per row. The plan lists those nodes. Null when no weight
    /// qualifies (warning QNT2520).
    /// </summary>
    public Candidate? BuildWeight4(QuantizationOptions options, List<Diagnostic> warnings)
    {
        var fp32 = Prepared.Clone();
        var graph = new GraphView(fp32.Graph);
        var candidates = new DynamicMatMulPlanner(graph, Types, options).Plan();
        var units = MatMulNBitsWriter.Eligible(candidates, options.BlockSize);
        if (units.Count == 0)
        {
            var why = candidates.Count == 0
                ? "it has no MatMul or Gemm with a constant 2-D float weight, the only ops it quantizes. Use static mode (calibration data) for a conv net"
                : $"none of its {candidates.Count} MatMul/Gemm weights has K and N of at least one block ({options.BlockSize}); smaller ones stay float. Use a smaller --block-size (QuantizeBlockSize), or --mode dynamic";
            warnings.Add(new Diagnostic(ErrorCodes.NothingToQuantizeWeight4, ModelPath, $"Weight-only 4-bit mode left the model unchanged: {why}."));
            return null;
        }

        var plan = new QuantizationPlan();
        plan.QuantizedNodes.UnionWith(units.Select(u => u.Node));
        var quantized = fp32.Clone();
        new MatMulNBitsWriter(graph, units, options).Write(quantized);
        EmbeddingQuantizer.Rewrite(quantized.Graph, options);
        LstmQuantizer.Rewrite(quantized, options);
        Provenance.Stamp(quantized, Quantizer.ToolVersion, options.ToSettings());
        return new Candidate(options, fp32, quantized, quantized.ToByteArray(), plan);
    }

    /// <summary>Whole-model FP16: every float weight stored as FLOAT16 behind a Cast; nothing is quantized to integers.</summary>
    public Candidate BuildFp16(QuantizationOptions options)
    {
        var fp32 = Prepared.Clone();
        var converted = fp32.Clone();
        Fp16Weights.Convert(converted);
        Provenance.Stamp(converted, Quantizer.ToolVersion, options.ToSettings());
        return new Candidate(options, fp32, converted, converted.ToByteArray(), new QuantizationPlan());
    }

    private string NothingToQuantizeMessage(string why) =>
        $"Dynamic quantization left the model unchanged: {why}. To quantize it, give calibration samples and use static mode " +
        $"(--calibration; in a build the folder '{Path.GetFileNameWithoutExtension(ModelPath)}.calibration' beside the model, or QuantizeCalibrationData).";

    /// <summary>Quantizes the prepared model with <paramref name="options"/> (calibrating first if this method has not run yet).</summary>
    /// <param name="replay">Numbers recorded by an earlier run (the lock file): no calibration pass and no bias-correction runs, so the bytes do not depend on this machine's float kernels.</param>
    public Candidate Build(QuantizationOptions options, BuildNumbers? replay = null)
    {
        // Replayed: the recorded ranges name every calibrated tensor, so consumers (and their saturation bounds) are found as in the recording run.
        var calibrated = replay is null ? CalibrateMinMax() : new Calibrated(
            replay.Ranges.ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal),
            replay.Channels.ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal));
        var fp32 = Prepared.Clone();
        // Histogram methods calibrate the model equalized for every conv quantized (once per session), so only MinMax
        // ranges, derived per candidate, may follow the candidate's float convs.
        var divisors = options.Equalize
            ? CrossLayerEqualizer.Equalize(fp32.Graph, CrossLayerEqualizer.FindPairs(fp32.Graph), calibrated.Channels,
                options.CalibrationMethod == CalibrationMethod.MinMax ? options.Excludes : null)
            : [];
        var graph = new GraphView(fp32.Graph);
        var consumers = ActivationRanges.Consumers(graph, calibrated.Ranges.Keys.Concat(calibrated.Channels.Keys), options);
        Dictionary<string, TensorRange> ranges;
        if (replay is not null)
        {
            ranges = replay.Ranges.ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal);
        }
        else if (options.CalibrationMethod == CalibrationMethod.MinMax)
        {
            ranges = new Dictionary<string, TensorRange>(calibrated.Ranges, StringComparer.Ordinal);
            foreach (var (tensor, channels) in calibrated.Channels)
            {
                ranges[tensor] = divisors.TryGetValue(tensor, out var d) ? CrossLayerEqualizer.ScaledRange(channels, d) : channels.Overall;
            }

            ranges = ranges.ToDictionary(kv => kv.Key, kv => ActivationRanges.Cut(kv.Value, ResponsesOf(consumers, kv.Key)), StringComparer.Ordinal);
        }
        else
        {
            ranges = CollectHistograms(options.Equalize, calibrated.Channels).ToDictionary(
                kv => kv.Key, kv => ActivationRanges.FromHistogram(kv.Value, ResponsesOf(consumers, kv.Key), options), StringComparer.Ordinal);
        }

        var plan = new QdqPlanner(graph, Types, ranges, options).Plan();
        var quantized = fp32.Clone();
        quantized.Graph = new QdqWriter(graph, plan, options, PerChannel && options.PerChannel).Write();
        EmbeddingQuantizer.Rewrite(quantized.Graph, options);
        LstmQuantizer.Rewrite(quantized, options);
        var shifts = new Dictionary<string, int[]>(StringComparer.Ordinal);
        if (options.BiasCorrection)
        {
            var samples = replay is not null ? [] : Enumerable.Range(0, Math.Min(BiasCorrectionSamples, Data.Count)).Select(Data.ReadSample).ToList();
            BiasCorrector.Correct(quantized, fp32, InputNames, samples, _fp32OutputMeans, Arithmetic, shifts, replay?.BiasShifts);
        }

        if (options.FloatPrecision == FloatPrecision.Fp16)
        {
            Fp16Weights.Convert(quantized);
        }

        Provenance.Stamp(quantized, Quantizer.ToolVersion, options.ToSettings());
        var saturation = consumers.Where(kv => kv.Value.Any(r => r.Saturates))
            .ToDictionary(kv => kv.Key, kv => ConsumerResponses.SaturationBounds(kv.Value), StringComparer.Ordinal);
        return new Candidate(options, fp32, quantized, quantized.ToByteArray(), plan)
        {
            Saturation = saturation,
            Numbers = new BuildNumbers(ranges, calibrated.Channels, shifts),
        };
    }

    private static IReadOnlyList<ConsumerResponse> ResponsesOf(Dictionary<string, IReadOnlyList<ConsumerResponse>> consumers, string tensor) =>
        consumers.TryGetValue(tensor, out var r) ? r : [ConsumerResponse.Identity];

    /// <summary>The accuracy gate's measurements and verdicts for a candidate (no per-layer analysis).</summary>
    public ValidationReport Validate(Candidate candidate, HtmlReportSamples? images = null)
    {
        var gate = candidate.Options.Validation ?? throw new InvalidOperationException("No accuracy gate.");
        var validation = Validation ?? throw new InvalidOperationException("No validation samples.");
        _progress?.Invoke(new QuantizeProgress("validating", 0, validation.Count));
        return AccuracyGate.Evaluate(Fp32Bytes, candidate.Int8Bytes, InputNames, validation, gate.Checks, ValidationIsCalibration, _cancellation, images, gate.BinaryThreshold,
            Fp32ValidationOutputs(validation), Arithmetic);
    }

    /// <summary>The FP32 model's validation outputs, computed on first use and kept when they fit the budget; null otherwise.</summary>
    private IReadOnlyList<Dictionary<string, FloatOutput>>? Fp32ValidationOutputs(SampleSet validation)
    {
        if (_fp32Validation is not null || _fp32ValidationTooBig)
        {
            return _fp32Validation;
        }

        var outputs = new List<Dictionary<string, FloatOutput>>(validation.Count);
        long bytes = 0;
        using var runner = new ModelRunner(Fp32Bytes, InputNames);
        for (var s = 0; s < validation.Count; s++)
        {
            _cancellation.ThrowIfCancellationRequested();
            var result = runner.Run(validation.ReadSample(s));
            bytes += result.Values.Sum(o => (long)o.Values.Length * sizeof(float));
            if (bytes > Fp32CacheBudgetBytes)
            {
                _fp32ValidationTooBig = true;
                return null;
            }

            outputs.Add(result);
        }

        return _fp32Validation = outputs;
    }

    /// <summary>
    /// The MinMax pass (once per session). Cross-layer equalization needs per-channel ranges of the
    /// tensors it may rescale; they come from the same pass, and their per-tensor ranges are derived per candidate.
    /// </summary>
    private Calibrated CalibrateMinMax()
    {
        if (_minMax is not null)
        {
            return _minMax;
        }

        var pairs = CrossLayerEqualizer.FindPairs(Prepared.Graph);
        var channelTensors = pairs.SelectMany(p => p.Tensors).Where(t => Types[t]?.Rank >= 3).ToHashSet(StringComparer.Ordinal);
        var timer = Stopwatch.StartNew();
        var tensors = FloatActivations(Prepared, Types).Where(t => !channelTensors.Contains(t)).ToList();
        // The first pass also gathers each input's range per sample for the sanity warnings (QNT2101/QNT2102).
        var statistics = new InputStatistics();
        var (ranges, channelRanges) = MinMaxCalibrator.Collect(Prepared, InputNames, tensors, channelTensors, Data,
            done => _progress?.Invoke(new QuantizeProgress("calibrating", done, Data.Count)), _cancellation, statistics);
        CalibrationTime += timer.Elapsed;
        _warnings.AddRange(statistics.Warnings($"calibration set '{Data.Folder}'"));

        return _minMax = new Calibrated(ranges, channelRanges);
    }

    /// <summary>
    /// Histograms of every float activation (once per equalization choice), collected on the model as
    /// <see cref="Build"/> will quantize it: equalized with the same channel ranges when <paramref name="equalize"/>.
    /// </summary>
    private Dictionary<string, Histogram> CollectHistograms(bool equalize, Dictionary<string, ChannelRange> channels)
    {
        if (_histograms.TryGetValue(equalize, out var done))
        {
            return done;
        }

        var model = Prepared.Clone();
        if (equalize)
        {
            CrossLayerEqualizer.Equalize(model.Graph, CrossLayerEqualizer.FindPairs(model.Graph), channels);
        }

        var timer = Stopwatch.StartNew();
        var histograms = HistogramCalibrator.Collect(model, InputNames, FloatActivations(model, Types), Data, HistogramCalibrator.DefaultBudgetBytes,
            (count, total) => _progress?.Invoke(new QuantizeProgress("calibrating", count, total)), _cancellation);
        CalibrationTime += timer.Elapsed;
        return _histograms[equalize] = histograms;
    }

    private static List<string> FloatActivations(ModelProto model, TensorTypes types)
    {
        var initializers = model.Graph.Initializer.Select(t => t.Name).ToHashSet(StringComparer.Ordinal);
        return model.Graph.Input.Select(i => i.Name)
            .Concat(model.Graph.Node.SelectMany(n => n.Output))
            .Where(n => n.Length > 0 && !initializers.Contains(n) && types.IsFloat32(n))
            .Distinct(StringComparer.Ordinal)
            .ToList();
    }

    /// <summary>The validation samples of the accuracy gate, checked up front like the calibration samples; null without a validation folder.</summary>
    internal static SampleSet? OpenValidation(
        ValidationOptions? gate, string? calibrationFolder, IReadOnlyList<InputSpec> inputs, IReadOnlyList<string> outputs, string modelPath, List<Diagnostic> warnings,
        Samples.Images.ImageOptions? images, out bool sameAsCalibration)
    {
        sameAsCalibration = false;
        if (gate?.Folder is not { } folder)
        {
            return null;
        }

        // A check naming an output the model does not have fails now, not after calibration.
        if (gate.Checks.FirstOrDefault(c => c.Output is not null && !outputs.Contains(c.Output, StringComparer.Ordinal)) is { } unknown)
        {
            throw new QuantizeException(ErrorCodes.InvalidOption, null,
                $"Accuracy check '{unknown.Spec}' names output '{unknown.Output}', but the model's outputs are: {string.Join(", ", outputs)}.");
        }

        if (!Directory.Exists(folder) && !(File.Exists(folder) && SampleListFile.IsListFile(folder)))
        {
            throw new QuantizeException(ErrorCodes.CalibrationFolderMissing, folder,
                $"Validation folder '{folder}' does not exist. Point it at a folder holding one sub-folder per sample (the calibration layout, optionally with expected/<output>.npy).");
        }

        var data = SampleSet.Open(folder, inputs, new SampleSetOptions { MaxSamples = gate.MaxSamples, Images = images });
        data.Validate();
        sameAsCalibration = calibrationFolder is not null && string.Equals(
            Path.TrimEndingDirectorySeparator(Path.GetFullPath(folder)), Path.TrimEndingDirectorySeparator(Path.GetFullPath(calibrationFolder)),
            OperatingSystem.IsWindows() ? StringComparison.OrdinalIgnoreCase : StringComparison.Ordinal);
        if (sameAsCalibration)
        {
            warnings.Add(new Diagnostic(ErrorCodes.ValidatingOnCalibration, modelPath,
                $"The validation folder is the calibration folder ('{folder}'): validating on calibration samples overstates accuracy. Keep separate samples for validation."));
        }

        return data;
    }

    /// <summary>Ranges of one calibration pass: per tensor, and per channel for the tensors equalization may rescale.</summary>
    private sealed record Calibrated(Dictionary<string, TensorRange> Ranges, Dictionary<string, ChannelRange> Channels);
}
