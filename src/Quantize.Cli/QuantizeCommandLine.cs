using System.CommandLine;
using Quantize.Common;
using Quantize.Onnx;
using Quantize.Onnx.Hardware;
using Quantize.Onnx.Quantization;
using Quantize.Onnx.Samples.Images;
using Quantize.Onnx.Tuning;
using Quantize.Onnx.Validation;

namespace Quantize.Cli;

/// <summary>The `onnx-quantize` command line: every engine option, documented in --help.</summary>
internal static class QuantizeCommandLine
{
    public static RootCommand Build()
    {
        var model = new Argument<FileInfo>("model") { Description = "The FP32 .onnx model to quantize. It is only read, never modified." };
        var output = new Option<FileInfo>(WorkerSwitches.Output, "-o") { Description = "Where to write the INT8 model (written atomically).", Required = true };
        var calibration = new Option<FileSystemInfo?>(WorkerSwitches.Calibration, "-c")
        {
            Description = "Folder of calibration samples: one sub-folder per sample with <inputName>.npy, .pb or image per model input " +
                "(or input_0.pb, input_1.pb, ...), one .npz archive per sample, or for single-input models one .npy/.pb/image file per sample " +
                "(images also in class sub-folders). Or a .txt file listing sample paths, one per line, relative to the file. With it the default mode (auto) is static, without it dynamic; in dynamic mode its samples measure fidelity and latency.",
        };
        var mode = new Option<string>(WorkerSwitches.Mode)
        {
            Description = "auto (default, as in a build): static when --calibration is given, else dynamic. " +
                "static: activation ranges calibrated on --calibration samples, QDQ form fused into QLinearConv/QLinearMatMul/... " +
                "dynamic: no calibration data; int8 weights for MatMul/Gemm, activations quantized at run time (ORT's DynamicQuantizeMatMul), " +
                "the rest (Conv, LayerNorm, Softmax, GELU) stays float. Suits transformers; a model with nothing it quantizes is written unchanged (warning QNT2502). " +
                "fp16: no integer quantization and no calibration data; every float weight stored as FLOAT16 (half the size), inputs/outputs stay FP32; ORT folds the Casts on load, so CPU speed stays FP32's. " +
                "weight4: no calibration data; MatMul/Gemm weights of at least one block in K and N stored as 4-bit blocks (ORT's MatMulNBits, see --block-size), activations and every other op stay float. " +
                "For memory-bound LLM-style decoding; on small encoders mainly a size win.",
            DefaultValueFactory = _ => QuantizeModes.Auto,
            HelpName = string.Join("|", QuantizeModes.Names),
            CustomParser = result =>
            {
                var value = result.Tokens.Single().Value.ToLowerInvariant();
                if (!QuantizeModes.Names.Contains(value))
                {
                    result.AddError($"'{result.Tokens.Single().Value}' is not a mode: use one of {string.Join(", ", QuantizeModes.Names)}.");
                }

                return value;
            },
        };
        // Weight-only 4-bit mode (--mode weight4).
        var blockSize = new Option<int>(WorkerSwitches.BlockSize)
        {
            Description = "--mode weight4: weights along K sharing one scale: 16, 32 (default, as ORT's matmul_nbits_quantizer), 64, 128 or 256. " +
                "Smaller blocks are more accurate and a little bigger (one float scale per block); MatMul/Gemm with K or N below the block size stay float.",
            DefaultValueFactory = _ => 32,
        };
        var accuracyLevel = new Option<int>(WorkerSwitches.AccuracyLevel)
        {
            Description = "--mode weight4: MatMulNBits accuracy_level, the least accurate compute ORT may use: 0 (default, unset: float compute on CPU), 1 fp32, 2 fp16, 3 bf16, " +
                "4 int8 (activations quantized per block inside the kernel; usually the fastest on CPU).",
        };
        var weight4Asymmetric = new Option<bool>(WorkerSwitches.Weight4Asymmetric)
        {
            Description = "--mode weight4: a 4-bit zero point per block (grid fitted to the block's range, zero points packed two per byte) instead of the symmetric grid around 8. Default false.",
        };
        var report = new Option<FileInfo?>(WorkerSwitches.Report) { Description = "Also write a JSON report (sizes, latency, fidelity, fusion) to this file." };
        var htmlReport = new Option<FileInfo?>(WorkerSwitches.HtmlReport)
        {
            Description = "Also write a self-contained HTML report (metrics and checks, per-layer error chart, fusion, warnings, FP32 | INT8 | difference images of image outputs) to this file.",
        };
        var perChannel = new Option<bool>(WorkerSwitches.PerChannel) { Description = "One weight scale per output channel (default true). Older models are raised to opset 13 for it.", DefaultValueFactory = _ => true };
        var activationType = new Option<QuantType>(WorkerSwitches.ActivationType) { Description = "Activation type: uint8 (default; fuses best on x86) or int8.", DefaultValueFactory = _ => QuantType.UInt8 };
        var weightType = new Option<QuantType>(WorkerSwitches.WeightType) { Description = "Weight type: int8 (default, symmetric) or uint8.", DefaultValueFactory = _ => QuantType.Int8 };
        var method = new Option<CalibrationMethod>(WorkerSwitches.CalibrationMethod)
        {
            Description = "How activation ranges are chosen: minmax (default; observed min and max, cheapest), percentile (drops the most extreme values, see --calibration-percentile), " +
                "entropy (KL-divergence threshold over a histogram) or mse (least quantization error as the consuming op sees it). Histogram methods run more passes over the samples and bin every value: calibration takes several times as long as minmax.",
            DefaultValueFactory = _ => CalibrationMethod.MinMax,
        };
        var percentile = new Option<double>(WorkerSwitches.CalibrationPercentile)
        {
            Description = "For --calibration-method percentile: the share of values the range keeps, in %; half of the rest is cut on each side (default 99.999; e.g. 99.99 cuts harder into outliers).",
            DefaultValueFactory = _ => 99.999,
        };
        var symmetricActivations = new Option<bool>(WorkerSwitches.SymmetricActivations)
        {
            Description = "Activation grids symmetric around zero (uint8 zero point 128). Default false: grids fitted to each range.",
        };
        var saturationAware = new Option<bool>(WorkerSwitches.SaturationAwareRanges)
        {
            Description = "Cut an activation range where every consuming op saturates anyway (Relu below 0, Clip/HardSigmoid outside their flat ends, hard-swish below -3, also behind a scalar Mul/Add). Exact; default true (--saturation-aware-ranges false to turn off).",
            DefaultValueFactory = _ => true,
        };
        var floatPrecision = new Option<FloatPrecision>(WorkerSwitches.FloatPrecision)
        {
            Description = "Weights of nodes that stay float (excluded, kept float by --tune, or without an integer kernel): fp32 (default) or fp16 " +
                "(half the bytes; ORT folds the Cast on load, so CPU math stays FP32).",
            DefaultValueFactory = _ => FloatPrecision.Fp32,
        };
        var reduceRange = new Option<bool>(WorkerSwitches.ReduceRange)
        {
            Description = "7-bit weights ([-63, 63]). Use it when the model will run on x86-64 CPUs without VNNI (no AVX512-VNNI/AVX-VNNI, e.g. Intel before Cascade Lake / Ice Lake / Alder Lake, AMD before Zen 4): " +
                "their u8 x s8 multiply-add (vpmaddubsw) saturates 16-bit sums and loses accuracy. Costs one bit of weight precision; not needed on VNNI or ARM CPUs. Default false.",
        };
        var targets = new Option<string[]>(WorkerSwitches.Target)
        {
            Description = "A kind of CPU the model will run on (repeat, or separate with ';'): x64 (any x86-64, VNNI or not), x64-vnni (x86-64 with AVX512-VNNI/AVX-VNNI only) or arm64. " +
                "The recipe is right on every target: with x64, int8 weights are saturation-safe (x86 CPUs without VNNI add two u8 x s8 products in a saturating 16-bit sum), " +
                "and the accuracy gate runs each target's integer arithmetic. Default: x64;arm64 (portable).",
            AllowMultipleArgumentsPerToken = true,
        };
        var excludeNodes = new Option<string[]>(WorkerSwitches.ExcludeNodes) { Description = "Node names to keep in float (repeat, or separate with ';').", AllowMultipleArgumentsPerToken = true };
        var excludeOps = new Option<string[]>(WorkerSwitches.ExcludeOpTypes) { Description = "Op types to keep in float, e.g. Add;Concat (repeat, or separate with ';').", AllowMultipleArgumentsPerToken = true };
        var maxSamples = new Option<int?>(WorkerSwitches.MaxCalibrationSamples) { Description = "Use at most this many calibration samples (in folder order)." };
        var fastOnly = new Option<bool>(WorkerSwitches.FastKernelsOnly)
        {
            Description = "Leave float the ops whose int8 kernels ORT runs slower than float on CPU (Mul, ConvTranspose, depthwise convs larger than 3x3). Default true.",
            DefaultValueFactory = _ => true,
        };
        var keepFloat = new Option<bool>(WorkerSwitches.KeepFloatIfSlower)
        {
            Description = "Ship the unchanged FP32 model when INT8 is not worth it: not faster on this machine (warning QNT2002), run by no integer kernel (QNT2006) or not smaller (QNT2007). Default true; false ships INT8 anyway.",
            DefaultValueFactory = _ => true,
        };
        var equalize = new Option<bool>(WorkerSwitches.Equalize)
        {
            Description = "Cross-layer equalization of Conv -> Relu/LeakyRelu -> Conv pairs, steered by calibrated channel ranges (exact in float; evens out activation channels). Default true.",
            DefaultValueFactory = _ => true,
        };
        var biasCorrection = new Option<bool>(WorkerSwitches.BiasCorrection)
        {
            Description = "Fold the mean per-channel offset of INT8 outputs vs FP32 (on calibration samples) into the bias of the layer that writes each output. Default true.",
            DefaultValueFactory = _ => true,
        };
        var appThreads = new Option<int>(WorkerSwitches.AppThreads)
        {
            Description = "Intra-op threads your application's ONNX Runtime session uses: INT8 vs FP32 is decided at this count (and reported at 1 thread too). Default 0: ORT's default, one per core.",
        };
        var latencyRuns = new Option<int>("--latency-runs") { Description = "Timed runs per model for the FP32-vs-INT8 latency comparison (default 15).", DefaultValueFactory = _ => 15 };
        var validation = new Option<FileSystemInfo?>(WorkerSwitches.Validation)
        {
            Description = "Folder (or .txt list) of validation samples for the accuracy gate (calibration layout; ground truth optional in <sample>/expected/<outputName>.npy, .pb or image, " +
                "or, for images in class sub-folders, the folder name: a class index, or a name listed in classes.txt beside the folders). " +
                "Without --check, the gate checks sqnr>=10 and, for [N,K] outputs, top1-agreement>=95.",
        };
        var checks = new Option<string[]>(WorkerSwitches.Check)
        {
            Description = "An accuracy check (repeat for several): " + AccuracyCheckSyntax.Grammar + ". " +
                "sqnr and psnr are in dB (psnr of images in [0,1]); top<k>, top<k>-agreement (FP32's class among INT8's k best), f1, precision and recall in % (see --binary-threshold).",
        };
        var binaryThreshold = new Option<double>(WorkerSwitches.BinaryThreshold)
        {
            Description = "Values at or above it count as positive for precision, recall and f1, in the output and the expected output (default 0.5; e.g. 0.3 for a text-probability map).",
            DefaultValueFactory = _ => 0.5,
        };
        var onFailure = new Option<string>(WorkerSwitches.OnAccuracyFailure)
        {
            Description = "When a check or --min-speedup fails: error (default; QNT1401/QNT1402, nothing written) or ship-fp32 (warning QNT2401/QNT2402, the unchanged FP32 model is written).",
            DefaultValueFactory = _ => "error",
        };
        onFailure.AcceptOnlyFromAmong("error", "ship-fp32");
        var minSpeedup = new Option<double?>(WorkerSwitches.MinSpeedup) { Description = "Fail (QNT1402) when INT8 is less than this many times faster than FP32 on this machine, e.g. 1.2." };

        var tuning = new TuningCommandOptions();

        // Calibration data as users have it: sampling and image preprocessing (ImageOptions).
        var shuffleSeed = new Option<int?>(WorkerSwitches.CalibrationShuffleSeed)
        {
            Description = "Shuffle the calibration samples with this seed (deterministic on every machine) before --max-calibration-samples picks the first ones. Default: name order.",
        };
        var imageOptions = new ImageCommandOptions();

        var quantize = new Command(WorkerProtocol.Command, "INT8 post-training quantization: static when calibration data is given (calibrated, QDQ form ONNX Runtime fuses into integer kernels), else dynamic (no calibration data), as a build does; or FP16 weights (--mode fp16) or weight-only 4-bit (--mode weight4).")
        {
            model, output, calibration, mode, blockSize, accuracyLevel, weight4Asymmetric, report, htmlReport, perChannel, activationType, weightType, method, percentile, symmetricActivations,
            saturationAware, reduceRange, targets, floatPrecision, excludeNodes, excludeOps, maxSamples, fastOnly, equalize, biasCorrection, keepFloat, latencyRuns, appThreads, validation, checks,
            onFailure, minSpeedup, binaryThreshold,
        };
        foreach (var option in tuning.All.Append(shuffleSeed).Concat(imageOptions.All))
        {
            quantize.Options.Add(option);
        }

        quantize.SetAction((parse, cancellation) =>
        {
            var modelPath = parse.GetValue(model)!.FullName;
            ValidationOptions gate;
            ImageOptions images;
            IReadOnlyList<QuantizeTarget> targetList;
            TuningOptions tuningOptions;
            try
            {
                images = imageOptions.Read(parse);

                gate = new ValidationOptions
                {
                    Folder = parse.GetValue(validation)?.FullName,
                    Checks = (parse.GetValue(checks) ?? []).Where(c => c.Trim().Length > 0).Select(AccuracyCheck.Parse).ToList(),
                    OnFailure = parse.GetValue(onFailure) == "ship-fp32" ? AccuracyFailureAction.ShipFp32 : AccuracyFailureAction.Error,
                    MinSpeedup = parse.GetValue(minSpeedup),
                    BinaryThreshold = parse.GetValue(binaryThreshold),
                };
                targetList = ParseTargets(parse.GetValue(targets));
                if (parse.GetValue(latencyRuns) < 1)
                {
                    throw new QuantizeException(ErrorCodes.InvalidOption, null, $"--latency-runs must be at least 1 (timed runs per model for the FP32-vs-INT8 comparison), got {parse.GetValue(latencyRuns)}.");
                }

                if (parse.GetValue(appThreads) < 0)
                {
                    throw new QuantizeException(ErrorCodes.InvalidOption, null, $"--app-threads must be 0 (ORT's default: one per core) or more, got {parse.GetValue(appThreads)}.");
                }

                tuningOptions = tuning.Read(parse, modelPath, hasValidation: gate.Folder is not null);

                if (!double.IsFinite(gate.BinaryThreshold))
                {
                    throw new QuantizeException(ErrorCodes.InvalidOption, null, $"--binary-threshold must be a finite number, got {gate.BinaryThreshold}.");
                }

                if (gate.MinSpeedup is double s && (!double.IsFinite(s) || s <= 0))
                {
                    throw new QuantizeException(ErrorCodes.InvalidOption, null, $"--min-speedup must be a positive number, got {s}.");
                }
            }
            catch (QuantizeException e)
            {
                Console.Error.WriteLine(WorkerProtocol.Diagnostic(modelPath, isError: true, e.Code, e.Message));
                return Task.FromResult(1);
            }

            var options = new QuantizationOptions
            {
                Mode = Enum.Parse<QuantizationMode>(QuantizeModes.Resolve(parse.GetValue(mode)!, parse.GetValue(calibration) is not null), ignoreCase: true),
                BlockSize = parse.GetValue(blockSize),
                AccuracyLevel = parse.GetValue(accuracyLevel),
                Weight4Asymmetric = parse.GetValue(weight4Asymmetric),
                PerChannel = parse.GetValue(perChannel),
                ActivationType = parse.GetValue(activationType),
                WeightType = parse.GetValue(weightType),
                CalibrationMethod = parse.GetValue(method),
                CalibrationPercentile = parse.GetValue(percentile),
                SymmetricActivations = parse.GetValue(symmetricActivations),
                SaturationAwareRanges = parse.GetValue(saturationAware),
                ReduceRange = parse.GetValue(reduceRange),
                Targets = targetList,
                FloatPrecision = parse.GetValue(floatPrecision),
                ExcludedNodes = SplitList(parse.GetValue(excludeNodes)),
                ExcludedOpTypes = SplitList(parse.GetValue(excludeOps)),
                MaxCalibrationSamples = parse.GetValue(maxSamples),
                CalibrationShuffleSeed = parse.GetValue(shuffleSeed),
                Images = images,
                UInt8Inputs = imageOptions.UInt8Inputs(parse),
                UInt8Outputs = imageOptions.UInt8Outputs(parse),
                FastKernelsOnly = parse.GetValue(fastOnly),
                Equalize = parse.GetValue(equalize),
                BiasCorrection = parse.GetValue(biasCorrection),
                KeepFloatIfSlower = parse.GetValue(keepFloat),
                LatencyRuns = parse.GetValue(latencyRuns),
                AppThreads = parse.GetValue(appThreads),
                Validation = gate,
                Tuning = tuningOptions,
            };
            var job = new QuantizeJob(modelPath, parse.GetValue(calibration)?.FullName,
                parse.GetValue(output)!.FullName, parse.GetValue(report)?.FullName, options, parse.GetValue(htmlReport)?.FullName);
            return Task.FromResult(job.Run(Console.Out, Console.Error, cancellation));
        });

        return new RootCommand("onnx-quantize: INT8 quantization of ONNX models for ONNX Runtime.") { quantize };
    }

    /// <summary>The declared targets; none given: portable (x64 and arm64).</summary>
    private static IReadOnlyList<QuantizeTarget> ParseTargets(string[]? values)
    {
        var names = SplitList(values);
        if (names.Count == 0)
        {
            return QuantizeTargets.Portable;
        }

        var parsed = new List<QuantizeTarget>();
        foreach (var name in names)
        {
            if (!QuantizeTargets.TryParse(name, out var target))
            {
                throw new QuantizeException(ErrorCodes.InvalidOption, null, $"--target '{name}' is not a known target; use {QuantizeTargets.Allowed}.");
            }

            parsed.Add(target);
        }

        return parsed.Distinct().Order().ToList();
    }

    private static HashSet<string> SplitList(string[]? values) =>
        (values ?? []).SelectMany(v => v.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)).ToHashSet(StringComparer.Ordinal);
}
