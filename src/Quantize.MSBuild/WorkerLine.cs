using System.Text.RegularExpressions;
using Microsoft.Build.Utilities;
using Quantize.Common;

namespace Quantize.MSBuild
{
    /// <summary>
    /// One line the worker printed. Diagnostics use MSBuild's canonical form (<see cref="WorkerProtocol.Diagnostic"/>,
    /// <c>file: warning QNT2002: text</c>); the summary line starts with <see cref="WorkerProtocol.SummaryPrefix"/>.
    /// The same parsing replays persisted lines on no-op builds, so they look exactly like the first time.
    /// </summary>
    internal sealed class WorkerLine
    {
        private static readonly Regex Canonical = new Regex(
            @"^\s*(?:(?<file>.+?)\s*:\s+)?(?<category>error|warning)\s+(?<code>[A-Za-z]+\d+)\s*:\s*(?<text>.*)$",
            RegexOptions.CultureInvariant);

        private WorkerLine(string? file, bool isError, string code, string text)
        {
            File = file;
            IsError = isError;
            Code = code;
            Text = text;
        }

        public string? File { get; }
        public bool IsError { get; }
        public string Code { get; }
        public string Text { get; }

        public static bool IsSummary(string line) => line.StartsWith(WorkerProtocol.SummaryPrefix, System.StringComparison.Ordinal);

        public static WorkerLine? TryParseDiagnostic(string line)
        {
            Match m = Canonical.Match(line);
            if (!m.Success)
            {
                return null;
            }

            string? file = m.Groups["file"].Success ? m.Groups["file"].Value : null;
            return new WorkerLine(file, m.Groups["category"].Value == "error", m.Groups["code"].Value, m.Groups["text"].Value);
        }

        public WorkerLine WithFile(string file) => new WorkerLine(file, IsError, Code, Text);

        public void Log(TaskLoggingHelper log)
        {
            if (IsError)
            {
                log.LogError(null, Code, null, File, 0, 0, 0, 0, Text);
            }
            else
            {
                log.LogWarning(null, Code, null, File, 0, 0, 0, 0, Text);
            }
        }
    }
}
