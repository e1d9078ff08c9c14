using System.Diagnostics;
using Microsoft.ML.OnnxRuntime;
using Quantize.Onnx;
using Quantize.Onnx.Model;
using Quantize.Onnx.Model.Proto;
using Quantize.Onnx.Validation;

namespace Quantize.Fuzz;

/// <summary>How one case ended. Only the first three are acceptable.</summary>
public enum CaseOutcome
{
    /// <summary>The loader refused the model with a coded error.</summary>
    RejectedByLoader,

    /// <summary>The model loaded; the quantizer refused it with a coded error.</summary>
    RejectedByQuantizer,

    /// <summary>The quantizer wrote a model that ONNX Runtime loads.</summary>
    Quantized,

    /// <summary>An exception that is not a <see cref="QuantizeException"/>, an internal error (QNT1901), or an output ORT cannot load.</summary>
    Bug,

    /// <summary>The case ran longer than its time bound.</summary>
    Hang,

    /// <summary>The process running the case died (native crash); only seen in isolated campaigns.</summary>
    Crash,
}

/// <summary>The result of one case: what was mutated, how it ended, and the error code or exception.</summary>
public sealed record CaseResult(int Index, string Seed, string Mutation, CaseOutcome Outcome, string Detail, TimeSpan Elapsed)
{
    public bool Acceptable => Outcome is CaseOutcome.RejectedByLoader or CaseOutcome.RejectedByQuantizer or CaseOutcome.Quantized;

    /// <summary>One line, tab-separated, as the isolated campaign's child prints it and the parent parses it.</summary>
    public string ToLine() => string.Join('\t', Index, Seed, Outcome, (long)Elapsed.TotalMilliseconds, Clean(Detail), Clean(Mutation));

    public static CaseResult? TryParse(string line)
    {
        var parts = line.Split('\t');
        if (parts.Length != 6 || !int.TryParse(parts[0], out int index) || !Enum.TryParse<CaseOutcome>(parts[2], out var outcome) || !long.TryParse(parts[3], out long ms))
        {
            return null;
        }

        return new CaseResult(index, parts[1], parts[5], outcome, parts[4], TimeSpan.FromMilliseconds(ms));
    }

    private static string Clean(string text) => text.ReplaceLineEndings(" ").Replace('\t', ' ');
}

/// <summary>
/// Runs one case in this process: writes the mutated model (beside the files its external-data
/// mutations may name), loads it with <see cref="ModelLoader.Load"/>, and if that succeeds quantizes
/// it and loads the output in ONNX Runtime.
/// </summary>
public sealed class FuzzCase
{
    private static readonly QuantizationOptions Options = new()
    {
        MaxCalibrationSamples = 2,
        LatencyRuns = 1,
        FidelitySamples = 1,
        KeepFloatIfSlower = false,
    };

    /// <summary>
    /// Cases rotate through the engine's paths: static; dynamic; weight-only 4-bit (blocks of 16, so small
    /// seeds have eligible weights); static with every tensor of 256 bytes or more kept on disk (the path of
    /// models over 2 GB: external data out, sessions from a work folder); static with every second compute node (If/Loop/Scan
    /// bodies included) kept float (mixed graphs as the tuner builds them, and equalization before a float conv); static
    /// with percentile calibration and the calibration samples as validation data (the passes that export whole tensors,
    /// of bodies too: histograms, the per-layer analysis, calibration coverage), FP32 shipped when the gate fails.
    /// </summary>
    internal static QuantizationOptions OptionsFor(int index, ModelProto model, string calibration) => (index % 6) switch
    {
        5 => Options with
        {
            CalibrationMethod = CalibrationMethod.Percentile,
            Validation = new ValidationOptions { Folder = calibration, LayerSamples = 2, OnFailure = AccuracyFailureAction.ShipFp32 },
        },
        0 => Options,
        1 => Options with { Mode = QuantizationMode.Dynamic },
        2 => Options with { Mode = QuantizationMode.Weight4, BlockSize = 16 },
        3 => Options with { DeferTensorMinBytes = 256 },
        _ => Options with { ExcludedNodes = ControlFlowBodies.AllNodes(model.Graph).Where(n => n.OpType is "Conv" or "MatMul" or "Gemm").Where((_, i) => i % 2 == 1).Select(n => n.Name).ToHashSet() },
    };

    private readonly string _folder;
    private readonly Dictionary<string, string> _calibration = new(StringComparer.Ordinal);

    /// <param name="workFolder">Scratch space of this campaign (one case folder, reused).</param>
    public FuzzCase(string workFolder)
    {
        _folder = Path.Combine(workFolder, "case");
        WorkFolder = workFolder;
        File.WriteAllBytes(Path.Combine(workFolder, "outside.bin"), new byte[8192]);
    }

