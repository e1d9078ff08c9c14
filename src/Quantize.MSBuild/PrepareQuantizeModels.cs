using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text;
using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;
using Quantize.Common;

namespace Quantize.MSBuild
{
    /// <summary>
    /// Cheap step before the (batched, incremental) quantize target: validates each model's settings,
    /// resolves the mode (auto: static with calibration data, else dynamic), writes its settings file only when the
    /// text changed, and returns the inputs of the quantize target, one bucket per model
    /// (metadata <c>QuantizedPath</c>): the model, its settings file, the worker, every calibration and
    /// validation file.
    /// </summary>
    public sealed class PrepareQuantizeModels : Task
    {
        [Required] public ITaskItem[] Models { get; set; } = Array.Empty<ITaskItem>();

        /// <summary>Project properties: ItemSpec = setting name, metadata Value = its value.</summary>
        public ITaskItem[] Defaults { get; set; } = Array.Empty<ITaskItem>();

        public string? PackageVersion { get; set; }
        public string? WorkerPath { get; set; }

        [Output] public ITaskItem[] ResolvedModels { get; private set; } = Array.Empty<ITaskItem>();
        [Output] public ITaskItem[] Inputs { get; private set; } = Array.Empty<ITaskItem>();

        public override bool Execute()
        {
            var defaults = Defaults.ToDictionary(d => d.ItemSpec, d => d.GetMetadata(MetadataNames.Value), StringComparer.OrdinalIgnoreCase);
            var resolved = new List<ITaskItem>();
            var inputs = new List<ITaskItem>();
            var byOutput = new Dictionary<string, ITaskItem>(StringComparer.OrdinalIgnoreCase);

            foreach (ITaskItem model in Models)
            {
                string output = model.GetMetadata(MetadataNames.QuantizedPath);
                if (byOutput.TryGetValue(output, out ITaskItem? other))
                {
                    Log.LogError(null, Messages.DuplicateOutput, null, null, 0, 0, 0, 0, Messages.DuplicateOutputText,
                        model.GetMetadata(MetadataNames.TargetPath), other.ItemSpec, model.ItemSpec);
                    continue;
                }

                byOutput[output] = model;
                var problems = new List<QuantizeSettings.Problem>();
                Dictionary<string, string> values = QuantizeSettings.Resolve(model, defaults, problems);
                foreach (QuantizeSettings.Problem p in problems)
                {
                    Log.LogError(null, Messages.InvalidValue, null, null, 0, 0, 0, 0, p.Message);
                }

                if (problems.Count > 0)
                {
                    continue;
                }

                ITaskItem? item = Prepare(model, values, inputs);
                if (item != null)
                {
                    resolved.Add(item);
                }
            }

            ResolvedModels = resolved.ToArray();
            Inputs = inputs.ToArray();
            return !Log.HasLoggedErrors;
        }

        private ITaskItem? Prepare(ITaskItem model, Dictionary<string, string> values, List<ITaskItem> inputs)
        {
            string calibrationDir = model.GetMetadata(MetadataNames.CalibrationDir);
            bool calibrationExplicit = !string.IsNullOrWhiteSpace(model.GetMetadata(MetadataNames.CalibrationData));
            string validationDir = model.GetMetadata(MetadataNames.ValidationDir);
            List<string> calibrationFiles = ListFiles(calibrationDir);
            List<string> validationFiles = ListFiles(validationDir);

            // Which mode the worker runs (QuantizeModes: auto is static with calibration data, else dynamic). An
            // explicit calibration folder counts even when missing, so that is the engine's coded error (QNT1101).
            string mode = values[SettingSpecs.Mode];
            bool hasCalibration = calibrationExplicit || Directory.Exists(calibrationDir);
            if (mode == "static" && !hasCalibration)
            {
                Log.LogError(null, Messages.StaticNeedsCalibration, null, model.GetMetadata(MetadataNames.FullPath), 0, 0, 0, 0,
                    Messages.StaticNeedsCalibrationText, model.ItemSpec, calibrationDir);
                return null;
            }

            string effectiveMode = QuantizeModes.Resolve(mode, hasCalibration);

            var text = new StringBuilder();
            text.Append("# Effective quantization settings of ").Append(model.ItemSpec)
                .Append(". Written only when different: an input of the QuantizeModels target.\n");
            text.Append("package=").Append(PackageVersion).Append('\n');
            text.Append("model=").Append(model.GetMetadata(MetadataNames.FullPath)).Append('\n');
            text.Append("effective-mode=").Append(effectiveMode).Append('\n');
            foreach (KeyValuePair<string, string> kv in values.OrderBy(kv => kv.Key, StringComparer.Ordinal))
            {
                text.Append(kv.Key).Append('=').Append(kv.Value).Append('\n');
            }

            // Locked tuning fails without a lock file, so its presence is a setting (a deleted lock file re-runs the model).
            // Otherwise it is not: the worker writes it during the build, which must not make the next build re-run.
            string lockFile = WorkerProtocol.LockFilePath(model.GetMetadata(MetadataNames.FullPath));
            if (values.TryGetValue(SettingSpecs.TuneLocked, out string? locked) && locked == "true")
            {
                text.Append("lock-file=").Append(File.Exists(lockFile) ? "present" : "missing").Append('\n');
            }

            // The file lists catch added or deleted samples, which timestamps alone would miss.
            AppendFiles(text, "calibration", calibrationDir, calibrationFiles);
            AppendFiles(text, "validation", validationDir, validationFiles);

            string settingsPath = model.GetMetadata(MetadataNames.SettingsPath);
            WriteIfDifferent(settingsPath, text.ToString());

            var result = new TaskItem(model);
            foreach (KeyValuePair<string, string> kv in values)
            {
                result.SetMetadata(kv.Key, kv.Value);
            }

            // The worker gets the resolved mode; in dynamic mode existing calibration samples still measure fidelity and latency.
            result.SetMetadata(SettingSpecs.Mode, effectiveMode);
            result.SetMetadata(MetadataNames.CalibrationDir, hasCalibration ? calibrationDir : "");

            // The accuracy gate's data: the convention folder when it exists; a folder named in metadata
            // always (a missing one is then the worker's coded error, not a silently skipped gate).
            bool validationExplicit = !string.IsNullOrWhiteSpace(model.GetMetadata(MetadataNames.ValidationData));
            bool hasValidation = validationExplicit || Directory.Exists(validationDir);
            result.SetMetadata(MetadataNames.ValidationDir, hasValidation ? validationDir : "");

            // Without validation data the worker has nothing to check on: say so rather than pass a gate silently.
            string checks = string.Join(", ", new[] { SettingSpecs.AccuracyChecks, SettingSpecs.AccuracyMetric }.Where(n => values[n].Length > 0));
            if (!hasValidation && checks.Length > 0)
            {
                Log.LogWarning(null, Messages.ChecksWithoutValidation, null, model.GetMetadata(MetadataNames.FullPath), 0, 0, 0, 0,
                    Messages.ChecksWithoutValidationText, model.ItemSpec, checks, validationDir);
            }

            string output = model.GetMetadata(MetadataNames.QuantizedPath);
            void AddInput(string path)
            {
                var input = new TaskItem(path);
                input.SetMetadata(MetadataNames.QuantizedPath, output);
                inputs.Add(input);
            }

            AddInput(model.GetMetadata(MetadataNames.FullPath));
            AddInput(settingsPath);
            if (!string.IsNullOrEmpty(WorkerPath))
            {
                AddInput(WorkerPath!);
            }

            foreach (string file in calibrationFiles.Concat(validationFiles))
            {
                AddInput(file);
            }

            // The tuning lock file (written by the worker before the model, so a fresh one never looks newer
            // than the output): an edited or replaced lock file re-runs the model.
            if (File.Exists(lockFile))
            {
                AddInput(lockFile);
            }

            return result;
        }

