using TorchSharp;
using static TorchSharp.torch;

namespace WaveGradSharp.Diffusion;

/// <summary>Progress of a sampler: model evaluation <see cref="Step"/> (1-based) of <see cref="Total"/>, at noise std <see cref="NoiseStd"/>.</summary>
public readonly record struct SamplerStep(int Step, int Total, double NoiseStd);

/// <summary>
/// A start from an estimate of x_0 instead of pure noise (SDEdit, Meng et al. 2022; DiffSinger's shallow diffusion; what
/// diffusers calls <c>strength</c>): the sampler skips its levels noisier than <see cref="MaxNoiseStd"/>, forms
/// x = a·x̂ + s·z at the first level it keeps (the forward process applied to the estimate) and runs the rest.
/// </summary>
/// <param name="Estimate">x̂, shaped like the sample.</param>
/// <param name="MaxNoiseStd">The largest noise std s the walk starts at; when every level is noisier it starts at the last.</param>
public sealed record SampleStart(Tensor Estimate, double MaxNoiseStd);

/// <summary>Where and how a sample is drawn.</summary>
public sealed record SampleOptions
{
    /// <summary>Device of the sample and of the model's inputs (noise is drawn on the CPU and moved, so a seed gives the same noise everywhere).</summary>
    public Device? Device { get; init; }
    /// <summary>Told after every model evaluation.</summary>
    public IProgress<SamplerStep>? Progress { get; init; }
    /// <summary>Checked before every model evaluation.</summary>
    public CancellationToken Cancellation { get; init; }
    /// <summary>The source of standard normal noise when <see cref="NoiseSource"/> is not set.</summary>
    public Generator? Generator { get; init; }
    /// <summary>
    /// Replaces <see cref="Generator"/> as the source of standard normal noise: called with the shape of each draw, in order
    /// (x_T first). The vocoder uses it to tie noise to sample positions, so chunks of a stream see the same noise
    /// as a one-shot render.
    /// </summary>
    public Func<long[], Tensor>? NoiseSource { get; init; }
    /// <summary>Start from an estimate instead of pure noise; null starts at the noisiest level.</summary>
    public SampleStart? Start { get; init; }
}

/// <summary>
/// Draws samples from a denoiser: x at the noisiest level from noise (or from an estimate, <see cref="SampleStart"/>), then
/// the sampler's reverse steps through its <see cref="Levels"/>.
/// </summary>
public interface ISampler
{
    /// <summary>Short name ("ddpm", "ddim", ...).</summary>
    string Name { get; }
    /// <summary>Model evaluations per sample from pure noise.</summary>
    int Evaluations { get; }
    /// <summary>The noise levels the sampler walks, noisiest first.</summary>
    IReadOnlyList<NoiseLevel> Levels { get; }
    /// <summary>Model evaluations of a walk that starts at <see cref="Levels"/>[<paramref name="first"/>].</summary>
    int EvaluationsFrom(int first);
    /// <summary>A sample of the given shape (float32). Randomness comes only from the options' noise source or generator.</summary>
    Tensor Sample(IDenoiser model, long[] shape, SampleOptions options);
}

/// <summary>Helpers over every <see cref="ISampler"/>.</summary>
public static class Samplers
{
    /// <summary>A sample whose noise comes from <paramref name="rng"/>.</summary>
    public static Tensor Sample(this ISampler sampler, IDenoiser model, long[] shape, Generator rng, SampleOptions? options = null) =>
        sampler.Sample(model, shape, (options ?? new SampleOptions()) with { Generator = rng });

    /// <summary>The level a start from an estimate begins at: the noisiest whose noise std is at most <paramref name="maxNoiseStd"/>,
    /// or the last level when every one is noisier.</summary>
    public static int StartLevel(this ISampler sampler, double maxNoiseStd)
    {
        var levels = sampler.Levels;
        for (int i = 0; i < levels.Count; i++)
            if (levels[i].NoiseStd <= maxNoiseStd) return i;
        return levels.Count - 1;
    }

