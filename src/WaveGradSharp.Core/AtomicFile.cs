namespace WaveGradSharp.Core;

/// <summary>Writes files so that a crash never leaves half of one: write to a temporary name beside it, then rename.</summary>
public static class AtomicFile
{
    /// <summary>Calls <paramref name="write"/> with a temporary path in the target's folder, then moves it over <paramref name="path"/>.
    /// If <paramref name="write"/> throws, the temporary file is deleted and the target is left as it was.</summary>
    public static void Write(string path, Action<string> write)
    {
        string tmp = TempPath(path), full = Path.GetFullPath(path);
        try
        {
            write(tmp);
            File.Move(tmp, full, overwrite: true);
        }
        finally
        {
            if (File.Exists(tmp)) File.Delete(tmp);
        }
    }

    /// <summary>
    /// Cleans up after a killed writer in <paramref name="dir"/> and its <c>checkpoint/</c>: removes this class's
    /// temporary files and folders (<c>.NAME.PID.GUID.tmp</c>) whose process no longer runs, and puts back a folder
    /// whose swap was cut between its two renames (<c>.NAME.PID.GUID.tmp.old</c> with no NAME). Returns how many
    /// entries it removed or restored. With <paramref name="file"/>, only the temporaries of that file in
    /// <paramref name="dir"/> itself (what a new writer of that output calls, so a killed render's partial WAV goes).
    /// </summary>
    public static int RemoveStale(string dir, string? file = null)
    {
        int n = 0;
        var dirs = file is null ? new[] { dir, Path.Combine(dir, "checkpoint") } : [dir];
        foreach (var d in dirs.Where(Directory.Exists))
            foreach (var e in Directory.EnumerateFileSystemEntries(d, file is null ? ".*.tmp*" : $".{file}.*.tmp*"))
            {
                string name = Path.GetFileName(e);
                bool old = name.EndsWith(".tmp.old", StringComparison.Ordinal);
                if (!old && !name.EndsWith(".tmp", StringComparison.Ordinal)) continue;
                var parts = name[1..].Split('.');   // NAME…, PID, GUID, tmp[, old]
                int tail = old ? 4 : 3;
                if (parts.Length <= tail || !int.TryParse(parts[^tail], out int pid)) continue;   // not one of ours
                if ((file is not null || pid != Environment.ProcessId) && Alive(pid)) continue;   // another writer at work
                string target = Path.Combine(d, string.Join('.', parts[..^tail]));
                try
                {
                    if (old && !Directory.Exists(target) && !File.Exists(target)) Directory.Move(e, target);
                    else if (Directory.Exists(e)) Directory.Delete(e, true);
                    else File.Delete(e);
                    n++;
                }
                catch (IOException) { }
                catch (UnauthorizedAccessException) { }
            }
        return n;
    }

    static bool Alive(int pid)
    {
        try { using var p = System.Diagnostics.Process.GetProcessById(pid); return !p.HasExited; }
        catch (ArgumentException) { return false; }
        catch (InvalidOperationException) { return false; }
    }

    /// <summary>A fresh temporary name beside <paramref name="path"/> (its folder is created), of the form
    /// <see cref="RemoveStale"/> cleans up after a killed writer; a killed writer's temporaries of the same file go first.</summary>
    public static string TempPath(string path)
    {
        CheckOutput(path);
        string full = Path.GetFullPath(path);
        if (Directory.Exists(full)) throw WaveGradException.About($"{path}: is a folder; the Output must be a file", "Output");
        string dir = Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(dir);
        RemoveStale(dir, Path.GetFileName(full));
        return Path.Combine(dir, $".{Path.GetFileName(full)}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
    }

    /// <summary>Throws unless <paramref name="path"/> can name an output: not empty, not an existing folder's name for a file.</summary>
    public static void CheckOutput(string path)
    {
        if (string.IsNullOrWhiteSpace(path)) throw WaveGradException.About("the Output path is empty", "Output");
        if (path.IndexOf('\0') >= 0) throw WaveGradException.About("the Output path holds a NUL character", "Output");
    }

    /// <summary>Atomic <see cref="File.WriteAllText(string, string?)"/>.</summary>
    public static void WriteAllText(string path, string text) => Write(path, tmp => File.WriteAllText(tmp, text));

    /// <summary>Atomic <see cref="File.WriteAllBytes(string, byte[])"/>.</summary>
    public static void WriteAllBytes(string path, byte[] bytes) => Write(path, tmp => File.WriteAllBytes(tmp, bytes));

    /// <summary>
    /// Fills a temporary folder and swaps it in for <paramref name="dir"/>; on failure the old folder stays.
    /// An existing folder is replaced only when it holds <paramref name="marker"/> (what this writer writes), so a
    /// mistyped output path never deletes an unrelated folder.
    /// </summary>
    public static void WriteFolder(string dir, Action<string> fill, string marker)
    {
        CheckOutput(dir);
        if (Directory.Exists(dir) && Directory.EnumerateFileSystemEntries(dir).Any() && !File.Exists(Path.Combine(dir, marker)))
            throw new WaveGradException($"{dir}: exists and is not a folder this command wrote (no {marker}); choose another output folder");
        string full = Path.GetFullPath(dir).TrimEnd('/', '\\');
        string parent = Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(parent);
        string tmp = Path.Combine(parent, $".{Path.GetFileName(full)}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        string old = tmp + ".old";
        Directory.CreateDirectory(tmp);
        try
        {
            fill(tmp);
            if (Directory.Exists(full)) Directory.Move(full, old);
            Directory.Move(tmp, full);
            if (Directory.Exists(old)) Directory.Delete(old, true);
        }
        finally
        {
            if (Directory.Exists(tmp)) Directory.Delete(tmp, true);
            if (Directory.Exists(old) && !Directory.Exists(full)) Directory.Move(old, full);
        }
    }
}
