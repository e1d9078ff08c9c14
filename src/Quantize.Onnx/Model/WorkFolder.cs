using System.Runtime.InteropServices;
using System.Security.Cryptography;

namespace Quantize.Onnx.Model;

/// <summary>
/// The hidden folder beside the output where one run keeps a large model's tensors on disk: created on first use,
/// deleted with the run, and held through an owner file so a later run can tell it from one a killed run left behind.
/// Thread-safe.
/// </summary>
/// <remarks>
/// The source's data files enter the folder as hard links (a copy when the file system has none): ORT rejects
/// external data outside the model's folder, symbolic links included.
/// </remarks>
internal sealed class WorkFolder : IDisposable
{
    /// <summary>How old an unowned work folder must be before a later run deletes it.</summary>
    internal static readonly TimeSpan AbandonedAfter = TimeSpan.FromMinutes(10);

    /// <summary>Held open (exclusively) by the run that owns the folder; see <see cref="SweepAbandoned"/>.</summary>
    private const string OwnerFileName = "owner.lock";

    private readonly object _gate = new();
    private bool _created;
    private FileStream? _owner;
    private int _workFiles;

    private WorkFolder(string fullName) => FullName = fullName;

    /// <summary>The folder's full path (it may not exist yet).</summary>
    public string FullName { get; }

    /// <summary>A work folder for <paramref name="outputPath"/>: hidden, beside it, named after it and unique to this run.</summary>
    public static WorkFolder Beside(string outputPath)
    {
        string full;
        try
        {
            full = Path.GetFullPath(outputPath);
        }
        catch (Exception e) when (e is ArgumentException or NotSupportedException or PathTooLongException)
        {
            full = Path.Combine(Path.GetTempPath(), "quantize-output"); // the writer reports the bad path (QNT1006)
        }

        string folder = Path.Combine(Path.GetDirectoryName(full) ?? ".", $".{Path.GetFileName(full)}.work-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4))}");
        return new WorkFolder(folder);
    }

    /// <summary>The folder, created (and owned) on the first call; I/O errors are the caller's to report (<see cref="NotWritable"/>).</summary>
    public string Ensure()
    {
        lock (_gate)
        {
            if (!_created)
            {
                Directory.CreateDirectory(FullName);
                _created = true;
                _owner = File.Open(Path.Combine(FullName, OwnerFileName), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
                SweepAbandoned();
            }

            return FullName;
        }
    }

    /// <summary>Makes <paramref name="source"/> appear in the folder as <paramref name="name"/> without reading it.</summary>
    public void LinkFile(string source, string name) => Guard(() => LinkOrCopy(source, Path.Combine(Ensure(), name)));

    /// <summary>A fresh file name in the folder for ORT to write an optimized model and its data into.</summary>
    public string NewFile(string stem)
    {
        lock (_gate)
        {
            string folder = "";
            Guard(() => folder = Ensure());
            return Path.Combine(folder, $"{stem}-{_workFiles++}");
        }
    }

    /// <summary>The error (<see cref="ErrorCodes.WorkFolderNotWritable"/>) for an I/O failure while writing the folder.</summary>
    public QuantizeException NotWritable(Exception e) =>
        new(ErrorCodes.WorkFolderNotWritable, FullName,
            $"Cannot write the work folder '{FullName}' where the quantizer keeps a large model's tensors on disk ({e.Message}); " +
            "free disk space beside the output (about the model's size) or choose an output folder on a writable disk.", e);

    public void Dispose()
    {
        lock (_gate)
        {
            _owner?.Dispose();
            if (_created)
            {
                try
                {
                    Directory.Delete(FullName, recursive: true);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    // Best effort: a leftover work folder is only disk space; the run's result matters more.
                }
            }
        }
    }

    private void Guard(Action action)
    {
        try
        {
            action();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw NotWritable(e);
        }
    }

    /// <summary>
    /// Deletes work folders of earlier runs for the same output that were killed before they could clean up:
    /// a folder is abandoned when nobody holds its owner file (a live run keeps it open exclusively) and it is
    /// older than <see cref="AbandonedAfter"/> (so a run that has created its folder but not yet opened the file is safe).
    /// </summary>
    private void SweepAbandoned()
    {
        // Best effort throughout: a leftover folder costs disk space, a failed sweep must not fail the run.
        string parent = Path.GetDirectoryName(FullName) ?? ".";
        string prefix = Path.GetFileName(FullName)[..^8]; // ".<output>.work-" without this run's 8 hex digits
        List<string> candidates;
        try
        {
            candidates = Directory.EnumerateDirectories(parent, prefix + "*").Where(f => !string.Equals(f, FullName, StringComparison.Ordinal)).ToList();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return;
        }

        foreach (string folder in candidates)
        {
            try
            {
                if (DateTime.UtcNow - Directory.GetLastWriteTimeUtc(folder) < AbandonedAfter)
                {
                    continue;
                }

                using (File.Open(Path.Combine(folder, OwnerFileName), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None))
                {
                }

                Directory.Delete(folder, recursive: true);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // Held by a live run (or not ours to delete): leave it.
            }
        }
    }

    private static void LinkOrCopy(string source, string link)
    {
        bool linked = OperatingSystem.IsWindows() ? CreateHardLinkW(link, source, IntPtr.Zero) : Link(source, link) == 0;
        if (!linked)
        {
            // Another file system (or no hard links): a copy costs disk and time, not memory.
            File.Copy(source, link);
        }
    }

    [DllImport("libc", EntryPoint = "link", SetLastError = true)]
    private static extern int Link([MarshalAs(UnmanagedType.LPUTF8Str)] string existing, [MarshalAs(UnmanagedType.LPUTF8Str)] string created);

    [DllImport("kernel32", CharSet = CharSet.Unicode, SetLastError = true)]
    [return: MarshalAs(UnmanagedType.Bool)]
    private static extern bool CreateHardLinkW(string created, string existing, IntPtr security);
}
