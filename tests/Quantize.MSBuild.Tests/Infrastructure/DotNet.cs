using System.Diagnostics;
using System.Text;

namespace Quantize.MSBuild.Tests.Infrastructure;

/// <summary>
/// Runs the dotnet CLI as a child process with a clean environment, like sourcelink's DotNetSdkTestBase:
/// no MSBuild* variables inherited from the test host (they would point the child at the wrong MSBuild),
/// no telemetry or first-run output, no node reuse (no processes outlive a test holding files open).
/// </summary>
internal static class DotNet
{
    public sealed record Result(int ExitCode, string Output, TimeSpan Elapsed);

    public static Result Run(string workingDirectory, IReadOnlyDictionary<string, string>? extraEnvironment, params string[] args)
    {
        var watch = Stopwatch.StartNew();
        using var running = Start(workingDirectory, extraEnvironment, args);
        var process = running.Process;
        if (!process.WaitForExit(TimeSpan.FromMinutes(5)))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"dotnet {string.Join(' ', args)} did not finish in 5 minutes:\n{running.Output}");
        }

        process.WaitForExit();
        return new Result(process.ExitCode, running.Output, watch.Elapsed);
    }

    /// <summary>A dotnet process started by <see cref="Start"/>, and everything it has printed so far.</summary>
    public sealed class Running(Process process, StringBuilder output) : IDisposable
    {
        public Process Process { get; } = process;

        public string Output
        {
            get
            {
                lock (output)
                {
                    return output.ToString();
                }
            }
        }

        public void Dispose() => Process.Dispose();
    }

    /// <summary>Starts the dotnet CLI (same clean environment as <see cref="Run"/>) without waiting for it.</summary>
    public static Running Start(string workingDirectory, IReadOnlyDictionary<string, string>? extraEnvironment, params string[] args)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        foreach (string key in start.Environment.Keys.ToList())
        {
            if (key.StartsWith("MSBUILD", StringComparison.OrdinalIgnoreCase) ||
                key.StartsWith("VSTEST", StringComparison.OrdinalIgnoreCase) ||
                key.StartsWith("TESTINGPLATFORM", StringComparison.OrdinalIgnoreCase) ||
                key.Equals("DOTNET_HOST_PATH", StringComparison.OrdinalIgnoreCase) ||
                key.StartsWith("NUGET_", StringComparison.OrdinalIgnoreCase))
            {
                start.Environment.Remove(key);
            }
        }

        start.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        start.Environment["DOTNET_NOLOGO"] = "1";
        start.Environment["DOTNET_SKIP_FIRST_TIME_EXPERIENCE"] = "1";
        start.Environment["DOTNET_CLI_UI_LANGUAGE"] = "en";
        start.Environment["MSBUILDDISABLENODEREUSE"] = "1";
        start.Environment["DOTNET_CLI_USE_MSBUILD_SERVER"] = "0";
        start.Environment["ORT_DISABLE_TELEMETRY"] = "1";
        foreach (var (key, value) in extraEnvironment ?? new Dictionary<string, string>())
        {
            start.Environment[key] = value;
        }

        var output = new StringBuilder();
        var process = new Process { StartInfo = start };
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) { lock (output) { output.AppendLine(e.Data); } } };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) { lock (output) { output.AppendLine(e.Data); } } };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return new Running(process, output);
    }
}