    /// <summary>Model evaluations of a sample with these options (fewer when it starts from an estimate).</summary>
    public static int EvaluationsWith(this ISampler sampler, SampleStart? start) =>
        start is null ? sampler.Evaluations : sampler.EvaluationsFrom(sampler.StartLevel(start.MaxNoiseStd));
}

/// <summary>Variance of DDPM's reverse step.</summary>
public enum ReverseVariance
{
    /// <summary>σ² = β_t ("fixed large").</summary>
    Beta,
    /// <summary>σ² = β̃_t, the posterior variance ("fixed small"; WaveGrad).</summary>
    BetaTilde,
    /// <summary>σ² from the model's variance head (improved-DDPM); needs an <see cref="IVarianceDenoiser"/>.</summary>
    Learned,
}

/// <summary>
/// Shared plumbing of the samplers: the first x (pure noise, or an estimate noised by the forward process), noise on the CPU
/// from the options' source, progress, cancellation, step scopes. A sampler writes only its walk from a given level.
/// </summary>
public abstract class SamplerBase : ISampler
{
    /// <inheritdoc/>
    public abstract string Name { get; }
    /// <inheritdoc/>
    public int Evaluations => EvaluationsFrom(0);
    /// <inheritdoc/>
    public abstract IReadOnlyList<NoiseLevel> Levels { get; }
    /// <inheritdoc/>
    public abstract int EvaluationsFrom(int first);

    /// <inheritdoc/>
    public Tensor Sample(IDenoiser model, long[] shape, SampleOptions options)
    {
        if (options.Generator is null && options.NoiseSource is null)
            throw new ArgumentException("a sample needs a Generator or a NoiseSource", nameof(options));
        var start = options.Start;
        if (start is not null && !start.Estimate.shape.SequenceEqual(shape))
            throw new ArgumentException($"the estimate is [{string.Join(", ", start.Estimate.shape)}], the sample [{string.Join(", ", shape)}]",
                nameof(options));
        int first = start is null ? 0 : this.StartLevel(start.MaxNoiseStd);
        var run = new Run(shape, options, EvaluationsFrom(first));
        var l = Levels[first];
        Tensor x;
        using (var scope = NewDisposeScope())
            x = (start is null
                ? run.Noise() * (l.IsVarianceExploding ? l.NoiseStd : 1.0)   // x_T ~ N(0, 1) (VP) or N(0, σ_max²) (VE)
                : l.SignalScale * run.OnDevice(start.Estimate) + l.NoiseStd * run.Noise()).MoveToOuterDisposeScope();
        return Walk(model, run, x, first);
    }

    /// <summary>The sampler's reverse steps from x at <see cref="Levels"/>[<paramref name="first"/>] (x = a·x_0 + s·ε there).</summary>
    protected abstract Tensor Walk(IDenoiser model, Run run, Tensor x, int first);

    /// <summary>State of one sampling run.</summary>
    protected sealed class Run(long[] shape, SampleOptions options, int total)
    {
        int step;
        /// <summary>Standard normal noise of the sample's shape, drawn on the CPU and moved to the device.</summary>
        public Tensor Noise()
        {
            var z = options.NoiseSource?.Invoke(shape) ?? randn(shape, generator: options.Generator, dtype: ScalarType.Float32);
            return options.Device is null || options.Device.type == DeviceType.CPU ? z : z.to(options.Device);
        }
        /// <summary>A tensor moved to the sample's device as float32.</summary>
        public Tensor OnDevice(Tensor t) => (options.Device is null ? t : t.to(options.Device)).to_type(ScalarType.Float32);
        /// <summary>Call before each model evaluation: throws if cancelled.</summary>
        public void BeforeEvaluation() => options.Cancellation.ThrowIfCancellationRequested();
        /// <summary>Call after each model evaluation.</summary>
        public void AfterEvaluation(double noiseStd) => options.Progress?.Report(new SamplerStep(++step, total, noiseStd));
        /// <summary>Replaces x by next (moved out of the step's scope) and frees the old x.</summary>
        public static void Replace(ref Tensor x, Tensor next)
        {
            var old = x;
            x = next.MoveToOuterDisposeScope();
            if (!ReferenceEquals(old, x)) old.Dispose();
        }
        /// <summary>Evaluates the model as ε.</summary>
        public Tensor Epsilon(IDenoiser model, Tensor x, NoiseLevel l)
        {
            BeforeEvaluation();
            var e = model.PredictEpsilon(x, l);
            AfterEvaluation(l.NoiseStd);
            return e;
        }
        /// <summary>Evaluates the model as the score.</summary>
        public Tensor Score(IDenoiser model, Tensor x, NoiseLevel l)
        {
            BeforeEvaluation();
            var s = model.PredictScore(x, l);
            AfterEvaluation(l.NoiseStd);
            return s;
        }
    }

