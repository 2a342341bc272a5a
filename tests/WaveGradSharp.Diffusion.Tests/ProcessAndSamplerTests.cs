using TorchSharp;
using WaveGradSharp.Diffusion;
using static TorchSharp.torch;

namespace WaveGradSharp.Diffusion.Tests;

public class ForwardProcessTests
{
    [Fact]
    public void QSampleHasTheClosedFormMoments()
    {
        var s = NoiseSchedule.Named("ddpm-linear");
        var q = new ForwardProcess(s);
        var rng = new Generator(7);
        int n = 200_000;
        var x0 = full(new long[] { n, 1 }, 0.7f);
        var t = full(new long[] { n }, 300L, ScalarType.Int64);
        var xt = q.Sample(x0, t, randn(new long[] { n, 1 }, generator: rng));
        double mean = xt.mean().item<float>(), variance = xt.var().item<float>();
        Assert.True(Math.Abs(0.7 * s.SqrtAlphasCumprod[300] - mean) < 0.006, $"mean {mean}");        // SE ≈ 0.0015
        Assert.True(Math.Abs(1 - s.AlphasCumprod[300] - variance) < 0.006, $"variance {variance}");  // SE ≈ 0.002
    }

    [Fact]
    public void ContinuousLevelsAreUniformWithinAdjacentIntervals()
    {
        var s = new NoiseSchedule([0.1, 0.2, 0.3, 0.4]);
        var q = new ForwardProcess(s);
        var l = q.SampleContinuousLevels(40_000, new Generator(3)).to_type(ScalarType.Float64);
        double[] edges = [1, .. s.SqrtAlphasCumprod];
        for (int k = 0; k < 4; k++)
        {
            var inside = (l <= edges[k]) & (l > edges[k + 1]);
            double frac = inside.to_type(ScalarType.Float64).mean().item<double>();
            Assert.InRange(frac, 0.24, 0.26);                   // each interval drawn with p = 1/4
            double mid = l.masked_select(inside).mean().item<double>();
            Assert.Equal((edges[k] + edges[k + 1]) / 2, mid, 2); // uniform inside it
        }
        // Up to step 2: the first two intervals only, each half the draws.
        var low = q.SampleContinuousLevels(40_000, new Generator(4), maxStep: 2).to_type(ScalarType.Float64);
        Assert.True(low.min().item<double>() >= edges[2]);
        double first = ((low > edges[1]).to_type(ScalarType.Float64).mean()).item<double>();
        Assert.InRange(first, 0.49, 0.51);
        Assert.Throws<ArgumentOutOfRangeException>(() => q.SampleContinuousLevels(1, new Generator(4), maxStep: 5));
    }

    [Fact]
    public void ParameterisationsConvertExactly()
    {
        var rng = new Generator(11);
        var x0 = randn(new long[] { 4, 8 }, generator: rng, dtype: ScalarType.Float64);
        var eps = randn(new long[] { 4, 8 }, generator: rng, dtype: ScalarType.Float64);
        var l = NoiseLevel.Of(NoiseSchedule.Named("cosine"), 400);
        var xt = l.SignalScale * x0 + l.NoiseStd * eps;
        var v = l.SignalScale * eps - l.NoiseStd * x0;
        var score = -eps / l.NoiseStd;
        foreach (var (kind, truth) in new[] { (Prediction.X0, x0), (Prediction.V, v), (Prediction.Score, score), (Prediction.Epsilon, eps) })
        {
            Assert.True(Parameterisation.FromEpsilon(eps, kind, xt, l).allclose(truth, 1e-9, 1e-9), $"ε → {kind}");
            Assert.True(Parameterisation.ToEpsilon(truth, kind, xt, l).allclose(eps, 1e-9, 1e-9), $"{kind} → ε");
        }
        Assert.True(Parameterisation.Convert(v, Prediction.V, Prediction.X0, xt, l).allclose(x0, 1e-9, 1e-9));
    }

    [Fact]
    public void HybridLossVlbVanishesForTheExactModel()
    {
        var s = NoiseSchedule.Named("ddpm-linear");
        var q = new ForwardProcess(s);
        var rng = new Generator(5);
        var x0 = rand(new long[] { 6, 1, 4, 4 }, generator: rng) * 2 - 1;
        var eps = randn(new long[] { 6, 1, 4, 4 }, generator: rng);
        var t = tensor(new long[] { 5, 50, 200, 400, 700, 999 });
        var xt = q.Sample(x0, t, eps);
        var exact = Losses.Hybrid(q, x0, xt, t, eps, eps, full_like(x0, -1.0));   // v = −1 → σ² = β̃
        Assert.True(exact.Simple.item<float>() < 1e-10);
        Assert.True(Math.Abs(exact.Vlb.item<float>()) < 1e-5, $"L_vlb = {exact.Vlb.item<float>()}");
        var wrong = Losses.Hybrid(q, x0, xt, t, eps, eps, full_like(x0, 1.0));    // σ² = β: KL > 0
        Assert.True(wrong.Vlb.item<float>() > 1e-4);
        Assert.Equal(wrong.Simple.item<float>() + 0.001f * wrong.Vlb.item<float>(), wrong.Total.item<float>(), 5);
    }
}

