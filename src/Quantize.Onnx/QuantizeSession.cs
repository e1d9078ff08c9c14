using Google.Protobuf;
using Quantize.Common;
using Quantize.Onnx.Model.Proto;
using Quantize.Onnx.Preparation;
using Quantize.Onnx.Quantization;
using Quantize.Onnx.Samples;
using Quantize.Onnx.Validation;

namespace Quantize.Onnx;

/// <summary>
/// The loaded, checked and prepared inputs of one quantization, from which the builders make candidates (see
/// <see cref="CandidateBuilder"/>): the source model, the prepared FP32 model with its tensor types, and the
/// calibration and validation samples, all checked up front so a bad file fails before a long calibration.
/// </summary>
internal sealed class QuantizeSession
{
    private QuantizeSession(string modelPath) => ModelPath = modelPath;

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

    /// <summary>The prepared FP32 model (never equalized: candidates equalize a copy).</summary>
    public required ModelProto Prepared { get; init; }

    public required TensorTypes Types { get; init; }

    /// <summary>Per-channel weights are possible (opset ≥ 13 after preparation) and wanted.</summary>
    public required bool PerChannel { get; init; }

    /// <summary>Checks the samples (if any) up front and prepares the loaded <paramref name="source"/>; without calibration samples (dynamic mode) nothing can be calibrated.</summary>
    public static QuantizeSession Open(
        ModelProto source, string modelPath, string? calibrationFolder, QuantizationOptions options, List<Diagnostic> warnings,
        Action<QuantizeProgress>? progress)
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
        return new QuantizeSession(modelPath)
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

        if (!Directory.Exists(folder) && !(File.Exists(folder) && SampleLists.IsList(folder)))
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
}
