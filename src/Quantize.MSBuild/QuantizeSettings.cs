using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using Microsoft.Build.Framework;

namespace Quantize.MSBuild
{
    internal enum SettingKind { Choice, Boolean, PositiveInteger, List }

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
            SettingKind.List => "a ';'-separated list",
            _ => string.Join(", ", Allowed),
        };
    }

    /// <summary>
    /// The settings vocabulary and its rules: item metadata overrides the project property of the same
    /// name; an empty value means "the engine's default". Values are case-insensitive and normalised to
    /// lower case (lists keep their case: they name nodes and op types).
    /// </summary>
    internal static class QuantizeSettings
    {
        public const string Mode = "QuantizeMode";

        public static readonly Setting[] All =
        {
            new Setting(Mode, null, SettingKind.Choice, "auto", "static", "dynamic"),
            new Setting("QuantizeCalibrationMethod", "--calibration-method", SettingKind.Choice, "minmax"),
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
            new Setting("QuantizeShipFloatModel", null, SettingKind.Boolean),
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
                    problems.Add(new Problem(setting.Name, string.Format(
                        CultureInfo.InvariantCulture, Messages.InvalidValueText, raw, setting.Name, source, setting.AllowedText)));
                }
            }

            if (!result.TryGetValue(Mode, out string? mode) || mode.Length == 0)
            {
                result[Mode] = "auto";
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
                case SettingKind.List:
                    normalized = string.Join(";", SplitList(raw));
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
            string model, string output, string? calibrationDir, string? report, IReadOnlyDictionary<string, string> values)
        {
            var args = new List<string> { model, "--output", output };
            if (!string.IsNullOrEmpty(calibrationDir))
            {
                args.Add("--calibration");
                args.Add(calibrationDir!);
            }

            if (!string.IsNullOrEmpty(report))
            {
                args.Add("--report");
                args.Add(report!);
            }

            foreach (Setting setting in All)
            {
                if (setting.WorkerOption is null || !values.TryGetValue(setting.Name, out string? value) || value.Length == 0)
                {
                    continue;
                }

                IEnumerable<string> tokens = setting.Kind == SettingKind.List ? SplitList(value) : new[] { value };
                foreach (string token in tokens)
                {
                    args.Add(setting.WorkerOption);
                    args.Add(token);
                }
            }

            return args;
        }

        /// <summary>System.CommandLine response file: one token per line, quoted when it holds a space.</summary>
        public static string ResponseFile(IEnumerable<string> tokens) =>
            string.Join("\n", tokens.Select(t => t.IndexOfAny(new[] { ' ', '\t' }) >= 0 ? "\"" + t + "\"" : t)) + "\n";
    }
}
