using TorchSharp;
using static TorchSharp.torch;

namespace WaveGradSharp.Diffusion;

/// <summary>What a denoiser outputs.</summary>
public enum Prediction
{
    /// <summary>The noise ε that was added (DDPM, WaveGrad).</summary>
    Epsilon,
    /// <summary>The clean sample x_0.</summary>
    X0,
    /// <summary>v = a·ε − s·x_0 (Salimans and Ho), for variance-preserving processes.</summary>
    V,
    /// <summary>The score ∇ log p(x_t) (NCSN).</summary>
    Score,
}

/// <summary>
/// The marginal of the forward process at one step: x_t = <see cref="SignalScale"/>·x_0 + <see cref="NoiseStd"/>·ε.
/// Variance-preserving (DDPM, WaveGrad): a = √ᾱ, s = √(1 − ᾱ). Variance-exploding (NCSN): a = 1, s = σ.
/// <see cref="Timestep"/> is the index in the training schedule for networks conditioned on it (NaN when the step
/// has none, as in WaveGrad's few-step schedules, whose networks read √ᾱ instead).
/// </summary>
public readonly record struct NoiseLevel(double SignalScale, double NoiseStd, double Timestep)
{
    /// <summary>The variance-preserving level of step t of a schedule.</summary>
    public static NoiseLevel Of(NoiseSchedule schedule, int t) =>
        new(schedule.SqrtAlphasCumprod[t], schedule.SqrtOneMinusAlphasCumprod[t], schedule.Timesteps[t]);

    /// <summary>A variance-exploding level with noise standard deviation σ.</summary>
    public static NoiseLevel VarianceExploding(double sigma) => new(1, sigma, double.NaN);

    /// <summary>σ in the variance-exploding frame: s / a.</summary>
    public double Sigma => NoiseStd / SignalScale;

    /// <summary>True for a variance-exploding level (a = 1), whose pure-noise state is N(0, σ²) rather than N(0, 1).</summary>
    public bool IsVarianceExploding => Math.Abs(SignalScale - 1) < 1e-12;
}

/// <summary>
/// A model of the data seen through noise: given x_t and its noise level it predicts ε, x_0, v or the score.
/// Conditioning (a mel spectrogram, a class) is held by the implementation. Shapes: x_t is [B, ...], the output
/// has the same shape.
/// </summary>
public interface IDenoiser
{
    /// <summary>What <see cref="Predict"/> returns.</summary>
    Prediction Predicts { get; }

    /// <summary>The prediction for x_t at one noise level, shared by the whole batch.</summary>
    Tensor Predict(Tensor xt, NoiseLevel level);
}

/// <summary>A denoiser that also outputs improved-DDPM's learned variance interpolation v ∈ [−1, 1]
/// (log σ² = (v+1)/2 · log β_t + (1 − (v+1)/2) · log β̃_t).</summary>
public interface IVarianceDenoiser : IDenoiser
{
    /// <summary>The prediction and the variance interpolation, both shaped like x_t.</summary>
    (Tensor Prediction, Tensor VarianceInterp) PredictWithVariance(Tensor xt, NoiseLevel level);
}

/// <summary>Conversions between the four parameterisations at a given noise level.</summary>
public static class Parameterisation
{
    /// <summary>Converts a prediction of kind <paramref name="from"/> into ε.</summary>
    public static Tensor ToEpsilon(Tensor pred, Prediction from, Tensor xt, NoiseLevel l) => from switch
    {
        Prediction.Epsilon => pred,
        Prediction.X0 => (xt - l.SignalScale * pred) / l.NoiseStd,
        Prediction.V => RequireVp(l).NoiseStd * xt + l.SignalScale * pred,
        Prediction.Score => -l.NoiseStd * pred,
        _ => throw new ArgumentOutOfRangeException(nameof(from)),
    };

    /// <summary>Converts ε into a prediction of kind <paramref name="to"/>.</summary>
    public static Tensor FromEpsilon(Tensor eps, Prediction to, Tensor xt, NoiseLevel l) => to switch
    {
        Prediction.Epsilon => eps,
        Prediction.X0 => X0FromEpsilon(xt, eps, l),
        Prediction.V => RequireVp(l).SignalScale * eps - l.NoiseStd * X0FromEpsilon(xt, eps, l),
        Prediction.Score => -eps / l.NoiseStd,
        _ => throw new ArgumentOutOfRangeException(nameof(to)),
    };

    /// <summary>x̂_0 = (x_t − s·ε̂)/a, with the signal scale a and noise std s as tensors that broadcast against x_t
    /// (per-example levels [B, 1, …] or 0-dim): the one place this formula is written.</summary>
    public static Tensor X0FromEpsilon(Tensor xt, Tensor eps, Tensor signalScale, Tensor noiseStd) => (xt - noiseStd * eps) / signalScale;