    /// <summary>The levels of a variance-preserving schedule, noisiest (its last step) first.</summary>
    protected static NoiseLevel[] LevelsOf(NoiseSchedule s) => Enumerable.Range(0, s.Steps).Reverse().Select(t => NoiseLevel.Of(s, t)).ToArray();
}

/// <summary>
/// DDPM ancestral sampling over every step of a schedule: x_{t−1} = μ_θ(x_t, t) + σ_t z. Run over a respaced
/// schedule it is improved-DDPM's respaced sampler; over a short β list with a network conditioned on √ᾱ it is
/// WaveGrad's few-step sampler.
/// </summary>
public sealed class DdpmSampler(NoiseSchedule schedule, ReverseVariance variance = ReverseVariance.BetaTilde,
    double? clampSample = null, string name = "ddpm") : SamplerBase
{
    readonly NoiseLevel[] levels = LevelsOf(schedule);
    /// <summary>The schedule walked backwards.</summary>
    public NoiseSchedule Schedule { get; } = schedule;
    /// <inheritdoc/>
    public override string Name => name;
    /// <inheritdoc/>
    public override IReadOnlyList<NoiseLevel> Levels => levels;
    /// <inheritdoc/>
    public override int EvaluationsFrom(int first) => Schedule.Steps - first;

    /// <summary>WaveGrad's sampler: the β list as a schedule, σ² = β̃, the waveform clamped to [−1, 1] after each step
    /// (as lmnt-com/wavegrad does).</summary>
    public static DdpmSampler WaveGrad(NoiseSchedule betas) => new(betas, ReverseVariance.BetaTilde, clampSample: 1.0, name: "wavegrad");

    /// <inheritdoc/>
    protected override Tensor Walk(IDenoiser model, Run run, Tensor x, int first)
    {
        var s = Schedule;
        for (int t = s.Steps - 1 - first; t >= 0; t--)
        {
            using var scope = NewDisposeScope();
            var level = NoiseLevel.Of(s, t);
            Tensor eps, logVar;
            run.BeforeEvaluation();
            if (variance == ReverseVariance.Learned)
            {
                var vd = model.WithVariance();
                var (pred, v) = vd.PredictWithVariance(x, level);
                eps = Parameterisation.ToEpsilon(pred, vd.Predicts, x, level);
                var tt = full([x.shape[0]], t, ScalarType.Int64, device: x.device);
                logVar = Losses.LearnedLogVariance(s, v, tt);
            }
            else
            {
                eps = model.PredictEpsilon(x, level);
                logVar = full_like(x, Math.Log(variance == ReverseVariance.Beta ? s.Betas[t] : Math.Max(s.PosteriorVariance[t], 1e-20)));
            }
            run.AfterEvaluation(level.NoiseStd);
            var mean = (x - s.Betas[t] / s.SqrtOneMinusAlphasCumprod[t] * eps) / Math.Sqrt(s.Alphas[t]);
            var next = t > 0 ? mean + (0.5 * logVar).exp() * run.Noise() : mean;
            if (clampSample is double c) next = next.clamp(-c, c);
            Run.Replace(ref x, next);
        }
        return x;
    }
}

