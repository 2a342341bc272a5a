namespace WaveGradSharp.Cli.Tests;

public class ScheduleCliTests
{
    [Fact]
    public void HelpListsTheVerbs()
    {
        var r = CliRunner.Run("--help");
        Assert.Equal(0, r.ExitCode);
        Assert.Contains("schedule", r.Stdout);
    }

    [Fact]
    public void ShowPrintsEndsAndTerminalSnr()
    {
        var r = CliRunner.Run("schedule", "show", "wg-6");
        Assert.Equal(0, r.ExitCode);
        Assert.Contains("6 steps", r.Stdout);
        Assert.Contains("0.1891", r.Stdout);             // ᾱ_N of WG-6
        Assert.Contains("terminal SNR", r.Stdout);
    }

    [Fact]
    public void UnknownScheduleIsOneLineAndExitCodeTwo()
    {
        var r = CliRunner.Run("schedule", "show", "nope");
        Assert.Equal(2, r.ExitCode);
        Assert.Single(r.Stderr.Trim().Split('\n'));
        Assert.StartsWith("error: unknown schedule 'nope'", r.Stderr);
        var v = CliRunner.Run("schedule", "show", "nope", "--verbose");
        Assert.Equal(2, v.ExitCode);
        Assert.Contains("at WaveGradSharp.Diffusion.NoiseSchedule", v.Stderr);   // --verbose adds the stack trace
    }

    [Fact]
    public void BadScheduleFileNamesTheFile()
    {
        var dir = Directory.CreateTempSubdirectory();
        try
        {
            var f = Path.Combine(dir.FullName, "bad.json");
            File.WriteAllText(f, "{\"betas\": [0.5, 0]}");
            var r = CliRunner.Run("schedule", "show", f);
            Assert.Equal(2, r.ExitCode);
            Assert.Contains(f, r.Stderr);
            Assert.Contains("β[1] = 0 is outside (0, 1)", r.Stderr);
        }
        finally { dir.Delete(true); }
    }

    [Fact]
    public void DemoPrintsEverySamplerWithinTolerance()
    {
        var r = CliRunner.Run("schedule", "demo");
        Assert.Equal(0, r.ExitCode);
        foreach (var s in new[] { "ddpm 1000", "ddim 50", "respaced 100", "langevin", "pc VE", "pc VP", "ode heun" })
            Assert.Contains(s, r.Stdout);
        Assert.Contains("every sampler reproduces the mixture within tolerance", r.Stdout);
    }
}
