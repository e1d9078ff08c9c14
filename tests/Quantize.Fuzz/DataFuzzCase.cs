using System.Diagnostics;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text.RegularExpressions;
using Microsoft.ML.OnnxRuntime;
using Quantize.Onnx;

namespace Quantize.Fuzz;

/// <summary>
/// Runs one user-data case: writes its folder (model, samples, lists, links, pipes), then quantizes through
/// <see cref="Quantizer.Run"/> in this process or through the CLI as a process
/// (<c>dotnet Quantize.Cli.dll quantize ...</c>). Acceptable: a model ONNX Runtime loads, or a coded refusal
/// (a <see cref="QuantizeException"/> other than QNT1901; for the CLI, exit code 1 with an "error QNTxxxx" line).
/// The source model must be unchanged afterwards.
/// </summary>
public sealed partial class DataFuzzCase
{
    private static readonly QuantizationOptions BaseOptions = new()
    {
        LatencyRuns = 1,
        FidelitySamples = 1,
        KeepFloatIfSlower = false,
    };

    private readonly string _folder;

    /// <param name="workFolder">Scratch space of this campaign (one case folder, reused).</param>
    public DataFuzzCase(string workFolder)
    {
        Directory.CreateDirectory(workFolder);
        _folder = Path.Combine(workFolder, "data-case");
    }

    /// <summary>The CLI this build of the fuzzer goes with: src/Quantize.Cli/bin/&lt;Configuration&gt;/&lt;tfm&gt;/Quantize.Cli.dll (built first: a project reference).</summary>
    public static string CliPath { get; } = typeof(DataFuzzCase).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
        .Single(a => a.Key == "QuantizeCliDll").Value!;

    /// <summary>The dotnet host that runs the CLI: this process's when it is one, else the one the SDK names, else the runtime's own.</summary>
    public static string DotnetHost
    {
        get
        {
            if (Path.GetFileNameWithoutExtension(Environment.ProcessPath) == "dotnet")
            {
                return Environment.ProcessPath!;
            }

            if (Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host && File.Exists(host))
            {
                return host;
            }

            // <root>/shared/Microsoft.NETCore.App/<version>/ -> <root>/dotnet
            string root = Path.GetFullPath(Path.Combine(RuntimeEnvironment.GetRuntimeDirectory(), "..", "..", ".."));
            string candidate = Path.Combine(root, OperatingSystem.IsWindows() ? "dotnet.exe" : "dotnet");
            return File.Exists(candidate) ? candidate : "dotnet";
        }
    }

    /// <summary>Runs <paramref name="c"/>; <paramref name="viaCli"/> overrides the case's own runner choice.</summary>
    public CaseResult Run(DataCase c, TimeSpan bound, bool? viaCli = null)
    {
        var watch = Stopwatch.StartNew();
        bool cli = viaCli ?? c.ViaCli;
        string label = (c with { ViaCli = cli }).Label;
        (CaseOutcome Outcome, string Detail) result;
        try
        {
            Prepare(c);
            string model = Path.Combine(_folder, c.Model);
            byte[] before = SHA256.HashData(File.ReadAllBytes(model));
            result = cli ? RunCli(c, bound) : RunLibrary(c);
            if (result.Outcome != CaseOutcome.Hang && !SHA256.HashData(File.ReadAllBytes(model)).AsSpan().SequenceEqual(before))
            {
                result = (CaseOutcome.Bug, "the source model was modified; " + result.Outcome + " " + result.Detail);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            result = (CaseOutcome.Bug, "fuzzer: could not prepare or check the case folder: " + e.Message);
        }

        return new CaseResult(c.Index, c.Seed, label, result.Outcome, result.Detail, watch.Elapsed);
    }

    private (CaseOutcome, string) RunLibrary(DataCase c)
    {
        string output = Path.Combine(_folder, c.Output);
        try
        {
            var options = c.Apply(BaseOptions);
            if (c.Validation is not null)
            {
                options = options with { Validation = (options.Validation ?? new()) with { Folder = Path.Combine(_folder, c.Validation) } };
            }

            new Quantizer(options).Run(Path.Combine(_folder, c.Model), c.Calibration is null ? null : Path.Combine(_folder, c.Calibration), output);
        }
        catch (QuantizeException e)
        {
            return e.Code == ErrorCodes.InternalError ? (CaseOutcome.Bug, e.ToString()) : (CaseOutcome.RejectedByQuantizer, e.Code + " " + e.Message);
        }
        catch (Exception e)
        {
            return (CaseOutcome.Bug, "quantizer: " + e);
        }

        return Loads(output);
    }

    private (CaseOutcome, string) RunCli(DataCase c, TimeSpan bound)
    {
        var start = new ProcessStartInfo(DotnetHost)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = _folder,
        };
        start.ArgumentList.Add(CliPath);
        start.ArgumentList.Add("quantize");
        start.ArgumentList.Add(c.Model);
        start.ArgumentList.Add("-o");
        start.ArgumentList.Add(c.Output);
        if (c.Calibration is not null)
        {
            start.ArgumentList.Add("-c");
            start.ArgumentList.Add(c.Calibration);
        }

        if (c.Validation is not null)
        {
            start.ArgumentList.Add("--validation");
            start.ArgumentList.Add(c.Validation);
        }

        if (c.Report is not null)
        {
            start.ArgumentList.Add("--report");
            start.ArgumentList.Add(c.Report);
        }

        // One timed run keeps a case short, unless the case sets --latency-runs itself (the option takes one value).
        string[] fast = c.CliArgs.Contains("--latency-runs") ? [] : ["--latency-runs", "1"];
        foreach (string arg in (string[])[.. fast, "--keep-float-if-slower", "false", .. c.CliArgs])
        {
            start.ArgumentList.Add(arg);
        }

        start.Environment["ORT_DISABLE_TELEMETRY"] = "1";
        start.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(bound))
        {
            process.Kill(entireProcessTree: true);
            process.WaitForExit();
            return (CaseOutcome.Hang, $"CLI still running after {bound.TotalSeconds:F0} s; killed");
        }