/// <summary>
/// DDIM (Song et al. 2021) over <c>steps</c> evenly spaced timesteps of a schedule, or over chosen ones (a searched few-step
/// schedule: <see cref="NoiseSchedule.Respace(IReadOnlyList{int}, string?)"/>); η = 0 is deterministic, η = 1 matches DDPM's
/// posterior variance.
/// </summary>
public sealed class DdimSampler : SamplerBase
{
    readonly NoiseSchedule sub;
    readonly double eta;
    NoiseLevel[]? levels;

    /// <summary>DDIM over <paramref name="steps"/> evenly spaced timesteps of <paramref name="schedule"/>.</summary>
    public DdimSampler(NoiseSchedule schedule, int steps, double eta = 0.0) : this(schedule.Respace(steps), eta, true) { }

    /// <summary>DDIM over the given <paramref name="timesteps"/> (increasing indices) of <paramref name="schedule"/>.</summary>
    public DdimSampler(NoiseSchedule schedule, IReadOnlyList<int> timesteps, double eta = 0.0) : this(schedule.Respace(timesteps), eta, true) { }

    DdimSampler(NoiseSchedule sub, double eta, bool _) { this.sub = sub; this.eta = eta; }

    /// <summary>The indices of the training schedule's steps this sampler visits, increasing.</summary>
    public IReadOnlyList<int> Timesteps => sub.Timesteps;
    /// <inheritdoc/>
    public override string Name => "ddim";
    /// <inheritdoc/>
    public override IReadOnlyList<NoiseLevel> Levels => levels ??= LevelsOf(sub);
    /// <inheritdoc/>
    public override int EvaluationsFrom(int first) => sub.Steps - first;

    /// <inheritdoc/>
    protected override Tensor Walk(IDenoiser model, Run run, Tensor x, int first)
    {
        for (int i = sub.Steps - 1 - first; i >= 0; i--)
        {
            using var scope = NewDisposeScope();
            var level = NoiseLevel.Of(sub, i);
            var eps = run.Epsilon(model, x, level);
            double ab = sub.AlphasCumprod[i], abPrev = sub.AlphasCumprodPrev[i];
            var x0 = Parameterisation.X0FromEpsilon(x, eps, level);
            double sigma = eta * Math.Sqrt((1 - abPrev) / (1 - ab) * (1 - ab / abPrev));
            var next = Math.Sqrt(abPrev) * x0 + Math.Sqrt(Math.Max(1 - abPrev - sigma * sigma, 0)) * eps;
            if (sigma > 0 && i > 0) next = next + sigma * run.Noise();
            Run.Replace(ref x, next);
        }
        return x;
    }
}

/// <summary>Geometric noise levels for score-based (variance-exploding) models.</summary>
public static class Sigmas
{
    /// <summary>n levels from σ_max down to σ_min, evenly spaced in log σ.</summary>
    public static double[] Geometric(double sigmaMax, double sigmaMin, int n)
    {
        if (!(sigmaMax > sigmaMin && sigmaMin > 0) || n < 2) throw new ArgumentException("need σ_max > σ_min > 0 and at least 2 levels");
        return Enumerable.Range(0, n).Select(i => Math.Exp(Math.Log(sigmaMax) + (Math.Log(sigmaMin) - Math.Log(sigmaMax)) * i / (n - 1))).ToArray();
    }
}

/// <summary>
/// Annealed Langevin dynamics (Song and Ermon 2019, NCSN): for each σ_i from large to small, T steps of
/// x ← x + (α_i/2)·s(x, σ_i) + √α_i·z with α_i = ε·σ_i²/σ_L². Starts from N(0, σ_1²); optionally ends with the
/// denoising step x + σ_L²·s(x, σ_L).
/// </summary>
public sealed class AnnealedLangevinSampler(double[] sigmas, int stepsPerLevel = 100, double stepSize = 2e-5, bool denoiseLast = true) : SamplerBase
{
    readonly NoiseLevel[] levels = sigmas.Select(NoiseLevel.VarianceExploding).ToArray();
    /// <inheritdoc/>
    public override string Name => "langevin";
    /// <inheritdoc/>
    public override IReadOnlyList<NoiseLevel> Levels => levels;
    /// <inheritdoc/>
    public override int EvaluationsFrom(int first) => (sigmas.Length - first) * stepsPerLevel + (denoiseLast ? 1 : 0);

