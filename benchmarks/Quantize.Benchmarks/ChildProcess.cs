using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Quantize.Benchmarks;

/// <summary>
/// Runs a hidden sub-command of this program in a fresh process, so each measurement pays the same start-up and
/// JIT and its peak working set is its own; ONNX Runtime's telemetry is off in the child.
/// </summary>
internal static class ChildProcess
{
    /// <summary>How children write their JSON result and the parent reads it (NaN and infinities allowed: the SQNR of identical outputs is infinite).</summary>
    public static readonly JsonSerializerOptions Json = new() { WriteIndented = true, NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals };

    /// <summary>Runs this program with <paramref name="arguments"/> and returns its standard output.</summary>
    /// <param name="what">Names the run in the error when the child exits non-zero (the error carries both output streams).</param>
    public static string Run(IEnumerable<string> arguments, string what, IReadOnlyDictionary<string, string>? environment = null)
    {
        var host = Environment.ProcessPath ?? "dotnet";
        var start = new ProcessStartInfo(host) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        if (string.Equals(Path.GetFileNameWithoutExtension(host), "dotnet", StringComparison.OrdinalIgnoreCase))
        {
            start.ArgumentList.Add(typeof(ChildProcess).Assembly.Location);
        }

        foreach (var a in arguments)
        {
            start.ArgumentList.Add(a);
        }

        start.Environment["ORT_DISABLE_TELEMETRY"] = "1";
        foreach (var (name, value) in environment ?? new Dictionary<string, string>())
        {
            start.Environment[name] = value;
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException("cannot start child process");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        process.WaitForExit();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{what} failed with exit code {process.ExitCode}:\n{stdout.Result}\n{stderr.Result}");
        }

        return stdout.Result;
    }

    /// <summary>Runs this program with <paramref name="arguments"/> plus <c>--json <paramref name="json"/></c> and reads the result it writes there.</summary>
    public static T RunForJson<T>(IEnumerable<string> arguments, string json, string what)
    {
        File.Delete(json);
        Run(arguments.Concat(["--json", json]), what);
        return File.Exists(json)
            ? JsonSerializer.Deserialize<T>(File.ReadAllText(json), Json) ?? throw new InvalidOperationException($"empty result in {json}")
            : throw new InvalidOperationException($"{what} wrote no result to {json}");
    }
}
