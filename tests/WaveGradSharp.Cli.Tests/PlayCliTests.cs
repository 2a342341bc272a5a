namespace WaveGradSharp.Cli.Tests;

/// <summary><c>play</c> against players this test controls: none on PATH, one that plays, one that finds no device.</summary>
public class PlayCliTests
{
    static readonly string Wav = Path.Combine(AppContext.BaseDirectory, "fixtures", "audio", "clip-chirp-22k.wav");

    [Fact]
    public void PlayNamesAMissingFileAndExitsWithTwo()
    {
        var r = CliRunner.Run("play", "/nonexistent/x.wav");
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("/nonexistent/x.wav", r.Stderr);
        Assert.Single(r.Stderr.Trim().Split('\n'));
    }

    [Fact]
    public void WithoutAPlayerItSaysSoInOneLineAndExitsWithOne()
    {
        var empty = Directory.CreateTempSubdirectory("wg-path-");
        try
        {
            var r = CliRunner.RunWith(null, new Dictionary<string, string?> { ["PATH"] = empty.FullName }, "play", Wav);
            Assert.Equal(1, r.ExitCode);
            Assert.Single(r.Stderr.Trim().Split('\n'));
            Assert.StartsWith("play: no audio player found", r.Stderr);
        }
        finally { empty.Delete(true); }
    }

    [Theory]
    [InlineData(0, "")]
    [InlineData(1, "aplay: main:831: audio open error: No such file or directory")]
    public void APlayerOnPathGetsTheFileAndItsFailureIsOneLine(int playerExit, string playerError)
    {
        if (OperatingSystem.IsWindows()) return;   // playback is built in on Linux and macOS only
        var bin = Directory.CreateTempSubdirectory("wg-path-");
        try
        {
            // A stand-in for aplay that records its arguments and exits as a real one would.
            string log = Path.Combine(bin.FullName, "args.txt");
            File.WriteAllText(Path.Combine(bin.FullName, "aplay"), $"#!/bin/sh\necho \"$@\" > '{log}'\necho '{playerError}' >&2\nexit {playerExit}\n");
            if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(Path.Combine(bin.FullName, "aplay"),
                UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            var r = CliRunner.RunWith(null, new Dictionary<string, string?> { ["PATH"] = bin.FullName + ":/usr/bin:/bin" }, "play", Wav);
            Assert.Equal(playerExit, r.ExitCode);
            Assert.Equal($"-q {Wav}", File.ReadAllText(log).Trim());
            if (playerExit == 0) Assert.Equal("", r.Stderr.Trim());
            else
            {
                Assert.Single(r.Stderr.Trim().Split('\n'));
                Assert.StartsWith("play: aplay could not play", r.Stderr);
                Assert.Contains("audio open error", r.Stderr);
            }
        }
        finally { bin.Delete(true); }
    }

    [Fact]
    public void SpeakPlayFeedsThePlayerWhileRenderingAndReportsFirstSound()
    {
        if (OperatingSystem.IsWindows() || WaveGradSharp.Audio.SpeechFrontend.Available() is null) return;   // needs festival or espeak-ng
        var bin = Directory.CreateTempSubdirectory("wg-path-");
        try
        {
            // A stand-in for aplay that records the raw PCM it is fed.
            string raw = Path.Combine(bin.FullName, "fed.raw"), wav = Path.Combine(bin.FullName, "hello.wav");
            File.WriteAllText(Path.Combine(bin.FullName, "aplay"), $"#!/bin/sh\necho \"$@\" > '{raw}.args'\ncat > '{raw}'\n");
            if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(Path.Combine(bin.FullName, "aplay"),
                UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            var r = CliRunner.RunWith(null, new Dictionary<string, string?> { ["PATH"] = bin.FullName + ":/usr/bin:/bin" },
                "speak", "Hello there.", "--play", "-o", wav, "--device", "cpu");
            Assert.True(r.ExitCode == 0, r.Stderr);
            Assert.Contains("first sound", r.Stdout);
            Assert.Equal("-q -t raw -f S16_LE -r 22050 -c 1 -", File.ReadAllText(raw + ".args").Trim());
            // The player heard exactly what was written to the file: 16-bit samples after the 44-byte header.
            Assert.Equal(new FileInfo(wav).Length - 44, new FileInfo(raw).Length);
        }
        finally { bin.Delete(true); }
    }
}
