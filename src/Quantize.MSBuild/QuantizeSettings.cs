using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Text.RegularExpressions;
using Microsoft.Build.Framework;
using Quantize.Common;

namespace Quantize.MSBuild
{
    internal enum SettingKind { Choice, Boolean, PositiveInteger, PositiveNumber, NonNegativeNumber, Number, List, Checks, Integer, Numbers, PositiveNumbers, ImageSize, Choices }

    /// <summary>One engine option: its MSBuild name (property and item metadata alike) and its worker switch.</summary>
    internal sealed class Setting
    {
        public Setting(string name, string? workerOption, SettingKind kind, params string[] allowed)
        {
            Name = name;
            WorkerOption = workerOption;
            Kind = kind;
            Allowed = kind == SettingKind.Boolean ? new[] { "true", "false" } : allowed;
        }

        public string Name { get; }
        public string? WorkerOption { get; }
        public SettingKind Kind { get; }
        public string[] Allowed { get; }

        public string AllowedText => Kind switch
        {
            SettingKind.PositiveInteger => "a whole number greater than 0",
            SettingKind.PositiveNumber => "a number greater than 0 (e.g. 1.5)",
            SettingKind.NonNegativeNumber => "a number, 0 or more (e.g. 0.3)",
            SettingKind.Number => "a number (e.g. 0.3)",
            SettingKind.List => "a ';'-separated list",
            SettingKind.Choices => "a ';'-separated list of " + string.Join(", ", Allowed),
            SettingKind.Checks => "a ';'-separated list of checks " + AccuracyCheckSyntax.Forms + " (e.g. sqnr>=20;drop:psnr<=0.5); " +
                AccuracyCheckSyntax.Metrics + " (in XML write <= as &lt;=)",
            SettingKind.Integer => "a whole number (e.g. 42)",
            SettingKind.Numbers => "one number, or one per channel separated by ';' (e.g. 0.485;0.456;0.406)",
            SettingKind.PositiveNumbers => "one number greater than 0, or one per channel separated by ';' (e.g. 0.229;0.224;0.225)",
            SettingKind.ImageSize => "<width>x<height> in pixels (e.g. 192x48), or one number for a square",
            _ => string.Join(", ", Allowed),
        };
    }

    /// <summary>
    /// The settings vocabulary and its rules: item metadata overrides the project property of the same
    /// name; an empty value means "the engine's default". Values are case-insensitive and normalised to
    /// lower case (lists of names keep their case: they name nodes and op types).
    /// </summary>
    internal static class QuantizeSettings
    {
        public const string Mode = "QuantizeMode";
        public const string AccuracyChecks = "QuantizeAccuracyChecks";
        public const string AccuracyMetric = "QuantizeAccuracyMetric";
        public const string MaxAccuracyDrop = "QuantizeMaxAccuracyDrop";