        private static List<string> ListFiles(string dir)
        {
            if (!string.IsNullOrEmpty(dir) && File.Exists(dir) && SampleLists.IsList(dir))
            {
                return ListedFiles(dir);
            }

            if (string.IsNullOrEmpty(dir) || !Directory.Exists(dir))
            {
                return new List<string>();
            }

            return Directory.EnumerateFiles(dir, "*", SearchOption.AllDirectories).OrderBy(f => f, StringComparer.Ordinal).ToList();
        }

        /// <summary>
        /// A sample list (<see cref="SampleLists"/>): the list itself, the files it names and the files in the folders it
        /// names, so editing any of them re-runs the model. A missing or unreadable entry is left to the worker's coded error.
        /// </summary>
        private static List<string> ListedFiles(string list)
        {
            var files = new List<string> { list };
            if (RegularFile.SpecialKind(list) != null)
            {
                return files; // a FIFO would block the build node; the worker reports it with its code
            }

            foreach (SampleLists.Entry entry in SampleLists.Entries(list, File.ReadAllLines(list)))
            {
                if (entry.Path is null)
                {
                    continue; // a NUL in the line: the worker's coded error
                }

                if (Directory.Exists(entry.Path))
                {
                    files.AddRange(Directory.EnumerateFiles(entry.Path, "*", SearchOption.AllDirectories).OrderBy(f => f, StringComparer.Ordinal));
                }
                else if (File.Exists(entry.Path))
                {
                    files.Add(entry.Path);
                }
            }

            // Class names beside the list map class folders to indices (validation).
            string classes = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(list))!, SampleLists.ClassNamesFile);
            if (File.Exists(classes))
            {
                files.Add(classes);
            }

            return files.Distinct(StringComparer.Ordinal).ToList();
        }

        private static void AppendFiles(StringBuilder text, string kind, string dir, List<string> files)
        {
            text.Append(kind).Append('=').Append(dir).Append(Directory.Exists(dir) || File.Exists(dir) ? "" : " (missing)").Append('\n');
            foreach (string file in files)
            {
                // Files of a sample list may live anywhere: those outside the folder keep their full path.
                string shown = file.Length > dir.Length && file.StartsWith(dir, StringComparison.Ordinal) ? file.Substring(dir.Length) : file;
                text.Append("  ").Append(shown.Replace('\\', '/'))
                    .Append(' ').Append(new FileInfo(file).Length.ToString(CultureInfo.InvariantCulture)).Append('\n');
            }
        }

        /// <summary>Like WriteLinesToFile WriteOnlyWhenDifferent: an unchanged file keeps its timestamp.</summary>
        internal static void WriteIfDifferent(string path, string content)
        {
            if (File.Exists(path) && File.ReadAllText(path) == content)
            {
                return;
            }

            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            File.WriteAllText(path, content);
        }
    }
}
