using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;
using Quantize.Common;

namespace Quantize.MSBuild
{
    /// <summary>
    /// Quantizes one model by running the worker out of process (<c>dotnet Quantize.Cli.dll quantize @rsp</c>),
    /// the ILLink / Grpc.Tools pattern: a native crash or hang of ONNX Runtime fails this model, never the
    /// MSBuild node, and no native library stays loaded after the build. The summary and warnings are persisted beside the output so a
    /// no-op build can replay them (<see cref="ReplayQuantizeWarnings"/>). On failure no output is left.
    /// </summary>
    public sealed class QuantizeModel : ToolTask
    {
        private readonly List<string> _persisted = new List<string>();
        private string _responseFile = "";
        private bool _timedOut;

        /// <summary>A model resolved by <see cref="PrepareQuantizeModels"/>.</summary>
        [Required] public ITaskItem Model { get; set; } = null!;
        [Required] public string DotNetHostPath { get; set; } = "";
        [Required] public string WorkerPath { get; set; } = "";
        public string? TimeoutSeconds { get; set; }

        [Output] public ITaskItem? QuantizedModel { get; private set; }

        protected override string ToolName => "dotnet";
        protected override MessageImportance StandardOutputLoggingImportance => MessageImportance.Normal;
        protected override MessageImportance StandardErrorLoggingImportance => MessageImportance.Normal;
        protected override string GenerateFullPathToTool() => DotNetHostPath;
        protected override string GenerateCommandLineCommands() => $"\"{WorkerPath}\" {WorkerProtocol.Command} @\"{_responseFile}\"";

        private string Output => Model.GetMetadata(MetadataNames.QuantizedPath);
        private string LogPath => Model.GetMetadata(MetadataNames.LogPath);
        private string ModelPath => Model.GetMetadata(MetadataNames.FullPath);

        public override bool Execute()
        {
            // The previous output and its replay log stay until this run succeeds or fails: the worker
            // replaces the output atomically, so a killed build leaves the previous complete model (older
            // than the input that changed, so the next build runs again) or none. Reports are per run.
            DeleteReports();
            if (!TrySetTimeout())
            {
                return false;
            }

            bool ok = RunWorker();
            if (ok && !File.Exists(Output))
            {
                Log.LogError(null, Messages.OutputMissing, null, ModelPath, 0, 0, 0, 0, Messages.OutputMissingText, Model.ItemSpec, Output);
                ok = false;
            }

            if (!ok || Log.HasLoggedErrors)
            {
                // The report of this run stays: after a failed accuracy check it says what got worse.
                // (Reports of earlier runs were deleted above, so it is never stale.)
                DeleteOutputs(keepReport: true);
                return false;
            }

            // The worker may keep the source's timestamp when it ships an FP32 copy: make the output newer
            // than every input so the next build skips the target.
            File.SetLastWriteTimeUtc(Output, DateTime.UtcNow);
            AtomicFile.WriteAllText(LogPath, string.Concat(_persisted.Select(l => l + Environment.NewLine)));
            var result = new TaskItem(Output);
            Model.CopyMetadataTo(result);
            QuantizedModel = result;
            return true;
        }

        private bool TrySetTimeout()
        {
            string raw = (TimeoutSeconds ?? "").Trim();
            if (raw.Length == 0)
            {
                return true;
            }

            if (!int.TryParse(raw, NumberStyles.None, CultureInfo.InvariantCulture, out int seconds) || seconds > int.MaxValue / 1000)
            {
                Log.LogError(null, Messages.InvalidValue, null, null, 0, 0, 0, 0, Messages.InvalidValueText,
                    raw, "QuantizeTimeoutSeconds", " (project property)", "a whole number of seconds, 0 for no limit");
                return false;
            }

            Timeout = seconds == 0 ? System.Threading.Timeout.Infinite : seconds * 1000;
            return true;
        }