    /// <summary>x̂_0 from ε̂ at one noise level.</summary>
    public static Tensor X0FromEpsilon(Tensor xt, Tensor eps, NoiseLevel l)
    {
        using var a = tensor(l.SignalScale);
        using var s = tensor(l.NoiseStd);
        return X0FromEpsilon(xt, eps, a, s);
    }

    /// <summary>Converts between any two parameterisations.</summary>
    public static Tensor Convert(Tensor pred, Prediction from, Prediction to, Tensor xt, NoiseLevel l) =>
        from == to ? pred : FromEpsilon(ToEpsilon(pred, from, xt, l), to, xt, l);

    /// <summary>The denoiser's output as ε.</summary>
    public static Tensor PredictEpsilon(this IDenoiser d, Tensor xt, NoiseLevel l) => ToEpsilon(d.Predict(xt, l), d.Predicts, xt, l);

    /// <summary>The denoiser's output as the score ∇ log p(x_t).</summary>
    public static Tensor PredictScore(this IDenoiser d, Tensor xt, NoiseLevel l) =>
        d.Predicts == Prediction.Score ? d.Predict(xt, l) : -d.PredictEpsilon(xt, l) / l.NoiseStd;

    /// <summary>The denoiser as one with a learned variance (a sampler that uses the variance, or a wrapper passing it on, needs one).</summary>
    public static IVarianceDenoiser WithVariance(this IDenoiser d) =>
        d as IVarianceDenoiser ?? throw new InvalidOperationException("learned variance needs a model with a variance head");

    /// <summary>The denoiser's output as x_0.</summary>
    public static Tensor PredictX0(this IDenoiser d, Tensor xt, NoiseLevel l) => Convert(d.Predict(xt, l), d.Predicts, Prediction.X0, xt, l);

    static NoiseLevel RequireVp(NoiseLevel l)
    {
        if (Math.Abs(l.SignalScale * l.SignalScale + l.NoiseStd * l.NoiseStd - 1) > 1e-6)
            throw new ArgumentException("v-prediction needs a variance-preserving level (a² + s² = 1)");
        return l;
    }
}

/// <summary>
/// Classifier-free guidance over any pair of denoisers that share a parameterisation:
/// ε = ε_u + w·(ε_c − ε_u). w = 0 is the unconditional model, w = 1 the conditional one, w &gt; 1 guides harder.
/// A learned variance, where the models have one, is the conditional model's.
/// </summary>
public sealed class ClassifierFreeGuidance(IDenoiser conditional, IDenoiser unconditional, double weight) : IVarianceDenoiser
{
    /// <inheritdoc/>
    public Prediction Predicts => Prediction.Epsilon;

    /// <inheritdoc/>
    public Tensor Predict(Tensor xt, NoiseLevel level)
    {
        using var scope = NewDisposeScope();
        var eu = unconditional.PredictEpsilon(xt, level);
        if (weight == 0) return eu.MoveToOuterDisposeScope();
        return Guided(eu, conditional.PredictEpsilon(xt, level)).MoveToOuterDisposeScope();
    }

    /// <inheritdoc/>
    public (Tensor Prediction, Tensor VarianceInterp) PredictWithVariance(Tensor xt, NoiseLevel level)
    {
        IVarianceDenoiser vd = conditional.WithVariance(), ud = unconditional.WithVariance();
        using var scope = NewDisposeScope();
        var (pu, vu) = ud.PredictWithVariance(xt, level);
        var eu = Parameterisation.ToEpsilon(pu, ud.Predicts, xt, level);
        if (weight == 0) return (eu.MoveToOuterDisposeScope(), vu.MoveToOuterDisposeScope());
        var (pc, vc) = vd.PredictWithVariance(xt, level);
        return (Guided(eu, Parameterisation.ToEpsilon(pc, vd.Predicts, xt, level)).MoveToOuterDisposeScope(), vc.MoveToOuterDisposeScope());
    }

    /// <summary>ε_u + w·(ε_c − ε_u).</summary>
    Tensor Guided(Tensor eu, Tensor ec) => eu + weight * (ec - eu);
}

/// <summary>
/// Clips a denoiser's x̂₀ to [−bound, bound] for data known to lie there (images in [−1, 1]): improved-diffusion's
/// clip_denoised, as a denoiser, so that every sampler (ancestral, DDIM, the probability-flow ODE, Langevin through
/// the score) can walk toward a clean estimate inside the data range. Passes a learned variance through.
/// </summary>
public sealed class ClippedX0(IDenoiser inner, double bound = 1) : IVarianceDenoiser
{
    /// <inheritdoc/>
    public Prediction Predicts => Prediction.X0;

