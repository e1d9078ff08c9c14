using System;
using System.IO;
using System.Runtime.InteropServices;
using System.Text;

namespace Quantize.Common;

/// <summary>
/// Whether a path about to be read is a regular file. Opening a named pipe (FIFO) for reading blocks until a writer
/// appears — forever, in a build — and a device such as /dev/zero never ends, so inputs are checked first. On Linux
/// the check opens the path without blocking and reads its type with fstat; elsewhere it answers "regular" (Windows has
/// no FIFOs in the file system; macOS keeps the older behaviour). One source compiled into the engine and into the
/// netstandard2.0 task (which reads the model and sample lists inside the build node), hence the plain P/Invoke.
/// </summary>
internal static class RegularFile
{
    private const int ReadOnlyNonBlocking = 0x800; // O_RDONLY | O_NONBLOCK on Linux (x64 and arm64)
    private const uint TypeMask = 0xF000; // S_IFMT
    private const uint RegularType = 0x8000; // S_IFREG

    /// <summary>The kind of a non-regular file in words ("a named pipe (FIFO)", "a device", ...), or null when it is regular or absent.</summary>
    public static string? SpecialKind(string path)
    {
        if (!RuntimeInformation.IsOSPlatform(OSPlatform.Linux) || !File.Exists(path))
        {
            return null;
        }

        // struct stat: st_dev, st_ino, st_nlink then st_mode on x86-64; the generic layout (st_dev, st_ino, st_mode) on arm64.
        int modeOffset = RuntimeInformation.ProcessArchitecture == Architecture.X64 ? 24 : RuntimeInformation.ProcessArchitecture == Architecture.Arm64 ? 16 : -1;
        if (modeOffset < 0)
        {
            return null;
        }

        try
        {
            int fd = Open(Encoding.UTF8.GetBytes(path + "\0"), ReadOnlyNonBlocking);
            if (fd < 0)
            {
                return null; // unreadable: the reader's own open reports it with its code
            }

            try
            {
                var stat = new byte[256]; // larger than struct stat on every Linux ABI
                if (FStat(fd, stat) != 0)
                {
                    return null;
                }

                uint mode = BitConverter.ToUInt32(stat, modeOffset) & TypeMask;
                return mode == RegularType ? null
                    : mode == 0x1000 ? "a named pipe (FIFO)"
                    : mode == 0x2000 || mode == 0x6000 ? "a device"
                    : mode == 0xC000 ? "a socket"
                    : "not a regular file";
            }
            finally
            {
                _ = Close(fd);
            }
        }
        catch (Exception e) when (e is EntryPointNotFoundException || e is DllNotFoundException)
        {
            return null; // a C library without fstat as a symbol (glibc before 2.33): no check
        }
    }

    /// <summary>Throws the reader's coded error when <paramref name="path"/> is a FIFO, device or socket.</summary>
    public static void Require(string path, Func<string, Exception> error)
    {
        if (SpecialKind(path) is string kind)
        {
            throw error($"it is {kind}, not a regular file: reading it could block forever or never end. Point at a regular file.");
        }
    }

    /// <param name="path">UTF-8, zero-terminated (netstandard2.0 has no UTF-8 string marshalling).</param>
    [DllImport("libc", EntryPoint = "open")]
    private static extern int Open(byte[] path, int flags);

    [DllImport("libc", EntryPoint = "fstat")]
    private static extern int FStat(int fd, byte[] stat);

    [DllImport("libc", EntryPoint = "close")]
    private static extern int Close(int fd);
}