        public static readonly Setting[] All =
        {
            // auto is resolved to static or dynamic by PrepareQuantizeModels before the worker sees it.
            new Setting(Mode, "--mode", SettingKind.Choice, "auto", "static", "dynamic", "fp16", "weight4"),
            new Setting("QuantizeCalibrationMethod", "--calibration-method", SettingKind.Choice, "minmax", "percentile", "entropy", "mse"),
            new Setting("QuantizeCalibrationPercentile", "--calibration-percentile", SettingKind.PositiveNumber),
            new Setting("QuantizeSymmetricActivations", "--symmetric-activations", SettingKind.Boolean),
            new Setting("QuantizeSaturationAwareRanges", "--saturation-aware-ranges", SettingKind.Boolean),
            new Setting("QuantizeReduceRange", "--reduce-range", SettingKind.Boolean),
            // The CPUs the model must be right on; empty = the engine's portable x64;arm64 (the targets default it from the RIDs).
            new Setting("QuantizeTargets", "--target", SettingKind.Choices, "x64", "x64-vnni", "arm64"),
            new Setting("QuantizeFloatPrecision", "--float-precision", SettingKind.Choice, "fp32", "fp16"),
            new Setting("QuantizePerChannel", "--per-channel", SettingKind.Boolean),
            new Setting("QuantizeActivationType", "--activation-type", SettingKind.Choice, "uint8", "int8"),
            new Setting("QuantizeWeightType", "--weight-type", SettingKind.Choice, "int8", "uint8"),
            new Setting("QuantizeExcludeNodes", "--exclude-nodes", SettingKind.List),
            new Setting("QuantizeExcludeOpTypes", "--exclude-op-types", SettingKind.List),
            new Setting("QuantizeMaxCalibrationSamples", "--max-calibration-samples", SettingKind.PositiveInteger),
            new Setting("QuantizeFastKernelsOnly", "--fast-kernels-only", SettingKind.Boolean),
            new Setting("QuantizeEqualize", "--equalize", SettingKind.Boolean),
            new Setting("QuantizeBiasCorrection", "--bias-correction", SettingKind.Boolean),
            new Setting("QuantizeKeepFloatIfSlower", "--keep-float-if-slower", SettingKind.Boolean),
            new Setting("QuantizeAppThreads", "--app-threads", SettingKind.Integer),
            new Setting("QuantizeShipFloatModel", null, SettingKind.Boolean),

            // Weight-only 4-bit mode (QuantizeMode=weight4): MatMulNBits block size, accuracy level, zero points.
            new Setting("QuantizeBlockSize", "--block-size", SettingKind.Choice, "16", "32", "64", "128", "256"),
            new Setting("QuantizeAccuracyLevel", "--accuracy-level", SettingKind.Choice, "0", "1", "2", "3", "4"),
            new Setting("QuantizeWeight4Asymmetric", "--weight4-asymmetric", SettingKind.Boolean),

            // The accuracy gate (used when the model is quantized; the worker measures on the validation folder).
            new Setting(AccuracyChecks, "--check", SettingKind.Checks),
            new Setting("QuantizeOnAccuracyFailure", "--on-accuracy-failure", SettingKind.Choice, "error", "ship-fp32"),
            new Setting("QuantizeMinSpeedup", "--min-speedup", SettingKind.PositiveNumber),
            new Setting("QuantizeBinaryThreshold", "--binary-threshold", SettingKind.Number),

            // Accuracy-driven tuning (needs validation data) and its lock file, <model>.quantization.json beside the model.
            new Setting("QuantizeTune", "--tune", SettingKind.Boolean),
            new Setting("QuantizeTuneLocked", "--tune-locked", SettingKind.Boolean),
            new Setting("QuantizeLock", "--lock", SettingKind.Boolean),
            new Setting("QuantizeTuneMaxAttempts", "--tune-max-attempts", SettingKind.PositiveInteger),
            new Setting("QuantizeTuneTimeBudget", "--tune-time-budget", SettingKind.PositiveInteger),

            // Sugar for one ground-truth check: both set => --check drop:<metric><=<drop> (see WorkerArguments).
            new Setting(AccuracyMetric, null, SettingKind.Choice, AccuracyCheckSyntax.GroundTruthMetrics),
            new Setting(MaxAccuracyDrop, null, SettingKind.NonNegativeNumber),

            // Calibration data as users have it: sampling, and how image samples become input tensors.
            new Setting("QuantizeCalibrationShuffleSeed", "--calibration-shuffle-seed", SettingKind.Integer),
            new Setting("QuantizeImageSize", "--image-size", SettingKind.ImageSize),
            new Setting("QuantizeImageResize", "--image-resize", SettingKind.Choice, "stretch", "letterbox", "fit", "crop", "fit-height"),
            new Setting("QuantizeImageInterpolation", "--image-interpolation", SettingKind.Choice, "bilinear", "nearest"),
            new Setting("QuantizeImageLayout", "--image-layout", SettingKind.Choice, "nchw", "nhwc"),
            new Setting("QuantizeImageChannels", "--image-channels", SettingKind.Choice, "rgb", "bgr", "gray"),
            new Setting("QuantizeImageScale", "--image-scale", SettingKind.PositiveNumber),
            new Setting("QuantizeImageMean", "--image-mean", SettingKind.Numbers),
            new Setting("QuantizeImageStd", "--image-std", SettingKind.PositiveNumbers),
            new Setting("QuantizeImagePadValue", "--image-pad-value", SettingKind.Number),
            new Setting("QuantizeImageOrientation", "--image-orientation", SettingKind.Choice, "exif", "ignore"),
        };