    /// <inheritdoc/>
    protected override Tensor Walk(IDenoiser model, Run run, Tensor x, int first)
    {
        double sigmaL = sigmas[^1];
        foreach (double sigma in sigmas.Skip(first))
        {
            double alpha = stepSize * sigma * sigma / (sigmaL * sigmaL);
            var level = NoiseLevel.VarianceExploding(sigma);
            for (int k = 0; k < stepsPerLevel; k++)
            {
                using var scope = NewDisposeScope();
                var score = run.Score(model, x, level);
                Run.Replace(ref x, x + alpha / 2 * score + Math.Sqrt(alpha) * run.Noise());
            }
        }
        if (denoiseLast)
        {
            using var scope = NewDisposeScope();
            Run.Replace(ref x, x + sigmaL * sigmaL * run.Score(model, x, NoiseLevel.VarianceExploding(sigmaL)));
        }
        return x;
    }
}

/// <summary>
/// Predictor–corrector sampling of the reverse SDE (Song et al. 2021): a reverse-diffusion predictor and
/// <c>correctorSteps</c> Langevin corrector steps whose size follows the signal-to-noise ratio <c>snr</c>.
/// Variance-exploding: σ levels from large to small. Variance-preserving: a discrete schedule (β_i, ᾱ_i).
/// The last predictor step adds no noise.
/// </summary>
public sealed class PredictorCorrectorSampler : SamplerBase
{
    readonly double[]? sigmas;
    readonly NoiseSchedule? schedule;
    readonly double snr;
    readonly int correctorSteps;

    readonly NoiseLevel[] levels;

    PredictorCorrectorSampler(double[]? sigmas, NoiseSchedule? schedule, double snr, int correctorSteps)
    {
        this.sigmas = sigmas; this.schedule = schedule; this.snr = snr; this.correctorSteps = correctorSteps;
        levels = sigmas?.Select(NoiseLevel.VarianceExploding).ToArray() ?? LevelsOf(schedule!);
    }

    /// <summary>Variance-exploding SDE over σ levels from large to small.</summary>
    public static PredictorCorrectorSampler VarianceExploding(double[] sigmas, double snr = 0.16, int correctorSteps = 1) =>
        new(sigmas, null, snr, correctorSteps);

    /// <summary>Variance-preserving SDE over a discrete schedule (the DDPM chain).</summary>
    public static PredictorCorrectorSampler VariancePreserving(NoiseSchedule schedule, double snr = 0.16, int correctorSteps = 1) =>
        new(null, schedule, snr, correctorSteps);

    /// <inheritdoc/>
    public override string Name => "pc";
    /// <inheritdoc/>
    public override IReadOnlyList<NoiseLevel> Levels => levels;
    /// <inheritdoc/>
    public override int EvaluationsFrom(int first) => (levels.Length - first) * (1 + correctorSteps);

    /// <inheritdoc/>
    protected override Tensor Walk(IDenoiser model, Run run, Tensor x, int first)
    {
        int n = levels.Length;
        for (int i = first; i < n; i++)
        {
            using var scope = NewDisposeScope();
            NoiseLevel level;
            double langevinAlpha;
            if (sigmas != null) { level = NoiseLevel.VarianceExploding(sigmas[i]); langevinAlpha = 1; }
            else { int t = n - 1 - i; level = NoiseLevel.Of(schedule!, t); langevinAlpha = schedule!.Alphas[t]; }
            // Corrector: Langevin steps at this level, step size set by the target signal-to-noise ratio.
            var y = x;
            for (int c = 0; c < correctorSteps; c++)
            {
                var g = run.Score(model, y, level);
                var z = run.Noise();
                double gNorm = g.reshape(g.shape[0], -1).norm(1).mean().item<float>();
                double zNorm = z.reshape(z.shape[0], -1).norm(1).mean().item<float>();
                double eps = 2 * langevinAlpha * Math.Pow(snr * zNorm / Math.Max(gNorm, 1e-12), 2);
                y = y + eps * g + Math.Sqrt(2 * eps) * z;
            }
            // Predictor: one reverse-diffusion step of the discretised SDE.
            var score = run.Score(model, y, level);
            Tensor mean;
            double noiseScale;
            bool last = i == n - 1;
            if (sigmas != null)
            {
                double next = last ? 0 : sigmas[i + 1];
                double dv = sigmas[i] * sigmas[i] - next * next;
                mean = y + dv * score;
                noiseScale = Math.Sqrt(dv);
            }
            else
            {
                int t = n - 1 - i;
                double beta = schedule!.Betas[t];
                mean = (2 - Math.Sqrt(1 - beta)) * y + beta * score;
                noiseScale = Math.Sqrt(beta);
            }
            Run.Replace(ref x, last ? mean : mean + noiseScale * run.Noise());
        }
        return x;
    }
}

