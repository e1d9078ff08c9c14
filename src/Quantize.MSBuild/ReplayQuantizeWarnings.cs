using System;
using System.IO;
using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;

namespace Quantize.MSBuild
{
    /// <summary>
    /// On a build where a model's quantize step was skipped as up to date, re-emits the warnings of its
    /// last real run (and its summary at normal importance), so warnings do not vanish on no-op builds.
    /// </summary>
    public sealed class ReplayQuantizeWarnings : Task
    {
        /// <summary>Persisted log files written by <see cref="QuantizeModel"/>.</summary>
        public ITaskItem[] LogFiles { get; set; } = Array.Empty<ITaskItem>();

        public override bool Execute()
        {
            foreach (ITaskItem file in LogFiles)
            {
                if (!File.Exists(file.ItemSpec))
                {
                    continue;
                }

                foreach (string line in File.ReadAllLines(file.ItemSpec))
                {
                    if (WorkerLine.IsSummary(line))
                    {
                        Log.LogMessage(MessageImportance.Normal, line + " (up to date)");
                    }
                    else if (WorkerLine.TryParseDiagnostic(line) is { IsError: false } warning)
                    {
                        warning.Log(Log);
                    }
                }
            }

            return true;
        }
    }
}