public class SamplerTests
{
    static readonly GaussianMixtureDenoiser Mixture = SamplerCheck.DemoMixture();

    public static IEnumerable<object[]> DemoSamplerLabels() => SamplerCheck.DemoSamplers().Select(s => new object[] { s.Label });

    [Theory]
    [MemberData(nameof(DemoSamplerLabels))]
    public void EverySamplerReproducesTheMixtureMoments(string label)
    {
        var sampler = SamplerCheck.DemoSamplers().Single(s => s.Label == label).Sampler;
        var m = SamplerCheck.Measure(label, sampler, Mixture, 4000, seed: 2024);
        Assert.True(m.Within(Mixture, new SamplerCheck.Tolerance()),
            $"{label}: mean {m.Mean:F4} (true {Mixture.Mean:F4}), var {m.Variance:F4} (true {Mixture.Variance:F4}), w " +
                $"{string.Join("/", m.Weights.Select(w => w.ToString("F3")))}");
    }

    [Theory]
    [MemberData(nameof(DemoSamplerLabels))]
    public void EverySamplerStartedFromAnEstimateEndsOnTheMixture(string label)
    {
        var sampler = SamplerCheck.DemoSamplers().Single(s => s.Label == label).Sampler;
        int first = sampler.StartLevel(0.7);
        Assert.InRange(first, 1, sampler.Levels.Count - 2);   // a start part-way down: some levels skipped, some walked
        Assert.True(sampler.Levels[first].NoiseStd <= 0.7 && sampler.Levels[first - 1].NoiseStd > 0.7);
        var m = SamplerCheck.Measure(label, sampler, Mixture, 4000, seed: 2025, startNoiseStd: 0.7);
        Assert.Equal(sampler.EvaluationsFrom(first), m.Evaluations);
        Assert.True(m.Evaluations < sampler.Evaluations);
        Assert.True(m.Within(Mixture, new SamplerCheck.Tolerance()),
            $"{label} from an estimate: mean {m.Mean:F4} (true {Mixture.Mean:F4}), var {m.Variance:F4} (true {Mixture.Variance:F4}), w " +
                $"{string.Join("/", m.Weights.Select(w => w.ToString("F3")))}");
    }

    [Fact]
    public void AStartFromAWrongEstimateNearTheDataEndsNearTheEstimateNotTheData()
    {
        // The start is what the sampler keeps: from a constant estimate at a low level, DDIM ends near that constant (it
        // can only move it by about the level's noise), whereas from noise it draws the mixture.
        var ddim = new DdimSampler(NoiseSchedule.Named("ddpm-linear"), 50);
        var estimate = full(1, 2000, 3.0f);
        var x = ddim.Sample(Mixture, [1, 2000], new SampleOptions { Generator = new Generator(5), Start = new SampleStart(estimate, 0.1) });
        Assert.InRange(x.mean().item<float>(), 2.0, 3.1);
        Assert.Throws<ArgumentException>(() => ddim.Sample(Mixture, [1, 10], new SampleOptions()));   // no noise source at all
        var misshapen = new SampleOptions { Generator = new Generator(1), Start = new SampleStart(estimate, 0.1) };   // [1, 2000] for [1, 10]
        Assert.Throws<ArgumentException>(() => ddim.Sample(Mixture, [1, 10], misshapen));
    }

    [Fact]
    public void DdpmOnASingleGaussianHasItsMeanAndVariance()
    {
        var gauss = new GaussianMixtureDenoiser([1], [0.5], [0.8]);
        var x = new DdpmSampler(NoiseSchedule.Named("ddpm-linear")).Sample(gauss, [1, 8000], new Generator(9)).to_type(ScalarType.Float64);
        Assert.InRange(x.mean().item<double>(), 0.5 - 0.04, 0.5 + 0.04);        // SE 0.009
        Assert.InRange(x.var().item<double>(), 0.64 - 0.045, 0.64 + 0.045);     // SE 0.010
    }

