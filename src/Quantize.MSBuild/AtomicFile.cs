using System;
using System.IO;

namespace Quantize.MSBuild
{
    /// <summary>
    /// Writes files the way the worker writes models: to a uniquely named temporary file beside the
    /// target, then renamed over it. A killed build never leaves a half-written file, and two builds of
    /// the same project writing the same file at once each leave a complete one.
    /// </summary>
    internal static class AtomicFile
    {
        public static void WriteAllText(string path, string text) => Replace(path, temp => File.WriteAllText(temp, text));

        private static void Replace(string path, Action<string> write)
        {
            string temp = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(path))!, "." + Path.GetFileName(path) + "." + Guid.NewGuid().ToString("N").Substring(0, 12) + ".tmp");
            try
            {
                write(temp);
                try
                {
                    File.Move(temp, path);
                }
                catch (IOException) when (File.Exists(path))
                {
                    // netstandard2.0 has no File.Move(overwrite); Replace renames over the target (atomic on POSIX).
                    File.Replace(temp, path, null);
                }
            }
            finally
            {
                if (File.Exists(temp))
                {
                    File.Delete(temp);
                }
            }
        }
    }
}
