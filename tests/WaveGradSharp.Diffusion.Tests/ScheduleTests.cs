using System.Text.Json;
using WaveGradSharp.Diffusion;
using WaveGradSharp.Core;

namespace WaveGradSharp.Diffusion.Tests;

public class ScheduleTests
{
    static JsonElement Fixture() => JsonDocument.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "fixtures", "schedules.json"))).RootElement;

    [Theory]
    [InlineData("ddpm-linear")]
    [InlineData("cosine")]
    public void MatchesPyTorchReferenceAtT0_487_999(string name)
    {
        var f = Fixture();
        var s = NoiseSchedule.Named(name);
        var ts = f.GetProperty("timesteps").EnumerateArray().Select(e => e.GetInt32()).ToArray();
        var expect = f.GetProperty(name);
        void Check(string key, double[] actual)
        {
            var values = expect.GetProperty(key).EnumerateArray().Select(e => e.GetDouble()).ToArray();
            for (int i = 0; i < ts.Length; i++)
                Assert.True(Math.Abs(values[i] - actual[ts[i]]) <= 1e-12 + 1e-9 * Math.Abs(values[i]),
                    $"{name} {key}[{ts[i]}]: expected {values[i]:R}, got {actual[ts[i]]:R}");
        }
        Check("betas", s.Betas);
        Check("alphas_cumprod", s.AlphasCumprod);
        Check("posterior_variance", s.PosteriorVariance);
        Check("posterior_log_variance_clipped", s.PosteriorLogVarianceClipped);
        Check("posterior_mean_coef1", s.PosteriorMeanCoef1);
        Check("posterior_mean_coef2", s.PosteriorMeanCoef2);
    }

    [Fact]
    public void NamedWaveGradSchedulesHaveThePublishedValues()
    {
        Assert.Equal(1000, NoiseSchedule.Named("wavegrad-train").Steps);
        Assert.Equal(1e-6, NoiseSchedule.Named("wavegrad-train").Betas[0], 15);
        Assert.Equal(0.01, NoiseSchedule.Named("wavegrad-train").Betas[^1], 15);
        var wg50 = NoiseSchedule.Named("wg-50");
        Assert.Equal(50, wg50.Steps);
        Assert.Equal(0.05, wg50.Betas[^1], 15);
        var wg25 = NoiseSchedule.Named("wg-25");
        Assert.Equal(25, wg25.Steps);
        Assert.Equal(0.121393, wg25.Betas[^1], 12);   // Fibonacci from 1e-6, 2e-6
        Assert.Equal(3e-6, wg25.Betas[2], 15);
        Assert.Equal([7e-6, 1.4e-4, 2.1e-3, 2.8e-2, 0.35, 0.7], NoiseSchedule.Named("wg-6").Betas);
        Assert.Equal([3e-4, 6e-2, 0.9], NoiseSchedule.Named("wg-3").Betas);
        Assert.Equal([1e-4, 1e-3, 1e-2, 0.05, 0.2, 0.5], NoiseSchedule.Named("diffwave-fast").Betas);
        // WG-6 reaches ᾱ_N = 0.189 (derived in the research notes).
        Assert.Equal(0.189, NoiseSchedule.Named("wg-6").AlphasCumprod[^1], 3);
        var cos = NoiseSchedule.Named("cosine");
        Assert.Equal(0.999, cos.Betas.Max(), 12);
    }

    [Fact]
    public void RejectsInvalidBetasWithClearMessages()
    {
        Assert.Contains("β[1] = 0 is outside (0, 1)", Assert.Throws<ScheduleException>(() => new NoiseSchedule([0.1, 0.0])).Message);
        Assert.Contains("β[0] = 1 is outside (0, 1)", Assert.Throws<ScheduleException>(() => new NoiseSchedule([1.0])).Message);
        Assert.Contains("NaN", Assert.Throws<ScheduleException>(() => new NoiseSchedule([double.NaN])).Message);
        Assert.Contains("empty", Assert.Throws<ScheduleException>(() => new NoiseSchedule(Array.Empty<double>())).Message);
        Assert.Contains("must decrease", Assert.Throws<ScheduleException>(() => NoiseSchedule.FromAlphasCumprod([0.9, 0.95])).Message);
        Assert.Contains("unknown schedule 'nope'", Assert.Throws<ScheduleException>(() => NoiseSchedule.Named("nope")).Message);
    }

    [Fact]
    public void JsonRoundTripAndFileErrors()
    {
        var dir = Directory.CreateTempSubdirectory();
        try
        {
            var s = NoiseSchedule.Named("ddpm-linear").Respace(10);
            var path = Path.Combine(dir.FullName, "s.json");
            s.Save(path);
            var back = NoiseSchedule.Load(path);
            Assert.Equal(s.Betas, back.Betas);
            Assert.Equal(s.Timesteps, back.Timesteps);

            var bad = Path.Combine(dir.FullName, "bad.json");
            File.WriteAllText(bad, "{\"betas\": [0.1, 1.5]}");
            var e = Assert.Throws<ScheduleException>(() => NoiseSchedule.Load(bad));
            Assert.StartsWith(bad + ": ", e.Message);
            Assert.Contains("β[1] = 1.5", e.Message);
            File.WriteAllText(bad, "not json");
            Assert.Contains("not a schedule JSON file", Assert.Throws<ScheduleException>(() => NoiseSchedule.Load(bad)).Message);
            File.WriteAllText(bad, "{\"name\": \"x\"}");
            Assert.Contains("no \"betas\"", Assert.Throws<ScheduleException>(() => NoiseSchedule.Load(bad)).Message);
            Assert.Contains("file not found", Assert.Throws<WaveGradException>(() => NoiseSchedule.Load(Path.Combine(dir.FullName,
                "missing.json"))).Message);
        }
        finally { dir.Delete(true); }
    }

    [Fact]
    public void RespacingKeepsAlphaBarAtKeptSteps()
    {
        var s = NoiseSchedule.Named("cosine");
        var r = s.Respace(100);
        Assert.Equal(100, r.Steps);
        Assert.Equal(0, r.Timesteps[0]);
        Assert.Equal(999, r.Timesteps[^1]);
        for (int i = 0; i < r.Steps; i++)
            Assert.Equal(s.AlphasCumprod[r.Timesteps[i]], r.AlphasCumprod[i], 12);
        Assert.True(r.Timesteps.Zip(r.Timesteps.Skip(1)).All(p => p.First < p.Second));
    }

    [Fact]
    public void RespacingToChosenStepsKeepsTheirAlphaBarAndEvenOnesMatchTheCount()
    {
        var s = NoiseSchedule.Named("wavegrad-train");
        var even = s.Respace(6);
        var chosen = s.Respace(even.Timesteps);
        Assert.Equal(even.AlphasCumprod, chosen.AlphasCumprod);
        Assert.Equal(even.Timesteps, chosen.Timesteps);
        var picked = s.Respace([0, 115, 201, 668, 714, 999]);
        Assert.Equal([0, 115, 201, 668, 714, 999], picked.Timesteps);
        for (int i = 0; i < picked.Steps; i++) Assert.Equal(s.AlphasCumprod[picked.Timesteps[i]], picked.AlphasCumprod[i], 12);
        foreach (var bad in new[] { new int[0], [0, 5, 5], [10, 3], [-1, 4], [0, 1000] })
            Assert.Throws<ScheduleException>(() => s.Respace(bad));
        // DDIM over the even steps given by index is DDIM over the count.
        Assert.Equal(new DdimSampler(s, 6).Levels, new DdimSampler(s, even.Timesteps).Levels);
        Assert.Equal(even.Timesteps, new DdimSampler(s, 6).Timesteps);
    }

    [Fact]
    public void PosteriorCoefficientsFollowBayesRule()
    {
        // q(x_{t-1}|x_t,x_0) ∝ N(x_t; √α_t x_{t-1}, β_t) · N(x_{t-1}; √ᾱ_{t-1} x_0, 1-ᾱ_{t-1}):
        // precision = α_t/β_t + 1/(1-ᾱ_{t-1}); mean = (√α_t x_t/β_t + √ᾱ_{t-1} x_0/(1-ᾱ_{t-1})) / precision.
        var s = NoiseSchedule.Named("ddpm-linear");
        foreach (int t in new[] { 1, 10, 487, 999 })
        {
            double prec = s.Alphas[t] / s.Betas[t] + 1 / (1 - s.AlphasCumprodPrev[t]);
            Assert.Equal(1 / prec, s.PosteriorVariance[t], 12);
            double coefXt = Math.Sqrt(s.Alphas[t]) / s.Betas[t] / prec;
            double coefX0 = Math.Sqrt(s.AlphasCumprodPrev[t]) / (1 - s.AlphasCumprodPrev[t]) / prec;
            Assert.Equal(coefXt, s.PosteriorMeanCoef2[t], 10);
            Assert.Equal(coefX0, s.PosteriorMeanCoef1[t], 10);
        }
    }

    [Fact]
    public void ContinuousLevelLiesBetweenAdjacentLevels()
    {
        var s = NoiseSchedule.Named("wg-6");
        for (int step = 1; step <= s.Steps; step++)
            foreach (double u in new[] { 0.0, 0.25, 0.999 })
            {
                double l = s.ContinuousLevel(step, u);
                double hi = step == 1 ? 1 : s.SqrtAlphasCumprod[step - 2], lo = s.SqrtAlphasCumprod[step - 1];
                Assert.InRange(l, lo, hi);
            }
        Assert.Equal(1.0, s.ContinuousLevel(1, 0), 15);
    }
}