/// <summary>
/// The probability-flow ODE, dx̃/dσ = ε̂ = (x̃ − D)/σ with x̃ = x / a, σ = s / a and D the denoiser's x̂₀, solved with Heun's
/// method in the variables y = x̃/σ and λ = 1/σ, where it reads dy/dλ = D. Each step is then a convex combination,
/// x̃' = (σ'/σ)·x̃ + (1 − σ'/σ)·D̄, with D̄ = D at the Euler predictor (which is DDIM's step) and the mean of D at both ends for
/// the corrector, so it stays stable when one step spans orders of magnitude of σ (a cosine schedule's first step falls
/// from σ ≈ 20,000 to 15, where Heun in σ itself diverges). Walks a list of noise levels from the noisiest down, then
/// steps to σ = 0 (x̃ = D).
/// </summary>
public sealed class ProbabilityFlowSampler : SamplerBase
{
    readonly NoiseLevel[] levels;

    /// <summary>An ODE over explicit levels, ordered from the noisiest.</summary>
    public ProbabilityFlowSampler(NoiseLevel[] levelsNoisiestFirst) { levels = levelsNoisiestFirst; }

    /// <summary>The ODE over <paramref name="steps"/> evenly spaced timesteps of a variance-preserving schedule.</summary>
    public static ProbabilityFlowSampler ForSchedule(NoiseSchedule schedule, int steps)
    {
        var sub = schedule.Respace(steps);
        return new(LevelsOf(sub));
    }

    /// <summary>The ODE over variance-exploding σ levels (large to small).</summary>
    public static ProbabilityFlowSampler VarianceExploding(double[] sigmas) => new(sigmas.Select(NoiseLevel.VarianceExploding).ToArray());

    /// <inheritdoc/>
    public override string Name => "ode";
    /// <inheritdoc/>
    public override IReadOnlyList<NoiseLevel> Levels => levels;
    /// <inheritdoc/>
    public override int EvaluationsFrom(int first) => 2 * (levels.Length - first) - 1;

    /// <inheritdoc/>
    protected override Tensor Walk(IDenoiser model, Run run, Tensor x, int first)
    {
        Tensor xs;
        using (var s0 = NewDisposeScope()) xs = (x / levels[first].SignalScale).MoveToOuterDisposeScope();   // x̃ = x / a
        x.Dispose();
        for (int i = first; i < levels.Length; i++)
        {
            using var scope = NewDisposeScope();
            var l = levels[i];
            var d = xs - l.Sigma * run.Epsilon(model, xs * l.SignalScale, l);   // D = x̃ − σ·ε̂
            if (i == levels.Length - 1)
            {
                Run.Replace(ref xs, d);
                break;
            }
            var ln = levels[i + 1];
            double r = ln.Sigma / l.Sigma;
            var xEuler = r * xs + (1 - r) * d;
            var d2 = xEuler - ln.Sigma * run.Epsilon(model, xEuler * ln.SignalScale, ln);
            Run.Replace(ref xs, r * xs + (1 - r) * 0.5 * (d + d2));
        }
        return xs;
    }
}
