using WaveGradSharp.Diffusion;
using static TorchSharp.torch;

namespace WaveGradSharp.Imaging;

/// <summary>How image networks see a noise level: the variance-preserving frame and ln σ.</summary>
static class NoiseFrame
{
    /// <summary>The factor that takes x = a·x_0 + s·ε into the variance-preserving frame: 1 / (a·√(1 + σ²)).</summary>
    public static double VpScale(NoiseLevel l) => 1 / (l.SignalScale * Math.Sqrt(1 + l.Sigma * l.Sigma));

    /// <summary>ln σ_t = ln(√(1 − ᾱ_t) / √ᾱ_t) of every step of a schedule, float32 [T], for gathering by timestep.</summary>
    public static Tensor LogSigmas(NoiseSchedule s) =>
        tensor(s.SqrtOneMinusAlphasCumprod.Zip(s.SqrtAlphasCumprod, (n, a) => (float)Math.Log(n / a)).ToArray());
}

/// <summary>
/// A <see cref="UNet"/> seen as the schedule engine's <see cref="IDenoiser"/>, at any noise level, variance
/// preserving or exploding. With x = a·x_0 + s·ε and σ = s/a:
/// ε- and hybrid networks read x/(a·√(1+σ²)) (the variance-preserving frame they were trained in) and predict ε,
/// which is the same in every frame; score networks (NCSN) read x/a and their output divided by σ is the score
/// of x/a, so the score of x is that divided by a. Every network is conditioned on ln σ.
/// </summary>
public sealed class UNetDenoiser(UNet net, Tensor? classes) : IVarianceDenoiser
{
    /// <summary>The network.</summary>
    public UNet Net { get; } = net;

    /// <inheritdoc/>
    public Prediction Predicts => Net.Config.Objective == ImageObjective.Score ? Prediction.Score : Prediction.Epsilon;

    /// <summary>The class per sample (null: the null class, i.e. unconditional).</summary>
    public Tensor? Classes { get; } = classes;

    /// <inheritdoc/>
    public Tensor Predict(Tensor xt, NoiseLevel level) => PredictWithVariance(xt, level).Prediction;

    /// <inheritdoc/>
    public (Tensor Prediction, Tensor VarianceInterp) PredictWithVariance(Tensor xt, NoiseLevel level)
    {
        using var scope = NewDisposeScope();
        var (input, lnSigma, y) = Inputs(Net.Config, xt, level, Classes);
        var outp = Net.call(input, lnSigma, y);
        int c = Net.Config.Channels;
        Tensor pred = Net.Config.Objective == ImageObjective.Score
            ? outp / (level.Sigma * level.SignalScale)
            : outp[.., ..c];
        var v = Net.Config.LearnSigma ? outp[.., c..] : zeros_like(pred);
        return (pred.MoveToOuterDisposeScope(), v.MoveToOuterDisposeScope());
    }

    /// <summary>The network's inputs for x at a level: the rescaled image, ln σ per sample, and the classes.</summary>
    internal static (Tensor Input, Tensor LnSigma, Tensor Classes) Inputs(UNetConfig cfg, Tensor xt, NoiseLevel level, Tensor? classes)
    {
        double sigma = level.Sigma;
        if (!(sigma > 0) || !double.IsFinite(sigma)) throw new ArgumentException($"noise level σ = {sigma} is not positive and finite");
        double scale = cfg.Objective == ImageObjective.Score ? 1 / level.SignalScale : NoiseFrame.VpScale(level);
        long b = xt.shape[0];
        var ln = full([b], Math.Log(sigma), ScalarType.Float32, device: xt.device);
        var y = classes ?? full([b], (long)cfg.Classes, ScalarType.Int64, device: xt.device);
        if (y.shape[0] != b) throw new ArgumentException($"{y.shape[0]} class labels for a batch of {b}");
        return (xt * scale, ln, y.to(xt.device));
    }
}

/// <summary>
/// Classifier guidance (Dhariwal and Nichol 2021): ε̃ = ε − w·s·∇_x log p(y | x_t), with s the level's noise
/// standard deviation, so that the guided score is ∇ log p(x_t) + w·∇ log p(y | x_t). The classifier is a
/// noise-aware <see cref="DigitClassifier"/> that sees x_t in the variance-preserving frame. Any sampler steered by
/// it follows the class; an external model (CLIP) steers a diffusion model toward a prompt the same way.
/// </summary>
public sealed class ClassifierGuidance(IDenoiser inner, DigitClassifier classifier, Tensor classes, double scale) : IVarianceDenoiser
{
    /// <inheritdoc/>
    public Prediction Predicts => Prediction.Epsilon;

    /// <inheritdoc/>
    public Tensor Predict(Tensor xt, NoiseLevel level)
    {
        using var scope = NewDisposeScope();
        return Guided(inner.PredictEpsilon(xt, level), xt, level).MoveToOuterDisposeScope();
    }

    /// <inheritdoc/>
    public (Tensor Prediction, Tensor VarianceInterp) PredictWithVariance(Tensor xt, NoiseLevel level)
    {
        var vd = inner.WithVariance();
        using var scope = NewDisposeScope();
        var (p, v) = vd.PredictWithVariance(xt, level);
        var eps = Guided(Parameterisation.ToEpsilon(p, vd.Predicts, xt, level), xt, level);
        return (eps.MoveToOuterDisposeScope(), v.MoveToOuterDisposeScope());
    }

    /// <summary>ε − S·s·∇ log p(y | x_t): the guided ε.</summary>
    Tensor Guided(Tensor eps, Tensor xt, NoiseLevel level) =>
        scale == 0 ? eps : eps - scale * level.NoiseStd * LogProbGradient(classifier, xt, level, classes);

    /// <summary>∇_x Σ log p(y_i | x_i) at a noise level.</summary>
    public static Tensor LogProbGradient(DigitClassifier classifier, Tensor xt, NoiseLevel level, Tensor classes)
    {
        using var scope = NewDisposeScope();
        using var grad = enable_grad();
        var x = xt.detach().requires_grad_(true);
        double sigma = level.Sigma;
        var input = x * NoiseFrame.VpScale(level);
        var ln = full([x.shape[0]], Math.Log(sigma), ScalarType.Float32, device: x.device);
        var logp = nn.functional.log_softmax(classifier.call(input, ln), 1).gather(1, classes.to(x.device).unsqueeze(1)).sum();
        var g = autograd.grad([logp], [x])[0];
        return g.detach().MoveToOuterDisposeScope();
    }
}

/// <summary>Records x_t of the first sample at every model evaluation (for a trajectory strip), in the variance-preserving frame.</summary>
public sealed class RecordingDenoiser(IDenoiser inner) : IVarianceDenoiser
{
    /// <summary>(noise std of the frame, x_t of sample 0 as [C, H, W]) per evaluation.</summary>
    public List<(double Sigma, Tensor Image)> Frames { get; } = [];

    /// <inheritdoc/>
    public Prediction Predicts => inner.Predicts;

    /// <inheritdoc/>
    public Tensor Predict(Tensor xt, NoiseLevel level)
    {
        Record(xt, level);
        return inner.Predict(xt, level);
    }

    /// <inheritdoc/>
    public (Tensor Prediction, Tensor VarianceInterp) PredictWithVariance(Tensor xt, NoiseLevel level)
    {
        var vd = inner.WithVariance();
        Record(xt, level);
        return vd.PredictWithVariance(xt, level);
    }

    void Record(Tensor xt, NoiseLevel level) =>
        Frames.Add((level.Sigma, (xt[0] * NoiseFrame.VpScale(level)).detach().cpu().clone().DetachFromDisposeScope()));
}
