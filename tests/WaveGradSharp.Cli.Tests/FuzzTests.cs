using WaveGradSharp.Fuzz;

namespace WaveGradSharp.Cli.Tests;

/// <summary>A short seeded pass of the mutation fuzzer over every parser (the long run is the WaveGradSharp.Fuzz program).</summary>
public class FuzzTests
{
    public static TheoryData<string> Targets() => new(Fuzzer.Targets);

    [Theory, MemberData(nameof(Targets))]
    public void TwoHundredMutatedInputsAreEachAcceptedOrRefusedInOneLine(string target)
    {
        var work = Directory.CreateTempSubdirectory("wg-fuzz-");
        try
        {
            var r = new Fuzzer(work.FullName, seed: 7, TimeSpan.FromSeconds(30)).Run(target, 200);
            Assert.Equal(200, r.Inputs);
            Assert.True(r.Findings.Count == 0, string.Join("\n", r.Findings));
            Assert.True(r.Rejected > 20, $"{r.Rejected} rejected: the mutations should break most inputs");   // the fuzzer is biting
        }
        finally { work.Delete(true); }
    }

    [Fact]
    public void TheRunnerPrintsUsageForHelpAndRefusesAnUnknownOptionInOneLine()
    {
        // `-- --help` used to start a 100,000-input run.
        static (int Code, string Out, string Err) Fuzz(params string[] args)
        {
            var psi = new System.Diagnostics.ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
            psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "WaveGradSharp.Fuzz.dll"));
            foreach (var a in args) psi.ArgumentList.Add(a);
            using var p = System.Diagnostics.Process.Start(psi)!;
            var stdout = p.StandardOutput.ReadToEndAsync();
            var stderr = p.StandardError.ReadToEndAsync();
            if (!p.WaitForExit(60_000)) { p.Kill(true); throw new TimeoutException("the fuzz runner did not stop in 60 s"); }
            return (p.ExitCode, stdout.Result, stderr.Result);
        }
        var help = Fuzz("--help");
        Assert.Equal(0, help.Code);
        Assert.StartsWith("usage: ", help.Out);
        Assert.Contains("--iterations N", help.Out);
        var bad = Fuzz("--iterations", "5", "--frobnicate");
        Assert.Equal(2, bad.Code);
        Assert.Equal("fuzz: unknown option --frobnicate (see --help)", bad.Err.Trim());
        Assert.Empty(bad.Out);
    }
}
