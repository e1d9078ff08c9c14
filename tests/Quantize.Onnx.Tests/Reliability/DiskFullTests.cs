using System.Diagnostics;
using Quantize.Onnx.Tests.TestModels;

namespace Quantize.Onnx.Tests.Reliability;

/// <summary>
/// A full disk while the output is written: a real size-limited file system (a 64 KB tmpfs), not a
/// simulated exception, so the test sees what the OS really does (ENOSPC on write or on flush). Needs
/// Linux and the right to mount (root in a container, as in CI); elsewhere the runner reports it skipped, with
/// why (the atomic writer's other failure paths are covered in ModelWriterTests).
/// </summary>
public sealed class DiskFullTests : IDisposable
{
    private readonly TempFolder _folder = new();
    private readonly string _mount;
    private readonly bool _mounted;

    public DiskFullTests()
    {
        _mount = _folder.Sub("small-disk");
        _mounted = OperatingSystem.IsLinux() && Run("mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", _mount);
    }

    public void Dispose()
    {
        if (_mounted)
        {
            Run("umount", _mount);
        }

        _folder.Dispose();
    }

    [TmpfsFact]
    public void Disk_full_while_writing_the_output_is_QNT1006_and_leaves_the_previous_model_and_no_partial_file()
    {
        Assert.True(_mounted, $"mounting a 64 KB tmpfs on {_mount} failed, though it worked when the tests were discovered");

        var net = TestNets.ConvNet(width: 32); // its INT8 model (~20 KB) does not fit in the space left
        var (model, calibration) = QuantizeTestKit.Prepare(net, _folder.Path);
        string output = Path.Combine(_mount, "model.int8.onnx");
        byte[] previous = new byte[56_000]; // leaves two 4 KB pages free
        new Random(1).NextBytes(previous);
        File.WriteAllBytes(output, previous);

        var e = Assert.Throws<QuantizeException>(() => new Quantizer(QuantizeTestKit.Options()).Run(model, calibration, output));

        Assert.Equal((ErrorCodes.OutputNotWritable, output), (e.Code, e.File));
        Assert.Contains("space", e.Message, StringComparison.OrdinalIgnoreCase);
        Assert.Equal(previous, File.ReadAllBytes(output));
        Assert.Equal(["model.int8.onnx"], Directory.GetFiles(_mount).Select(Path.GetFileName));

        // With room again, the same run writes the model.
        File.Delete(output);
        new Quantizer(QuantizeTestKit.Options()).Run(model, calibration, Path.Combine(_folder.Path, "model.int8.onnx"));
    }

    internal static bool Run(string program, params string[] args)
    {
        try
        {
            var start = new ProcessStartInfo(program) { RedirectStandardError = true, RedirectStandardOutput = true };
            foreach (string arg in args)
            {
                start.ArgumentList.Add(arg);
            }

            using var process = Process.Start(start)!;
            process.WaitForExit();
            return process.ExitCode == 0;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return false; // no such program
        }
    }
}

/// <summary>A test on a small tmpfs of its own: skipped, with why, where one cannot be mounted (not Linux, or no right to mount).</summary>
public sealed class TmpfsFactAttribute : FactAttribute
{
    private static readonly Lazy<string?> Unavailable = new(Probe);

    public TmpfsFactAttribute()
    {
        if (Unavailable.Value is { } reason)
        {
            Skip = reason;
        }
    }

    /// <summary>Mounts (and unmounts) a tmpfs once: the right to do so is all the check can go by.</summary>
    private static string? Probe()
    {
        const string NotChecked = "the disk-full path of the output writer was not checked on a real full disk";
        if (!OperatingSystem.IsLinux())
        {
            return $"mounts a tmpfs (Linux only): {NotChecked}";
        }

        var probe = Directory.CreateTempSubdirectory("qnt-tmpfs-probe-");
        try
        {
            if (!DiskFullTests.Run("mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", probe.FullName))
            {
                return $"mount -t tmpfs failed (it needs root or CAP_SYS_ADMIN; CI runs as root in a container): {NotChecked}";
            }

            DiskFullTests.Run("umount", probe.FullName);
            return null;
        }
        finally
        {
            probe.Delete();
        }
    }
}