        /// <summary>A validation failure: which setting, where it came from, and the message.</summary>
        public sealed class Problem
        {
            public Problem(string setting, string message) { Setting = setting; Message = message; }
            public string Setting { get; }
            public string Message { get; }
        }

        /// <summary>
        /// Effective, normalised values for one model. <paramref name="defaults"/> are the project
        /// properties (name → value).
        /// </summary>
        public static Dictionary<string, string> Resolve(
            ITaskItem model, IReadOnlyDictionary<string, string> defaults, List<Problem> problems)
        {
            var result = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (Setting setting in All)
            {
                string raw = model.GetMetadata(setting.Name);
                string source = $" (metadata on '{model.ItemSpec}')";
                if (string.IsNullOrWhiteSpace(raw))
                {
                    defaults.TryGetValue(setting.Name, out string? fromProperty);
                    raw = fromProperty ?? "";
                    source = $" (project property, used for '{model.ItemSpec}')";
                }

                raw = raw.Trim();
                if (raw.Length == 0)
                {
                    result[setting.Name] = "";
                    continue;
                }

                if (TryNormalize(setting, raw, out string normalized))
                {
                    result[setting.Name] = normalized;
                }
                else
                {
                    // For a list of checks or choices, name the entry that is wrong (TryNormalize returns it).
                    string shown = setting.Kind == SettingKind.Checks || setting.Kind == SettingKind.Choices ? normalized : raw;
                    problems.Add(new Problem(setting.Name, string.Format(
                        CultureInfo.InvariantCulture, Messages.InvalidValueText, shown, setting.Name, source, setting.AllowedText)));
                }
            }

            if (!result.TryGetValue(Mode, out string? mode) || mode.Length == 0)
            {
                result[Mode] = "auto";
            }

            // The friendly pair names one check: one half without the other says nothing to check.
            bool hasMetric = result.TryGetValue(AccuracyMetric, out string? metric) && metric.Length > 0;
            bool hasDrop = result.TryGetValue(MaxAccuracyDrop, out string? drop) && drop.Length > 0;
            if (hasMetric != hasDrop && !problems.Any(p => p.Setting == AccuracyMetric || p.Setting == MaxAccuracyDrop))
            {
                string missing = hasMetric ? MaxAccuracyDrop : AccuracyMetric;
                problems.Add(new Problem(missing, string.Format(
                    CultureInfo.InvariantCulture, Messages.IncompletePairText, hasMetric ? AccuracyMetric : MaxAccuracyDrop,
                    hasMetric ? metric : drop, model.ItemSpec, missing,
                    hasMetric ? "the largest allowed drop, e.g. 0.3" : string.Join(", ", AccuracyCheckSyntax.GroundTruthMetrics))));
            }

            return result;
        }