    [Fact]
    public void DdimOnASingleGaussianMatchesItsClosedFormMap()
    {
        // For Gaussian data N(μ, τ²) and the exact ε, each DDIM (η = 0) step is linear:
        // x' − a'μ = k (x − aμ) with k = (a'aτ² + s's) / (a²τ² + s²). Chaining the steps gives the exact
        // mean and variance of DDIM's output (a little below τ²: DDIM contracts at coarse steps).
        double mu = 0.5, tau = 0.8;
        var gauss = new GaussianMixtureDenoiser([1], [mu], [tau]);
        var s = NoiseSchedule.Named("ddpm-linear");
        var sub = s.Respace(50);
        double k = 1, a = sub.SqrtAlphasCumprod[^1], sd = sub.SqrtOneMinusAlphasCumprod[^1];
        double startA = a;
        for (int i = sub.Steps - 1; i >= 0; i--)
        {
            double an = Math.Sqrt(sub.AlphasCumprodPrev[i]), sn = Math.Sqrt(1 - sub.AlphasCumprodPrev[i]);
            k *= (an * a * tau * tau + sn * sd) / (a * a * tau * tau + sd * sd);
            a = an; sd = sn;
        }
        double expectMean = mu + k * (0 - startA * mu), expectVar = k * k;
        var x = new DdimSampler(s, 50).Sample(gauss, [1, 8000], new Generator(9)).to_type(ScalarType.Float64);
        Assert.InRange(x.mean().item<double>(), expectMean - 0.035, expectMean + 0.035);
        Assert.InRange(x.var().item<double>(), expectVar * 0.94, expectVar * 1.06);
        Assert.InRange(expectVar, 0.5, 0.64);
    }

    [Fact]
    public void SameSeedSameBits()
    {
        var s = new DdpmSampler(NoiseSchedule.Named("ddpm-linear"));
        var a = s.Sample(Mixture, [2, 500], new Generator(42));
        var b = s.Sample(Mixture, [2, 500], new Generator(42));
        var c = s.Sample(Mixture, [2, 500], new Generator(43));
        Assert.True(Same(a, b));
        Assert.False(Same(a, c));
    }

    [Fact]
    public void DdimWithEtaZeroDrawsOnlyTheInitialNoise()
    {
        // A deterministic sampler consumes exactly one noise tensor (x_T): the generator afterwards is where
        // a fresh generator is after one draw of that shape.
        var rng = new Generator(77);
        var ddim = new DdimSampler(NoiseSchedule.Named("ddpm-linear"), 50, eta: 0);
        var first = ddim.Sample(Mixture, [1, 300], rng);
        var after = randn(new long[] { 3 }, generator: rng);
        var reference = new Generator(77);
        randn(new long[] { 1, 300 }, generator: reference);
        Assert.True(Same(after, randn(new long[] { 3 }, generator: reference)));
        Assert.True(Same(first, ddim.Sample(Mixture, [1, 300], new Generator(77))));
        var stochastic = new DdimSampler(NoiseSchedule.Named("ddpm-linear"), 50, eta: 1);
        var rng2 = new Generator(77);
        stochastic.Sample(Mixture, [1, 300], rng2);
        Assert.False(Same(randn(new long[] { 3 }, generator: rng2), randn(new long[] { 3 }, generator: new Generator(77))));
    }

    [Fact]
    public void ProgressReportsEveryEvaluationAndCancellationStopsWithinAStep()
    {
        var sampler = new DdpmSampler(NoiseSchedule.Named("wg-50"));
        var steps = new List<SamplerStep>();
        sampler.Sample(Mixture, [1, 10], new Generator(1), new SampleOptions { Progress = new SyncProgress(steps.Add) });
        Assert.Equal(50, steps.Count);
        Assert.Equal(Enumerable.Range(1, 50), steps.Select(p => p.Step));

        using var cts = new CancellationTokenSource();
        int seen = 0;
        var opts = new SampleOptions { Cancellation = cts.Token, Progress = new SyncProgress(_ => { if (++seen == 3) cts.Cancel(); }) };
        Assert.Throws<OperationCanceledException>(() => sampler.Sample(Mixture, [1, 10], new Generator(1), opts));
        Assert.Equal(3, seen);
    }

    [Fact]
    public void GuidanceWeightZeroIsUnconditionalAndOneIsConditional()
    {
        var cond = new GaussianMixtureDenoiser([1], [2.0], [0.5]);
        var uncond = new GaussianMixtureDenoiser([1], [-1.0], [0.5]);
        var x = randn(new long[] { 3, 5 }, generator: new Generator(4));
        var l = NoiseLevel.Of(NoiseSchedule.Named("ddpm-linear"), 300);
        Assert.True(new ClassifierFreeGuidance(cond, uncond, 0).Predict(x, l).allclose(uncond.PredictEpsilon(x, l)));
        Assert.True(new ClassifierFreeGuidance(cond, uncond, 1).Predict(x, l).allclose(cond.PredictEpsilon(x, l), 1e-5, 1e-6));
        var w3 = new ClassifierFreeGuidance(cond, uncond, 3).Predict(x, l);
        var expect = uncond.PredictEpsilon(x, l) + 3 * (cond.PredictEpsilon(x, l) - uncond.PredictEpsilon(x, l));
        Assert.True(w3.allclose(expect, 1e-5, 1e-5));
    }