    public string WorkFolder { get; }

    /// <summary>The mutation of case <paramref name="index"/> of a campaign: depends only on the campaign seed, the index and the seeds.</summary>
    public static (FuzzSeed Seed, MutatedModel Model) Generate(IReadOnlyList<FuzzSeed> seeds, int campaignSeed, int index)
    {
        // Mixed, as data cases are: Random's own seeding gave consecutive cases correlated draws (cases 0-2,999 of
        // campaign 12 never picked three of the eight body mutations).
        var random = new Random(DataMutator.Mix(campaignSeed, index));
        var seed = seeds[random.Next(seeds.Count)];
        return (seed, ModelMutator.Mutate(seed.Model, random));
    }

    public CaseResult Run(int index, FuzzSeed seed, MutatedModel mutated)
    {
        var watch = Stopwatch.StartNew();
        var (outcome, detail) = RunCore(seed, mutated, index);
        return new CaseResult(index, seed.Name, mutated.Description, outcome, detail, watch.Elapsed);
    }

    private (CaseOutcome, string) RunCore(FuzzSeed seed, MutatedModel mutated, int index)
    {
        string model = PrepareFolder(mutated.Bytes);
        if (!_calibration.TryGetValue(seed.Name, out string? calibration))
        {
            calibration = seed.WriteCalibration(Path.Combine(WorkFolder, "calibration", seed.Name));
            _calibration[seed.Name] = calibration;
        }

        QuantizationOptions options;
        try
        {
            options = OptionsFor(index, ModelLoader.Load(model), calibration);
        }
        catch (QuantizeException e)
        {
            return Coded(CaseOutcome.RejectedByLoader, e);
        }
        catch (Exception e)
        {
            return (CaseOutcome.Bug, "loader: " + e);
        }

        string output = Path.Combine(_folder, "out", "model.int8.onnx");
        try
        {
            new Quantizer(options).Run(model, calibration, output);
        }
        catch (QuantizeException e) when (e.Code == ErrorCodes.ModelRunFailed && RunsInOrt(model, seed))
        {
            return (CaseOutcome.Bug, "QNT1301 on a model ONNX Runtime runs: " + e);
        }
        catch (QuantizeException e)
        {
            return Coded(CaseOutcome.RejectedByQuantizer, e);
        }
        catch (Exception e)
        {
            return (CaseOutcome.Bug, "quantizer: " + e);
        }

        try
        {
            using var session = new InferenceSession(output);
            return (CaseOutcome.Quantized, "");
        }
        catch (OnnxRuntimeException e)
        {
            return (CaseOutcome.Bug, "output does not load in ONNX Runtime: " + e.Message);
        }
    }

    /// <summary>
    /// QNT1301 is ORT failing past preparation, which is also how a model the engine itself broke on the way surfaces
    /// (an intermediate or the output): that is a bug when ORT runs the case's own model on its calibration samples.
    /// </summary>
    private static bool RunsInOrt(string model, FuzzSeed seed)
    {
        try
        {
            using var session = new InferenceSession(model);
            using var runOptions = new RunOptions();
            foreach (var sample in seed.Samples())
            {
                var inputs = sample.Select(i => OrtValue.CreateTensorValueFromMemory(i.Values, i.Shape)).ToList();
                try
                {
                    using var outputs = session.Run(runOptions, sample.Select(i => i.Name).ToList(), inputs, session.OutputNames);
                }
                finally
                {
                    inputs.ForEach(v => v.Dispose());
                }
            }

            return true;
        }
        catch (Exception)
        {
            return false; // ORT refuses or fails on it too (or it takes other inputs): the coded error stands
        }
    }

    private static (CaseOutcome, string) Coded(CaseOutcome outcome, QuantizeException e) =>
        e.Code == ErrorCodes.InternalError ? (CaseOutcome.Bug, e.ToString()) : (outcome, e.Code + " " + e.Message);

    /// <summary>A fresh case folder: the model, a data file, a sub-folder and (on Unix) a link that leads out of the folder.</summary>
    private string PrepareFolder(byte[] bytes)
    {
        if (Directory.Exists(_folder))
        {
            Directory.Delete(_folder, recursive: true);
        }

        Directory.CreateDirectory(Path.Combine(_folder, "sub"));
        File.WriteAllBytes(Path.Combine(_folder, "weights.bin"), new byte[8192]);
        if (!OperatingSystem.IsWindows())
        {
            File.CreateSymbolicLink(Path.Combine(_folder, "link.bin"), Path.Combine("..", "outside.bin"));
        }

        string model = Path.Combine(_folder, "model.onnx");
        File.WriteAllBytes(model, bytes);
        return model;
    }
}
