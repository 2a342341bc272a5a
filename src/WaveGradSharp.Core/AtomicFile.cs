namespace WaveGradSharp.Core;

/// <summary>Writes files so that a crash never leaves half of one: write to a temporary name beside it, then rename.</summary>
public static partial class AtomicFile
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
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw Failed(path, tmp, e); }
        finally
        {
            if (File.Exists(tmp)) File.Delete(tmp);
        }
    }

    /// <summary>
    /// Cleans up a training run folder <paramref name="dir"/> and its <c>checkpoint/</c> after a killed writer (see
    /// <see cref="RemoveStale(string, bool)"/>), this process's own temporaries included: a trainer calls it under its
    /// run lock, when nothing else of this process writes there, and a killed trainer's pid may well be ours again (the
    /// first process of a container always has the same one). Returns how many entries it removed or restored.
    /// </summary>
    public static int RemoveStale(string dir) => RemoveStale(dir, ownToo: true) + RemoveStale(Path.Combine(dir, "checkpoint"), ownToo: true);

    /// <summary>
    /// Removes this class's temporary files and folders in <paramref name="dir"/> (exactly <c>.NAME.PID.GUID.tmp</c>, GUID
    /// in 32 hex digits) whose process no longer runs, and puts back a folder whose swap was cut between its two renames
    /// (<c>.NAME.PID.GUID.tmp.old</c> with no NAME). Nothing else is touched, nor a temporary of this process unless
    /// <paramref name="ownToo"/>. Every write into a folder calls it (at most once a minute per folder, so that writing
    /// thousands of files into one folder does not list it thousands of times), so that what a killed render or
    /// trainer left behind goes with the next write of any file there. A process id is judged in this process's view:
    /// a writer in another PID namespace (container) that shares the folder looks dead.
    /// </summary>
    public static int RemoveStale(string dir, bool ownToo)
    {
        int n = 0;
        if (!Directory.Exists(dir)) return 0;
        foreach (var e in Directory.EnumerateFileSystemEntries(dir, ".*.tmp*"))
        {
            var m = TempName().Match(Path.GetFileName(e));
            if (!m.Success || !int.TryParse(m.Groups["pid"].ValueSpan, out int pid)) continue;   // not one of ours
            if (pid == Environment.ProcessId ? !ownToo : Alive(pid)) continue;                  // a writer at work
            string target = Path.Combine(dir, m.Groups["name"].Value);
            try
            {
                if (m.Groups["old"].Success && !Directory.Exists(target) && !File.Exists(target)) Directory.Move(e, target);
                else if (Directory.Exists(e)) Directory.Delete(e, true);
                else File.Delete(e);
                n++;
            }
            catch (IOException) { }
            catch (UnauthorizedAccessException) { }
        }
        return n;
    }

    [System.Text.RegularExpressions.GeneratedRegex(@"^\.(?<name>.+)\.(?<pid>[0-9]{1,10})\.[0-9a-f]{32}\.tmp(?<old>\.old)?$")]
    private static partial System.Text.RegularExpressions.Regex TempName();

    static readonly System.Collections.Concurrent.ConcurrentDictionary<string, long> swept = new();

    /// <summary><see cref="RemoveStale(string, bool)"/> for a folder about to be written, unless done in the last minute.</summary>
    static void SweepBeforeWriting(string dir)
    {
        long now = Environment.TickCount64;
        if (swept.TryGetValue(dir, out long last) && now - last < 60_000) return;
        swept[dir] = now;
        RemoveStale(dir, ownToo: false);
    }

    /// <summary>Whether process <paramref name="pid"/> runs: /proc on Linux (cheap, and a zombie counts as alive), else the
    /// process table.</summary>
    static bool Alive(int pid)
    {
        if (OperatingSystem.IsLinux() && Directory.Exists("/proc/self")) return Directory.Exists($"/proc/{pid}");
        try { using var p = System.Diagnostics.Process.GetProcessById(pid); return !p.HasExited; }
        catch (ArgumentException) { return false; }
        catch (InvalidOperationException) { return false; }
    }

    /// <summary>A fresh temporary name beside <paramref name="path"/> (its folder is created), of the form
    /// <see cref="RemoveStale(string, bool)"/> cleans up after a killed writer; killed writers' temporaries in that folder go first.</summary>
    public static string TempPath(string path)
    {
        CheckOutput(path);
        string full = Path.GetFullPath(path);
        if (Directory.Exists(full)) throw WaveGradException.About($"{path}: is a folder; the Output must be a file", "Output");
        string dir = Path.GetDirectoryName(full)!;
        try { Directory.CreateDirectory(dir); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw Failed(path, dir, e); }
        SweepBeforeWriting(dir);
        return Path.Combine(dir, $".{Path.GetFileName(full)}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
    }

    /// <summary>A failure of the file system while writing <paramref name="path"/> through the temporary <paramref name="tmp"/>
    /// (a read-only folder, a full disk) as one error that names the output the user asked for: the temporary's name is
    /// ours, not theirs.</summary>
    public static WaveGradException Failed(string path, string tmp, Exception e) =>
        new($"{path}: cannot write: {Text.FirstLine(e.Message).Replace(tmp, Path.GetFullPath(path))}", e);

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
        try { Directory.CreateDirectory(parent); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw Failed(dir, parent, e); }
        SweepBeforeWriting(parent);
        string tmp = Path.Combine(parent, $".{Path.GetFileName(full)}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        string old = tmp + ".old";
        try
        {
            Directory.CreateDirectory(tmp);
            fill(tmp);
            if (Directory.Exists(full)) Directory.Move(full, old);
            Directory.Move(tmp, full);
            if (Directory.Exists(old)) Directory.Delete(old, true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw Failed(dir, tmp, e); }
        finally
        {
            if (Directory.Exists(tmp)) Directory.Delete(tmp, true);
            if (Directory.Exists(old) && !Directory.Exists(full)) Directory.Move(old, full);
        }
    }
}
