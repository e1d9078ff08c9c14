using System.Diagnostics;
using System.Globalization;
using Quantize.Common;

namespace Quantize.Cli;

/// <summary>
/// Ends the worker when the build process that started it is gone. A build killed outright (or an MSBuild node that
/// crashed) cannot stop its tool, and the worker would otherwise calibrate on, orphaned, for minutes. The task names
/// itself in <see cref="WorkerProtocol.ParentProcessVariable"/>; the output is never half-written (it is published by a rename), and the next run
/// sweeps what an ended worker leaves in temporary files.
/// </summary>
internal static class ParentWatch
{

    private static readonly TimeSpan Interval = TimeSpan.FromMilliseconds(250);

    public static void Start(TextWriter stderr)
    {
        if (Environment.GetEnvironmentVariable(WorkerProtocol.ParentProcessVariable) is not { Length: > 0 } value
            || !int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var pid))
        {
            return;
        }

        // Gone before this worker got here (killed while the runtime started): nothing to work for.
        var started = StartTime(pid);
        if (started is null)
        {
            Stop(pid, stderr);
        }

        var thread = new Thread(() =>
        {
            while (true)
            {
                Thread.Sleep(Interval);
                if (StartTime(pid) != started)
                {
                    Stop(pid, stderr);
                }
            }
        })
        {
            IsBackground = true,
            Name = "Quantize parent watch",
        };
        thread.Start();
    }

    private static void Stop(int pid, TextWriter stderr)
    {
        stderr.WriteLine($"The build process {pid} that started this worker has ended; stopping.");
        stderr.Flush();
        // At once: an orderly exit waits for native threads mid-kernel on a loaded machine (seconds, measured), and
        // nothing is lost — outputs are published by rename, temporary files are swept by the next run.
        using var self = Process.GetCurrentProcess();
        self.Kill();
    }

    /// <summary>The process's start time, or null when no such process runs.</summary>
    private static DateTime? StartTime(int pid)
    {
        try
        {
            using var process = Process.GetProcessById(pid);
            return process.HasExited ? null : process.StartTime;
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or System.ComponentModel.Win32Exception or NotSupportedException)
        {
            return null;
        }
    }
}
