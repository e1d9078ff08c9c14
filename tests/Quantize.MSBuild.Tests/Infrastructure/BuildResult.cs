using Microsoft.Build.Logging.StructuredLogger;

namespace Quantize.MSBuild.Tests.Infrastructure;

/// <summary>What a `dotnet build -bl` did, read from its binary log with MSBuild.StructuredLogger.</summary>
internal sealed class BuildResult
{
    public const string CoreTarget = "_QuantizeModelsCore";

    public BuildResult(string binlog, DotNet.Result process)
    {
        Binlog = binlog;
        Process = process;
        Log = BinaryLog.ReadBuild(binlog);
    }

    public string Binlog { get; }
    public DotNet.Result Process { get; }
    public Build Log { get; }
    public bool Succeeded => Log.Succeeded && Process.ExitCode == 0;

    public IReadOnlyList<Error> Errors => Log.FindChildrenRecursive<Error>();
    public IReadOnlyList<Warning> Warnings => Log.FindChildrenRecursive<Warning>();
    public IEnumerable<string> Messages => Log.FindChildrenRecursive<Message>().Select(m => m.Text);

    /// <summary>Summary lines of models the worker (or the FP32 copy) actually processed in this build.</summary>
    public IReadOnlyList<string> Summaries => Messages
        .Where(m => m.StartsWith("Quantize summary: ", StringComparison.Ordinal) && !m.EndsWith("(up to date)", StringComparison.Ordinal))
        .ToList();

    /// <summary>Batches of the quantize target that ran (one per out-of-date model).</summary>
    public IReadOnlyList<Target> CoreTargetsRun => Log.FindChildrenRecursive<Target>(t => t.Name == CoreTarget && !t.Skipped);

    /// <summary>"Skipping target ... because all output files are up-to-date" messages of the quantize target.</summary>
    public int CoreTargetsUpToDate => Messages.Count(m =>
        m.StartsWith($"Skipping target \"{CoreTarget}\" because all output files are up-to-date", StringComparison.Ordinal));

    public int WorkerRuns => Log.FindChildrenRecursive<Microsoft.Build.Logging.StructuredLogger.Task>(t => t.Name == "QuantizeModel").Count;

    public override string ToString() =>
        $"binlog: {Binlog}\nexit code {Process.ExitCode}, {Process.Elapsed.TotalSeconds:F1} s\n" +
        string.Join("\n", Errors.Select(e => $"error {e.Code}: {e.File}: {e.Text}")) + "\n" +
        string.Join("\n", Warnings.Select(w => $"warning {w.Code}: {w.File}: {w.Text}")) + "\n--- output ---\n" +
        (Process.Output.Length > 6000 ? Process.Output[^6000..] : Process.Output);
}
