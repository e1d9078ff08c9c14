using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Quantize.Onnx.Tests.Hardware;

/// <summary>
/// A fact that runs x86-64 code under qemu-user, to meet the integer kernels of CPU classes this machine is not
/// (AVX2's saturating ones, SSE's exact ones). Where qemu-user is missing the runner reports it skipped, with why.
/// </summary>
public sealed class FactWhenQemuAttribute : FactAttribute
{
    public FactWhenQemuAttribute()
    {
        if (Emulator.Unavailable is { } reason)
        {
            Skip = reason;
        }
    }
}

/// <summary>
/// qemu-user (x86-64) and the dotnet host it runs, found once: /usr/bin/qemu-x86_64 or qemu-x86_64 on PATH, or the path
/// in QUANTIZE_TEST_QEMU ("none" there skips the emulated tests, as on a machine without qemu-user).
/// </summary>
internal static class Emulator
{
    private const string Override = "QUANTIZE_TEST_QEMU";

    private static readonly Lazy<string?> QemuPath = new(FindQemu);

    /// <summary>qemu-x86_64's path, or null.</summary>
    public static string? Qemu => QemuPath.Value;

    /// <summary>Why no emulated run is possible here, or null when it is.</summary>
    public static string? Unavailable =>
        !OperatingSystem.IsLinux() || RuntimeInformation.ProcessArchitecture != Architecture.X64
            ? $"qemu-user runs the x64 dotnet host only on x64 Linux (this is {RuntimeInformation.OSDescription}, {RuntimeInformation.ProcessArchitecture}): the emulated CPU classes were not checked"
            : Qemu is null
                ? (Environment.GetEnvironmentVariable(Override) is { Length: > 0 } set ? $"{Override}={set} names no qemu-x86_64 binary" : "qemu-user is not installed (apt-get install qemu-user)")
                    + ": the INT8 outputs under emulated Haswell (AVX2, saturating) and qemu64 (SSE, exact) CPUs were not compared"
                : null;

    /// <summary>
    /// The dotnet host executable (not a script or shim: qemu-user loads it as an ELF binary): the one the dotnet CLI
    /// names in DOTNET_HOST_PATH, else this test host's own process when it is dotnet, else dotnet on PATH.
    /// </summary>
    public static string DotnetHost()
    {
        var candidates = new[]
        {
            Environment.GetEnvironmentVariable("DOTNET_HOST_PATH"),
            Environment.ProcessPath is { } self && Path.GetFileNameWithoutExtension(self) == "dotnet" ? self : null,
            OnPath("dotnet"),
        };
        var host = candidates.FirstOrDefault(File.Exists) ?? throw new InvalidOperationException("The dotnet host was not found (DOTNET_HOST_PATH, the test process, PATH).");
        return new FileInfo(host).ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? host;
    }

    /// <summary>Most runs of one emulated command: qemu-user still crashes now and then (a signal, not the program's own failure).</summary>
    public const int MaxAttempts = 3;

    /// <summary>
    /// Runs <paramref name="arguments"/> under <c>qemu-x86_64 -cpu <paramref name="cpu"/></c>; returns standard output (QEMU's feature
    /// warnings on standard error are ignored). The emulated .NET runs with W^X off (DOTNET_EnableWriteXorExecute=0: with it, the
    /// runtime's double-mapped code pages crash some paths under qemu-user with SIGSEGV). A run that ends on a signal (exit code
    /// 128 + signal, or negative) is retried, up to <see cref="MaxAttempts"/> runs in all; each failed attempt is passed to <paramref name="log"/>.
    /// </summary>
    public static string Run(string cpu, IEnumerable<string> arguments, TimeSpan timeout, Action<string>? log = null)
    {
        var argumentList = arguments.ToList();
        for (var attempt = 1; ; attempt++)
        {
            var (exitCode, stdout, stderr) = RunOnce(cpu, argumentList, timeout);
            if (exitCode == 0)
            {
                if (attempt > 1)
                {
                    log?.Invoke($"qemu-x86_64 -cpu {cpu}: succeeded on attempt {attempt} of {MaxAttempts}");
                }

                return stdout;
            }

            var errors = string.Join('\n', stderr.Split('\n').Where(l => !l.Contains("TCG doesn't support requested feature", StringComparison.Ordinal)));
            var failure = $"qemu-x86_64 -cpu {cpu} exited with {exitCode} (attempt {attempt} of {MaxAttempts}):\n{stdout}\n{errors}";
            if (!IsSignal(exitCode) || attempt == MaxAttempts)
            {
                throw new InvalidOperationException(failure);
            }

            log?.Invoke($"{failure.TrimEnd()}\n(a signal: retrying)");
        }
    }

    /// <summary>A process killed by a signal: 128 + its number as the shell reports it (139 SIGSEGV, 134 SIGABRT, 132 SIGILL), or negative.</summary>
    public static bool IsSignal(int exitCode) => exitCode is < 0 or > 128 and < 160;

    private static (int ExitCode, string Stdout, string Stderr) RunOnce(string cpu, IReadOnlyList<string> arguments, TimeSpan timeout)
    {
        var start = new ProcessStartInfo(Qemu ?? throw new InvalidOperationException("qemu-x86_64 is not installed"))
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.Environment["DOTNET_EnableWriteXorExecute"] = "0";
        start.ArgumentList.Add("-cpu");
        start.ArgumentList.Add(cpu);
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync();
        var stdout = process.StandardOutput.ReadToEndAsync();
        if (!process.WaitForExit(timeout))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"qemu-x86_64 -cpu {cpu} did not finish within {timeout.TotalSeconds:F0} s");
        }

        process.WaitForExit();
        return (process.ExitCode, stdout.Result, stderr.Result);
    }

    private static string? FindQemu()
    {
        if (Environment.GetEnvironmentVariable(Override) is { Length: > 0 } chosen)
        {
            return File.Exists(chosen) ? Path.GetFullPath(chosen) : null;
        }

        foreach (var name in new[] { "qemu-x86_64", "qemu-x86_64-static" })
        {
            if (File.Exists("/usr/bin/" + name))
            {
                return "/usr/bin/" + name;
            }

            if (OnPath(name) is { } found)
            {
                return found;
            }
        }

        return null;
    }

    private static string? OnPath(string name) => (Environment.GetEnvironmentVariable("PATH") ?? "")
        .Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
        .Select(folder => Path.Combine(folder, name))
        .FirstOrDefault(File.Exists);
}
