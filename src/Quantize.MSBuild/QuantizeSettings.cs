using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Text.RegularExpressions;
using Microsoft.Build.Framework;
using Quantize.Common;

namespace Quantize.MSBuild
{
    /// <summary>
    /// The settings vocabulary and its rules: item metadata overrides the project property of the same
    /// name; an empty value means "the engine's default". Values are case-insensitive and normalised to
    /// lower case (lists of names keep their case: they name nodes and op types).
    /// </summary>
    internal static class QuantizeSettings
    {
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
            foreach (SettingSpec setting in SettingSpecs.All)
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

            if (!result.TryGetValue(SettingSpecs.Mode, out string? mode) || mode.Length == 0)
            {
                result[SettingSpecs.Mode] = "auto";
            }

            // The friendly pair names one check: one half without the other says nothing to check.
            bool hasMetric = result.TryGetValue(SettingSpecs.AccuracyMetric, out string? metric) && metric.Length > 0;
            bool hasDrop = result.TryGetValue(SettingSpecs.MaxAccuracyDrop, out string? drop) && drop.Length > 0;
            if (hasMetric != hasDrop && !problems.Any(p => p.Setting == SettingSpecs.AccuracyMetric || p.Setting == SettingSpecs.MaxAccuracyDrop))
            {
                string missing = hasMetric ? SettingSpecs.MaxAccuracyDrop : SettingSpecs.AccuracyMetric;
                problems.Add(new Problem(missing, string.Format(
                    CultureInfo.InvariantCulture, Messages.IncompletePairText, hasMetric ? SettingSpecs.AccuracyMetric : SettingSpecs.MaxAccuracyDrop,
                    hasMetric ? metric : drop, model.ItemSpec, missing,
                    hasMetric ? "the largest allowed drop, e.g. 0.3" : string.Join(", ", AccuracyCheckSyntax.GroundTruthMetrics))));
            }

            return result;
        }

        public static bool TryNormalize(SettingSpec setting, string raw, out string normalized)
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
            var args = new List<string> { model, WorkerSwitches.Output, output };
            if (!string.IsNullOrEmpty(calibrationDir))
            {
                args.Add(WorkerSwitches.Calibration);
                args.Add(calibrationDir!);
            }

            if (!string.IsNullOrEmpty(validationDir))
            {
                args.Add(WorkerSwitches.Validation);
                args.Add(validationDir!);
            }

            if (!string.IsNullOrEmpty(report))
            {
                args.Add(WorkerSwitches.Report);
                args.Add(report!);
            }

            if (!string.IsNullOrEmpty(htmlReport))
            {
                args.Add(WorkerSwitches.HtmlReport);
                args.Add(htmlReport!);
            }

            foreach (SettingSpec setting in SettingSpecs.All)
            {
                if (setting.WorkerSwitch is null || !values.TryGetValue(setting.Name, out string? value) || value.Length == 0 || (setting.Name == SettingSpecs.Mode && value == "auto"))
                {
                    continue;
                }

                IEnumerable<string> tokens = setting.Kind == SettingKind.List || setting.Kind == SettingKind.Checks || setting.Kind == SettingKind.Choices
                    ? SplitList(value) : new[] { value };
                foreach (string token in tokens)
                {
                    args.Add(setting.WorkerSwitch);
                    args.Add(token);
                }
            }

            if (values.TryGetValue(SettingSpecs.AccuracyMetric, out string? metric) && metric.Length > 0 &&
                values.TryGetValue(SettingSpecs.MaxAccuracyDrop, out string? drop) && drop.Length > 0)
            {
                args.Add(WorkerSwitches.Check);
                args.Add(AccuracyCheckSyntax.DropPrefix + metric + "<=" + drop);
            }

            return args;
        }

        /// <summary>System.CommandLine response file: one token per line, quoted when it holds a space.</summary>
        public static string ResponseFile(IEnumerable<string> tokens) =>
            string.Join("\n", tokens.Select(t => t.IndexOfAny(new[] { ' ', '\t' }) >= 0 ? "\"" + t + "\"" : t)) + "\n";
    }
}
