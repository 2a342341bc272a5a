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
}