        private bool RunWorker()
        {
            if (!File.Exists(WorkerPath))
            {
                Log.LogError(null, Messages.WorkerNotFound, null, null, 0, 0, 0, 0, Messages.WorkerNotFoundText, WorkerPath);
                return false;
            }

            if (!File.Exists(DotNetHostPath))
            {
                Log.LogError(null, Messages.HostNotFound, null, null, 0, 0, 0, 0, Messages.HostNotFoundText, DotNetHostPath);
                return false;
            }

            var values = SettingSpecs.All.ToDictionary(s => s.Name, s => Model.GetMetadata(s.Name));
            List<string> args = QuantizeSettings.WorkerArguments(
                ModelPath, Output, Model.GetMetadata(MetadataNames.CalibrationDir), Model.GetMetadata(MetadataNames.ReportPath), values,
                Model.GetMetadata(MetadataNames.ValidationDir), Model.GetMetadata(MetadataNames.HtmlReportPath));
            _responseFile = Model.GetMetadata(MetadataNames.ResponseFilePath);
            Directory.CreateDirectory(Path.GetDirectoryName(_responseFile)!);
            // Atomic: a second build of the same project may be starting its worker on this file right now.
            AtomicFile.WriteAllText(_responseFile, QuantizeSettings.ResponseFile(args));

            // ORT writes telemetry files under the user's home unless told not to.
            // The worker ends itself when this process is gone (a killed build must not leave it calibrating, orphaned).
            EnvironmentVariables = (EnvironmentVariables ?? Array.Empty<string>())
                .Concat(new[] { "ORT_DISABLE_TELEMETRY=1", WorkerProtocol.ParentProcessVariable + "=" + Process.GetCurrentProcess().Id.ToString(CultureInfo.InvariantCulture) }).ToArray();
            bool ok = base.Execute();

            // ToolTask kills a tool that overruns Timeout (warning MSB5002) and returns false without an
            // error and without calling HandleTaskExecutionErrors: say what happened and what to do.
            if (!ok && _timedOut)
            {
                Log.LogError(null, Messages.WorkerTimedOut, null, ModelPath, 0, 0, 0, 0, Messages.WorkerTimedOutText,
                    Model.ItemSpec, (Timeout / 1000).ToString(CultureInfo.InvariantCulture));
            }

            return ok;
        }

        protected override void LogEventsFromTextOutput(string singleLine, MessageImportance messageImportance)
        {
            if (WorkerLine.IsSummary(singleLine))
            {
                Log.LogMessage(MessageImportance.High, singleLine);
                _persisted.Add(singleLine);
                return;
            }

            WorkerLine? diagnostic = WorkerLine.TryParseDiagnostic(singleLine);
            if (diagnostic is null)
            {
                base.LogEventsFromTextOutput(singleLine, messageImportance);
                return;
            }

            // A diagnostic without a file (e.g. a failed accuracy check worded per model) still names the model.
            if (diagnostic.File is null)
            {
                diagnostic = diagnostic.WithFile(ModelPath);
                singleLine = WorkerProtocol.Diagnostic(diagnostic.File, diagnostic.IsError, diagnostic.Code, diagnostic.Text);
            }

            diagnostic.Log(Log);
            if (!diagnostic.IsError)
            {
                _persisted.Add(singleLine);
            }
        }

        protected override int ExecuteTool(string pathToTool, string responseFileCommands, string commandLineCommands)
        {
            var watch = Stopwatch.StartNew();
            int exitCode = base.ExecuteTool(pathToTool, responseFileCommands, commandLineCommands);
            _timedOut = exitCode != 0 && Timeout != System.Threading.Timeout.Infinite && watch.ElapsedMilliseconds >= Timeout;
            return exitCode;
        }

        protected override bool HandleTaskExecutionErrors()
        {
            if (!_timedOut && !Log.HasLoggedErrors)
            {
                Log.LogError(null, Messages.WorkerCrashed, null, ModelPath, 0, 0, 0, 0, Messages.WorkerCrashedText,
                    Model.ItemSpec, ExitCode.ToString(CultureInfo.InvariantCulture), DotNetHostPath, WorkerPath, _responseFile);
            }

            // Exit code 1 with errors already reported on stderr: nothing to add.
            return false;
        }

        private void DeleteReports() => Delete(Model.GetMetadata(MetadataNames.ReportPath), Model.GetMetadata(MetadataNames.HtmlReportPath));

        private void DeleteOutputs(bool keepReport = false)
        {
            Delete(Output, Output + WorkerProtocol.DataFileSuffix, LogPath); // the data file of a model with external data
            if (!keepReport)
            {
                DeleteReports();
            }
        }

        private static void Delete(params string[] paths)
        {
            foreach (string path in paths)
            {
                if (!string.IsNullOrEmpty(path) && File.Exists(path))
                {
                    File.Delete(path);
                }
            }
        }
    }
}