        public static bool TryNormalize(Setting setting, string raw, out string normalized)
        {
            switch (setting.Kind)
            {
                case SettingKind.PositiveInteger:
                    bool ok = int.TryParse(raw, NumberStyles.None, CultureInfo.InvariantCulture, out int n) && n > 0;
                    normalized = ok ? n.ToString(CultureInfo.InvariantCulture) : raw;
                    return ok;
                case SettingKind.PositiveNumber:
                case SettingKind.NonNegativeNumber:
                case SettingKind.Number:
                    bool isNumber = InvariantNumber.TryParse(raw, out double x) &&
                        (setting.Kind == SettingKind.PositiveNumber ? x > 0 : setting.Kind == SettingKind.Number || x >= 0);
                    normalized = raw;
                    return isNumber;
                case SettingKind.List:
                    normalized = string.Join(";", SplitList(raw));
                    return true;
                case SettingKind.Choices:
                    // Sorted and de-duplicated: the same set is the same settings file text (no needless re-run).
                    var choices = new SortedSet<string>(StringComparer.Ordinal);
                    foreach (string choice in SplitList(raw))
                    {
                        if (!setting.Allowed.Contains(choice.ToLowerInvariant(), StringComparer.Ordinal))
                        {
                            normalized = choice;
                            return false;
                        }

                        choices.Add(choice.ToLowerInvariant());
                    }

                    normalized = string.Join(";", choices);
                    return true;
                case SettingKind.Integer:
                    bool isInteger = int.TryParse(raw, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int i);
                    normalized = isInteger ? i.ToString(CultureInfo.InvariantCulture) : raw;
                    return isInteger;
                case SettingKind.Numbers:
                case SettingKind.PositiveNumbers:
                    var numbers = raw.Split(new[] { ';', ',' }, StringSplitOptions.RemoveEmptyEntries).Select(v => v.Trim()).ToList();
                    normalized = string.Join(";", numbers);
                    return (numbers.Count == 1 || numbers.Count == 3 || numbers.Count == 4) &&
                        numbers.All(v => InvariantNumber.TryParse(v, out double number) && (setting.Kind == SettingKind.Numbers || number > 0));
                case SettingKind.ImageSize:
                    normalized = raw.ToLowerInvariant();
                    return Regex.IsMatch(normalized, @"^[1-9][0-9]{0,5}(x[1-9][0-9]{0,5})?$", RegexOptions.CultureInvariant);
                case SettingKind.Checks:
                    var checks = new List<string>();
                    foreach (string spec in SplitList(raw))
                    {
                        // The engine's own parser: a check the build accepts is one the worker accepts.
                        if (AccuracyCheckSyntax.Parse(spec, out _) is not { } check)
                        {
                            normalized = spec;
                            return false;
                        }

                        checks.Add(check.Normalized);
                    }

                    normalized = string.Join(";", checks);
                    return true;
                default:
                    normalized = raw.ToLowerInvariant();
                    return setting.Allowed.Contains(normalized, StringComparer.Ordinal);
            }
        }

        public static IEnumerable<string> SplitList(string value) =>
            value.Split(new[] { ';' }, StringSplitOptions.RemoveEmptyEntries).Select(s => s.Trim()).Where(s => s.Length > 0);

        /// <summary>The worker's arguments after `quantize`, one token each (written one per line to the response file).</summary>
        public static List<string> WorkerArguments(
            string model, string output, string? calibrationDir, string? report, IReadOnlyDictionary<string, string> values,
            string? validationDir = null, string? htmlReport = null)
        {
            var args = new List<string> { model, "--output", output };
            if (!string.IsNullOrEmpty(calibrationDir))
            {
                args.Add("--calibration");
                args.Add(calibrationDir!);
            }

            if (!string.IsNullOrEmpty(validationDir))
            {
                args.Add("--validation");
                args.Add(validationDir!);
            }

            if (!string.IsNullOrEmpty(report))
            {
                args.Add("--report");
                args.Add(report!);
            }

            if (!string.IsNullOrEmpty(htmlReport))
            {
                args.Add("--html-report");
                args.Add(htmlReport!);
            }

            foreach (Setting setting in All)
            {
                if (setting.WorkerOption is null || !values.TryGetValue(setting.Name, out string? value) || value.Length == 0 || (setting.Name == Mode && value == "auto"))
                {
                    continue;
                }

                IEnumerable<string> tokens = setting.Kind == SettingKind.List || setting.Kind == SettingKind.Checks || setting.Kind == SettingKind.Choices
                    ? SplitList(value) : new[] { value };
                foreach (string token in tokens)
                {
                    args.Add(setting.WorkerOption);
                    args.Add(token);
                }
            }

            if (values.TryGetValue(AccuracyMetric, out string? metric) && metric.Length > 0 &&
                values.TryGetValue(MaxAccuracyDrop, out string? drop) && drop.Length > 0)
            {
                args.Add("--check");
                args.Add(AccuracyCheckSyntax.DropPrefix + metric + "<=" + drop);
            }

            return args;
        }

        /// <summary>System.CommandLine response file: one token per line, quoted when it holds a space.</summary>
        public static string ResponseFile(IEnumerable<string> tokens) =>
            string.Join("\n", tokens.Select(t => t.IndexOfAny(new[] { ' ', '\t' }) >= 0 ? "\"" + t + "\"" : t)) + "\n";
    }
}