    [Fact]
    public void ClippedX0LandsDdimAndTheOdeOnTheClippedTarget()
    {
        // An oracle that knows x_0 (two values outside [−1, 1]): deterministic DDIM and the ODE's last Euler step both
        // return the denoiser's x̂₀ exactly, so through ClippedX0 they must land on clamp(x_0).
        var x0 = tensor(new float[] { -1.5f, -0.5f, 0.3f, 2.0f }).reshape(1, 4);
        var expect = x0.clamp(-1, 1);
        var schedule = NoiseSchedule.Named("ddpm-linear");
        var clipped = new ClippedX0(new OracleDenoiser(x0));
        var l = NoiseLevel.Of(schedule, 500);
        Assert.True(clipped.PredictX0(randn(1, 4), l).allclose(expect, 1e-5, 1e-5));
        foreach (ISampler sampler in new ISampler[] { new DdimSampler(schedule, 10), ProbabilityFlowSampler.ForSchedule(schedule, 8) })
        {
            var x = sampler.Sample(clipped, [1, 4], new Generator(3));
            Assert.True(x.allclose(expect, 1e-4, 1e-4), $"{sampler.Name}: {string.Join(", ", x.data<float>().ToArray())}");
            var plain = sampler.Sample(new OracleDenoiser(x0), [1, 4], new Generator(3));
            Assert.True(plain.allclose(x0, 1e-4, 1e-4), $"{sampler.Name} without clipping");
        }
    }

    /// <summary>Predicts the ε that makes x_t a noisy copy of one known x_0, and records what it is asked.</summary>
    sealed class OracleDenoiser(Tensor x0) : IDenoiser
    {
        public List<(float[] X, NoiseLevel Level)> Seen { get; } = [];
        public Prediction Predicts => Prediction.Epsilon;
        public Tensor Predict(Tensor xt, NoiseLevel level)
        {
            Seen.Add((xt.data<float>().ToArray(), level));
            return (xt - level.SignalScale * x0) / level.NoiseStd;
        }
    }

    [Theory]
    [InlineData(0.65, 4)]    // WG-6's noise stds: 0.0026, 0.012, 0.047, 0.174, 0.608, 0.900
    [InlineData(0.17, 2)]    // 0.1737 is just above
    [InlineData(1.0, 5)]
    [InlineData(0.001, 0)]   // every step is noisier: start at the last one
    public void AStartFromAGuessSkipsTheNoisierStepsAndNoisesTheGuessByTheForwardProcess(double maxStd, int top)
    {
        var s = NoiseSchedule.Named("wg-6");
        var sampler = DdpmSampler.WaveGrad(s);
        Assert.Equal(top, s.Steps - 1 - sampler.StartLevel(maxStd));
        var x0 = linspace(-0.8, 0.8, 16).reshape(2, 8).to_type(ScalarType.Float32);
        var guess = full(2, 8, 0.25f);
        var z = linspace(-1, 1, 16).reshape(2, 8).to_type(ScalarType.Float32);
        int draws = 0;
        var oracle = new OracleDenoiser(x0);
        var steps = new List<SamplerStep>();
        var x = sampler.Sample(oracle, [2, 8], new SampleOptions
        {
            Progress = new SyncProgress(steps.Add), NoiseSource = shape => draws++ == 0 ? z.clone() : randn(shape),
            Start = new SampleStart(guess, maxStd),
        });
        Assert.Equal(top + 1, oracle.Seen.Count);
        Assert.Equal(Enumerable.Range(0, top + 1).Reverse().Select(t => s.SqrtAlphasCumprod[t]), oracle.Seen.Select(v => v.Level.SignalScale));
        Assert.Equal(top + 1, steps.Count);
        Assert.All(steps, p => Assert.Equal(top + 1, p.Total));
        // x_top = √ᾱ·guess + √(1−ᾱ)·z, with the first noise draw as z.
        var expected = s.SqrtAlphasCumprod[top] * guess + s.SqrtOneMinusAlphasCumprod[top] * z;
        Assert.True(tensor(oracle.Seen[0].X).reshape(2, 8).allclose(expected, 1e-6, 1e-6));
        // With the true ε every step's posterior mean is exact, so the last step returns x_0 itself (whatever the
        // start: this checks the steps that follow it, the line above checks the start).
        Assert.True(x.allclose(x0, 1e-4, 1e-5), $"max |x − x0| = {(x - x0).abs().max().item<float>()}");
    }

    static bool Same(Tensor a, Tensor b) => a.shape.SequenceEqual(b.shape) && a.eq(b).all().item<bool>();

    sealed class SyncProgress(Action<SamplerStep> report) : IProgress<SamplerStep>
    {
        public void Report(SamplerStep value) => report(value);
    }
}
