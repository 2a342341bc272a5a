using TorchSharp;
using static TorchSharp.torch;

namespace WaveGradSharp.Diffusion;

/// <summary>One sampler's moments against the truth, from <see cref="SamplerCheck"/>.</summary>
public sealed record SamplerMoments(string Sampler, int Evaluations, double Mean, double Variance, double[] Weights, double Seconds)
{
    /// <summary>True when mean, variance and every mixture weight lie within the tolerances of the truth.</summary>
    public bool Within(GaussianMixtureDenoiser truth, SamplerCheck.Tolerance tol) =>
        Math.Abs(Mean - truth.Mean) <= tol.Mean &&
        Math.Abs(Variance - truth.Variance) <= tol.Variance &&
        Weights.Zip(truth.Weights, (a, b) => Math.Abs(a - b)).All(d => d <= tol.Weight);
}

/// <summary>
/// Proves the samplers with a closed-form denoiser: draws samples of a 1-D two-component Gaussian mixture through
/// every sampler and compares their mean, variance and mixture weights with the true ones. It backs
/// <c>wavegrad schedule demo</c> and the sampler tests.
/// </summary>
public static class SamplerCheck
{
    /// <summary>Allowed absolute errors, about four standard errors at 4,000 samples.</summary>
    public sealed record Tolerance(double Mean = 0.08, double Variance = 0.12, double Weight = 0.03);

    /// <summary>The demo's data: 0.3·N(−1.5, 0.3²) + 0.7·N(1.0, 0.5²).</summary>
    public static GaussianMixtureDenoiser DemoMixture() => new([0.3, 0.7], [-1.5, 1.0], [0.3, 0.5]);

    /// <summary>The samplers the demo runs, each with its settings in its name.</summary>
    public static IReadOnlyList<(string Label, ISampler Sampler)> DemoSamplers()
    {
        var linear = NoiseSchedule.Named("ddpm-linear");
        var sigmas = Sigmas.Geometric(5.0, 0.01, 30);
        return
        [
            ("ddpm 1000 (σ²=β̃)", new DdpmSampler(linear, ReverseVariance.BetaTilde)),
            ("ddpm 1000 (σ²=β)", new DdpmSampler(linear, ReverseVariance.Beta)),
            ("ddim 50 (η=0)", new DdimSampler(linear, 50, eta: 0)),
            ("ddim 200 (η=1)", new DdimSampler(linear, 200, eta: 1)),
            ("respaced 100", new DdpmSampler(linear.Respace(100), ReverseVariance.BetaTilde, name: "respaced")),
            ("ddpm 1000 cosine", new DdpmSampler(NoiseSchedule.Named("cosine"), ReverseVariance.BetaTilde)),
            ("langevin 30×100", new AnnealedLangevinSampler(sigmas, stepsPerLevel: 100, stepSize: 5e-5)),
            ("pc VE 500", PredictorCorrectorSampler.VarianceExploding(Sigmas.Geometric(5.0, 0.01, 500), snr: 0.16)),
            ("pc VP 1000", PredictorCorrectorSampler.VariancePreserving(linear, snr: 0.05)),
            ("ode heun 50 (VP)", ProbabilityFlowSampler.ForSchedule(linear, 50)),
            ("ode heun 60 (VE)", ProbabilityFlowSampler.VarianceExploding(Sigmas.Geometric(20.0, 0.002, 60))),
        ];
    }

    /// <summary>
    /// Draws <paramref name="n"/> samples (shape [1, n]) and measures them. With <paramref name="startNoiseStd"/> each sample
    /// starts from an estimate (<see cref="SampleStart"/>): an exact draw of the mixture, noised to the first of the sampler's
    /// levels whose noise std is at most that. The forward process maps the data to the exact marginal of that level, so the
    /// remaining steps must end on the mixture again: this proves the start as the pure-noise run proves the whole walk.
    /// </summary>
    public static SamplerMoments Measure(string label, ISampler sampler, GaussianMixtureDenoiser mixture, int n, long seed, double? startNoiseStd = null)
    {
        using var scope = NewDisposeScope();
        var rng = new Generator((ulong)seed);
        var start = startNoiseStd is double s ? new SampleStart(mixture.Draw([1, n], rng), s) : null;
        var sw = System.Diagnostics.Stopwatch.StartNew();
        var x = sampler.Sample(mixture, [1, n], new SampleOptions { Generator = rng, Start = start }).to_type(ScalarType.Float64).flatten();
        double seconds = sw.Elapsed.TotalSeconds;
        double mean = x.mean().item<double>();
        double variance = x.var().item<double>();
        var r = mixture.Responsibilities(x, new NoiseLevel(1, 0, double.NaN));
        var hard = r.argmax(0);
        var weights = Enumerable.Range(0, mixture.Weights.Length)
            .Select(k => (hard == k).to_type(ScalarType.Float64).mean().item<double>()).ToArray();
        return new SamplerMoments(label, sampler.EvaluationsWith(start), mean, variance, weights, seconds);
    }
}