    /// <inheritdoc/>
    public Tensor Predict(Tensor xt, NoiseLevel level)
    {
        using var scope = NewDisposeScope();
        return inner.PredictX0(xt, level).clamp(-bound, bound).MoveToOuterDisposeScope();
    }

    /// <inheritdoc/>
    public (Tensor Prediction, Tensor VarianceInterp) PredictWithVariance(Tensor xt, NoiseLevel level)
    {
        var vd = inner.WithVariance();
        using var scope = NewDisposeScope();
        var (p, v) = vd.PredictWithVariance(xt, level);
        var x0 = Parameterisation.Convert(p, vd.Predicts, Prediction.X0, xt, level).clamp(-bound, bound);
        return (x0.MoveToOuterDisposeScope(), v.MoveToOuterDisposeScope());
    }
}

/// <summary>
/// The exact denoiser for data whose every element is drawn i.i.d. from a 1-D Gaussian mixture
/// Σ_k w_k N(μ_k, τ_k²). Under x_t = a·x_0 + s·ε, x_t is the mixture Σ_k w_k N(a μ_k, a² τ_k² + s²), whose
/// score is known in closed form. Used to prove the samplers before any network exists.
/// </summary>
public sealed class GaussianMixtureDenoiser : IDenoiser
{
    /// <summary>Component weights (sum to 1).</summary>
    public double[] Weights { get; }
    /// <summary>Component means μ_k.</summary>
    public double[] Means { get; }
    /// <summary>Component standard deviations τ_k.</summary>
    public double[] Stds { get; }

    /// <summary>A mixture; weights are normalised.</summary>
    public GaussianMixtureDenoiser(double[] weights, double[] means, double[] stds)
    {
        if (weights.Length == 0 || weights.Length != means.Length || means.Length != stds.Length)
            throw new ArgumentException("weights, means and stds must be non-empty and of equal length");
        double sum = weights.Sum();
        Weights = weights.Select(w => w / sum).ToArray();
        Means = means.ToArray();
        Stds = stds.ToArray();
    }

    /// <inheritdoc/>
    public Prediction Predicts => Prediction.Score;

    /// <summary>The mixture's mean Σ w μ.</summary>
    public double Mean => Weights.Zip(Means, (w, m) => w * m).Sum();

    /// <summary>The mixture's variance Σ w (τ² + μ²) − mean².</summary>
    public double Variance => Enumerable.Range(0, Weights.Length).Sum(k => Weights[k] * (Stds[k] * Stds[k] + Means[k] * Means[k])) - Mean * Mean;

    /// <summary>Exact draws of the mixture (float32): a component by its weight, then its Gaussian.</summary>
    public Tensor Draw(long[] shape, Generator rng)
    {
        using var scope = NewDisposeScope();
        var u = rand(shape, generator: rng, dtype: ScalarType.Float64);
        var z = randn(shape, generator: rng, dtype: ScalarType.Float64);
        var x = zeros(shape, ScalarType.Float64);
        double below = 0;
        for (int k = 0; k < Weights.Length; k++)
        {
            var pick = (u >= below).logical_and(k == Weights.Length - 1 ? u <= 1 : u < below + Weights[k]);
            x = where(pick, Means[k] + Stds[k] * z, x);
            below += Weights[k];
        }
        return x.to_type(ScalarType.Float32).MoveToOuterDisposeScope();
    }

    /// <summary>Posterior component responsibilities r_k(x_t), shape [K, ...x_t].</summary>
    public Tensor Responsibilities(Tensor xt, NoiseLevel l)
    {
        using var scope = NewDisposeScope();
        var x = xt.to_type(ScalarType.Float64);
        var logp = new Tensor[Weights.Length];
        for (int k = 0; k < Weights.Length; k++)
        {
            double v = l.SignalScale * l.SignalScale * Stds[k] * Stds[k] + l.NoiseStd * l.NoiseStd;
            var d = x - l.SignalScale * Means[k];
            logp[k] = Math.Log(Weights[k]) - 0.5 * Math.Log(2 * Math.PI * v) - d * d / (2 * v);
        }
        return softmax(stack(logp), 0).MoveToOuterDisposeScope();
    }

    /// <inheritdoc/>
    public Tensor Predict(Tensor xt, NoiseLevel l)
    {
        using var scope = NewDisposeScope();
        var x = xt.to_type(ScalarType.Float64);
        var r = Responsibilities(x, l);
        var score = zeros_like(x);
        for (int k = 0; k < Weights.Length; k++)
        {
            double v = l.SignalScale * l.SignalScale * Stds[k] * Stds[k] + l.NoiseStd * l.NoiseStd;
            score -= r[k] * (x - l.SignalScale * Means[k]) / v;
        }
        return score.to_type(xt.dtype).MoveToOuterDisposeScope();
    }
}
