namespace WaveGradSharp.Cli.Tests;

public class PlayCliTests
{
    [Fact]
    public void PlayNamesAMissingFileAndExitsWithTwo()
    {
        var r = CliRunner.Run("play", "/nonexistent/x.wav");
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("/nonexistent/x.wav", r.Stderr);
        Assert.Single(r.Stderr.Trim().Split('\n'));
    }

    [Fact]
    public void PlayWithoutASoundDeviceSaysSoInOneLine()
    {
        // On a machine without a player or a sound card, playback fails with one line and exit code 1;
        // where a player and a device exist, it plays (exit code 0).
        var wav = Path.Combine(AppContext.BaseDirectory, "fixtures", "audio", "clip-chirp-22k.wav");
        var r = CliRunner.Run("play", wav);
        if (r.ExitCode == 0) return;
        Assert.Equal(1, r.ExitCode);
        Assert.Single(r.Stderr.Trim().Split('\n'));
        Assert.StartsWith("play: ", r.Stderr);
    }
}
