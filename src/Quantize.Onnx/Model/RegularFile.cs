using System.Runtime.InteropServices;

namespace Quantize.Onnx.Model;

/// <summary>
/// Whether a path the tool is about to read is a regular file. Opening a named pipe (FIFO) for reading blocks until a
/// writer appears — forever, in a build — and a device such as /dev/zero never ends, so every input is checked first.
/// On Linux the check opens the path without blocking and reads its type with fstat; elsewhere it answers "regular"
/// (Windows has no FIFOs in the file system; macOS keeps the older behaviour).
/// </summary>
internal static partial class RegularFile
{
    private const int ReadOnlyNonBlocking = 0x800; // O_RDONLY | O_NONBLOCK on Linux (x64 and arm64)
    private const uint TypeMask = 0xF000; // S_IFMT
    private const uint RegularType = 0x8000; // S_IFREG

    /// <summary>The kind of a non-regular file in words ("a named pipe (FIFO)", "a device", ...), or null when it is regular or absent.</summary>
    public static string? SpecialKind(string path)
    {
        if (!OperatingSystem.IsLinux() || !File.Exists(path))
        {
            return null;
        }

        var modeOffset = RuntimeInformation.ProcessArchitecture switch
        {
            Architecture.X64 => 24,  // struct stat on x86-64: st_dev, st_ino, st_nlink, then st_mode
            Architecture.Arm64 => 16, // the generic layout: st_dev, st_ino, then st_mode
            _ => -1,
        };
        if (modeOffset < 0)
        {
            return null;
        }

        try
        {
            var fd = Open(path, ReadOnlyNonBlocking);
            if (fd < 0)
            {
                return null; // unreadable: the reader's own open reports it with its code
            }

            try
            {
                Span<byte> stat = stackalloc byte[256]; // larger than struct stat on every Linux ABI
                if (FStat(fd, ref MemoryMarshal.GetReference(stat)) != 0)
                {
                    return null;
                }

                var mode = BitConverter.ToUInt32(stat.Slice(modeOffset, 4));
                return (mode & TypeMask) switch
                {
                    RegularType => null,
                    0x1000 => "a named pipe (FIFO)",
                    0x2000 or 0x6000 => "a device",
                    0xC000 => "a socket",
                    _ => "not a regular file",
                };
            }
            finally
            {
                _ = Close(fd);
            }
        }
        catch (Exception e) when (e is EntryPointNotFoundException or DllNotFoundException)
        {
            return null; // a C library without fstat as a symbol (glibc before 2.33): no check
        }
    }

    /// <summary>Throws the reader's coded error when <paramref name="path"/> is a FIFO, device or socket.</summary>
    public static void Require(string path, Func<string, Exception> error)
    {
        if (SpecialKind(path) is { } kind)
        {
            throw error($"it is {kind}, not a regular file: reading it could block forever or never end. Point at a regular file.");
        }
    }

    [LibraryImport("libc", EntryPoint = "open", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "fstat")]
    private static partial int FStat(int fd, ref byte stat);

    [LibraryImport("libc", EntryPoint = "close")]
    private static partial int Close(int fd);
}
