namespace WaveGradSharp.Core;

/// <summary>
/// Keeps a training run folder to one trainer at a time. Two trainers on one folder damage it (each writes its own
/// checkpoint over the other's, and the next resume finds files that do not match <c>state.json</c>). The lock is an
/// OS file lock: <c>.lock</c> in the folder, held open with <see cref="FileShare.None"/> for the trainer's lifetime, which
/// .NET takes as an exclusive <c>flock</c> on Linux and macOS and a share mode on Windows. The kernel drops it when the
/// process ends, however it ends (SIGKILL included), so a killed trainer never leaves its folder locked. The holder's
/// process id goes to <c>.lock.pid</c> for the refusal message: the locked file itself cannot be read by another .NET
/// process, whose every FileStream takes an flock of its own. (Setting DOTNET_SYSTEM_IO_DISABLEFILELOCKING turns the
/// lock off, as it does all of .NET's file locking.)
/// </summary>
public sealed class RunLock : IDisposable
{
    /// <summary>The lock file's name in the run folder.</summary>
    public const string FileName = ".lock";
    /// <summary>The file that names the holder's process id.</summary>
    public const string PidFileName = ".lock.pid";

    readonly FileStream stream;

    RunLock(FileStream stream) => this.stream = stream;

    /// <summary>Locks <paramref name="dir"/> (created if missing) or throws one error naming the folder and the process that
    /// holds it.</summary>
    public static RunLock Acquire(string dir) => Acquire(dir, writePid: true);

    /// <summary>
    /// Throws the error <see cref="Acquire(string)"/> would if another process holds <paramref name="dir"/>, and holds nothing: a
    /// trainer that loads its data before the loop (minutes for a large corpus) asks first. A folder that does not exist
    /// is held by no one and is not made.
    /// </summary>
    public static void ThrowIfHeld(string dir)
    {
        if (Directory.Exists(dir)) Acquire(dir, writePid: false).Dispose();
    }

    static RunLock Acquire(string dir, bool writePid)
    {
        Directory.CreateDirectory(dir);
        string path = Path.Combine(dir, FileName), pidPath = Path.Combine(dir, PidFileName);
        FileStream fs;
        try { fs = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None); }
        catch (IOException e) when (e is not (FileNotFoundException or DirectoryNotFoundException or PathTooLongException))
        {
            string holder = Holder(pidPath) is int pid ? $"process {pid}" : $"another process ({Text.FirstLine(e.Message)})";
            throw new WaveGradException($"{dir}: the run folder is in use by {holder}, another trainer; wait for it to finish or stop it", e);
        }
        try { if (writePid) AtomicFile.WriteAllText(pidPath, $"{Environment.ProcessId}\n"); }
        catch { fs.Dispose(); throw; }
        return new RunLock(fs);
    }

    /// <summary>The process id in the pid file, or null when it is missing or unreadable.</summary>
    static int? Holder(string pidPath)
    {
        try { return int.TryParse(InputFile.ReadAllText(pidPath, "lock's pid file", 64).Trim(), out int pid) && pid > 0 ? pid : null; }
        catch (WaveGradException) { return null; }
    }

    /// <summary>Releases the lock (the files stay: deleting a lock file races with the next trainer's open of it).</summary>
    public void Dispose() => stream.Dispose();
}
