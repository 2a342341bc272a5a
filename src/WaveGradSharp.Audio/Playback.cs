using System.Diagnostics;

namespace WaveGradSharp.Audio;

/// <summary>
/// Plays a WAV file through whichever command-line player exists (aplay, paplay, pw-play, play from sox, ffplay).
/// With no player or no sound device it says so in one line; the file stays where it is.
/// </summary>
public static class Playback
{
    static readonly (string Exe, string[] Args)[] Players =
    [
        ("aplay", ["-q"]), ("paplay", []), ("pw-play", []), ("play", ["-q"]), ("ffplay", ["-nodisp", "-autoexit", "-loglevel", "error"]),
    ];

    /// <summary>The first player found on PATH, or null.</summary>
    public static string? FindPlayer() =>
        Players.Select(p => p.Exe).FirstOrDefault(SpeechFrontend.OnPath);

    /// <summary>Plays the file and waits; returns false (after printing why to stderr) when it could not.</summary>
    public static bool TryPlay(string path, TextWriter? messages = null)
    {
        var err = messages ?? Console.Error;
        if (!File.Exists(path)) { err.WriteLine($"play: {path}: no such file"); return false; }
        if (OperatingSystem.IsWindows())
        {
            err.WriteLine($"play: playback on Windows is not built in; open {path} in a media player");
            return false;
        }
        var exe = FindPlayer();
        if (exe is null)
        {
            err.WriteLine($"play: no audio player found (install alsa-utils, pulseaudio-utils, pipewire, sox or ffmpeg); the file is at {path}");
            return false;
        }
        var psi = new ProcessStartInfo(exe) { UseShellExecute = false, RedirectStandardError = true };
        foreach (var a in Players.First(p => p.Exe == exe).Args) psi.ArgumentList.Add(a);
        if (Environment.GetEnvironmentVariable("WAVEGRAD_PLAYER_DEVICE") is { Length: > 0 } dev && exe == "aplay")
        {
            psi.ArgumentList.Add("-D");
            psi.ArgumentList.Add(dev);
        }
        psi.ArgumentList.Add(path);
        using var p = Process.Start(psi)!;
        string stderr = p.StandardError.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0)
        {
            err.WriteLine($"play: {exe} could not play {path} (no sound device?): " +
                $"{stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries).FirstOrDefault() ?? $"exit code {p.ExitCode}"}");
            return false;
        }
        return true;
    }

    static readonly (string Exe, Func<int, string[]> Args)[] RawPlayers =
    [
        ("aplay", r => ["-q", "-t", "raw", "-f", "S16_LE", "-r", $"{r}", "-c", "1", "-"]),
        ("paplay", r => ["--raw", "--format=s16le", $"--rate={r}", "--channels=1"]),
        ("pw-play", r => ["--format", "s16", "--rate", $"{r}", "--channels", "1", "-"]),
        ("play", r => ["-q", "-t", "raw", "-e", "signed", "-b", "16", "-r", $"{r}", "-c", "1", "-"]),
        ("ffplay", r => ["-nodisp", "-autoexit", "-loglevel", "error", "-f", "s16le", "-ar", $"{r}", "-i", "-"]),
    ];

    /// <summary>Starts a player that sounds 16-bit mono PCM as it is written (see <see cref="PlaybackStream"/>); null, after one line
    /// on <paramref name="messages"/>, where no player is installed.</summary>
    public static PlaybackStream? OpenStream(int sampleRate, TextWriter? messages = null)
    {
        var err = messages ?? Console.Error;
        var found = RawPlayers.FirstOrDefault(p => SpeechFrontend.OnPath(p.Exe));
        if (OperatingSystem.IsWindows() || found.Exe is null)
        {
            err.WriteLine("play: no audio player found (install alsa-utils, pulseaudio-utils, pipewire, sox or ffmpeg); nothing is played");
            return null;
        }
        var psi = new ProcessStartInfo(found.Exe) { UseShellExecute = false, RedirectStandardInput = true, RedirectStandardError = true };
        foreach (var a in found.Args(sampleRate)) psi.ArgumentList.Add(a);
        return new PlaybackStream(Process.Start(psi)!, found.Exe, err);
    }
}

/// <summary>
/// A player process fed while audio is being made: samples written here sound as soon as the player has them. A player
/// that cannot open a sound device ends early; the next write or <see cref="Finish"/> then says so in one line, and the
/// caller goes on without sound.
/// </summary>
public sealed class PlaybackStream : IDisposable
{
    readonly Process process;
    readonly string exe;
    readonly TextWriter messages;
    readonly Task<string> stderr;
    byte[] buffer = [];
    bool failed;

    internal PlaybackStream(Process process, string exe, TextWriter messages)
    {
        this.process = process; this.exe = exe; this.messages = messages;
        stderr = process.StandardError.ReadToEndAsync();
    }

    /// <summary>When the first samples were handed to the player, or null before.</summary>
    public DateTime? FirstSound { get; private set; }

    /// <summary>Hands samples (clamped to [−1, 1]) to the player; false once it has failed.</summary>
    public bool Write(ReadOnlySpan<float> samples)
    {
        if (failed) return false;
        if (buffer.Length < samples.Length * 2) buffer = new byte[samples.Length * 2];
        for (int i = 0; i < samples.Length; i++)
        {
            short v = (short)Math.Clamp(Math.Round(samples[i] * 32768.0), -32768, 32767);
            buffer[2 * i] = (byte)v; buffer[2 * i + 1] = (byte)(v >> 8);
        }
        try
        {
            process.StandardInput.BaseStream.Write(buffer, 0, samples.Length * 2);
            process.StandardInput.BaseStream.Flush();
            FirstSound ??= DateTime.Now;
            return true;
        }
        catch (IOException) { return Fail(); }
    }

    /// <summary>Waits until everything written has played; false (after one line) if the player failed.</summary>
    public bool Finish()
    {
        if (failed) return false;
        try { process.StandardInput.Close(); } catch (IOException) { return Fail(); }
        process.WaitForExit();
        return process.ExitCode == 0 || Fail();
    }

    bool Fail()
    {
        if (failed) return false;
        failed = true;
        try { process.WaitForExit(2000); } catch (InvalidOperationException) { }
        string why = stderr.IsCompleted ? stderr.Result.Split('\n', StringSplitOptions.RemoveEmptyEntries).FirstOrDefault() ?? "" : "";
        messages.WriteLine($"play: {exe} could not play (no sound device?){(why.Length > 0 ? ": " + WaveGradSharp.Core.Text.Escape(why) : "")}");
        return false;
    }

    /// <summary>Stops the player.</summary>
    public void Dispose()
    {
        try { if (!process.HasExited) { process.StandardInput.Close(); process.WaitForExit(1000); if (!process.HasExited) process.Kill(); } }
        catch (Exception e) when (e is IOException or InvalidOperationException) { }
        process.Dispose();
    }
}