        process.WaitForExit();
        string errors = stderr.Result;
        _ = stdout.Result;
        switch (process.ExitCode)
        {
            case 0:
                return Loads(Path.Combine(_folder, c.Output));
            case 1 when CodedError().Match(errors) is { Success: true } match && match.Groups[1].Value != ErrorCodes.InternalError:
                return (CaseOutcome.RejectedByQuantizer, match.Groups[1].Value + " " + Shorten(errors.Split('\n').First(l => l.Contains(match.Value, StringComparison.Ordinal))));
            default:
                return (CaseOutcome.Bug, $"CLI exit code {process.ExitCode}: {Shorten(errors)}");
        }
    }

    private static (CaseOutcome, string) Loads(string output)
    {
        if (!File.Exists(output))
        {
            return (CaseOutcome.Bug, "success reported but no output at " + output);
        }

        try
        {
            using var session = new InferenceSession(output);
            return (CaseOutcome.Quantized, "");
        }
        catch (OnnxRuntimeException e)
        {
            return (CaseOutcome.Bug, "output does not load in ONNX Runtime: " + e.Message);
        }
    }

    private static string Shorten(string text) => text.Length > 2000 ? text[..2000] + "..." : text.Trim();

    [GeneratedRegex(@"error (QNT\d{4})")]
    private static partial Regex CodedError();

    private void Prepare(DataCase c)
    {
        if (Directory.Exists(_folder))
        {
            Directory.Delete(_folder, recursive: true);
        }

        Directory.CreateDirectory(_folder);
        foreach (var entry in c.Entries)
        {
            string path = Path.Combine(_folder, entry.Path);
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            switch (entry)
            {
                case FileEntry file:
                    File.WriteAllBytes(path, file.Bytes);
                    break;
                case FolderEntry:
                    Directory.CreateDirectory(path);
                    break;
                case LinkEntry link when link.ToFolder:
                    Directory.CreateSymbolicLink(path, link.Target);
                    break;
                case LinkEntry link:
                    File.CreateSymbolicLink(path, link.Target);
                    break;
                case FifoEntry when OperatingSystem.IsLinux():
                    if (MakeFifo(path, Convert.ToUInt32("644", 8)) != 0)
                    {
                        throw new IOException($"mkfifo {path} failed: errno {Marshal.GetLastPInvokeError()}");
                    }

                    break;
                case FifoEntry:
                    throw new PlatformNotSupportedException("named pipes are made on Linux only");
            }
        }
    }

    [DllImport("libc", EntryPoint = "mkfifo", SetLastError = true)]
    private static extern int MakeFifo([MarshalAs(UnmanagedType.LPUTF8Str)] string path, uint mode);
}
