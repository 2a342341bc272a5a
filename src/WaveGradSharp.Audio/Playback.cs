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
        if (Environment.GetEnvironmentVariable("WAVEGRAD_PLAYER_DEVICE") is { Length: > 0 } dev && exe == "aplay") { psi.ArgumentList.Add("-D"); psi.ArgumentList.Add(dev); }
        psi.ArgumentList.Add(path);
        using var p = Process.Start(psi)!;
        string stderr = p.StandardError.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0)
        {
            err.WriteLine($"play: {exe} could not play {path} (no sound device?): {stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries).FirstOrDefault() ?? $"exit code {p.ExitCode}"}");
            return false;
        }
        return true;
    }
}
