using TorchSharp;
using static TorchSharp.torch;

namespace WaveGradSharp.Diffusion;

/// <summary>Regression norm of a denoising loss.</summary>
public enum LossNorm
{
    /// <summary>Mean absolute error (WaveGrad).</summary>
    L1,
    /// <summary>Mean squared error (DDPM's L_simple).</summary>
    L2,
}

/// <summary>Diffusion training losses.</summary>
public static class Losses
{
    /// <summary>Mean L1 or L2 distance between prediction and target (any shape).</summary>
    public static Tensor Regression(Tensor prediction, Tensor target, LossNorm norm) => norm switch
    {
        LossNorm.L1 => nn.functional.l1_loss(prediction, target),
        _ => nn.functional.mse_loss(prediction, target),
    };

    /// <summary>
    /// The x̂₀ error of an x₀-predicting network in units of its preconditioning's c_out (<see cref="Preconditioning"/>), where
    /// the raw network's regression target has unit variance at every level: L2 is the mean of λ·(x̂₀ − x₀)² with
    /// λ = 1/c_out² (<see cref="Preconditioning.LossWeight"/>, EDM's weighting), L1 the mean of √λ·|x̂₀ − x₀|. At the smallest
    /// levels λ is about 1/s² (a million at s = 0.001), so an error the preconditioning does not scale by c_out (a gain on the
    /// noisy input) makes rare, huge squared terms; the L1 form grows with them only linearly. <paramref name="a"/> is √ᾱ,
    /// broadcast against the batch ([B, 1] for [B, T] waveforms).
    /// </summary>
    public static Tensor PreconditionedX0(Tensor prediction, Tensor target, Tensor a, double sigmaData, LossNorm norm)
    {
        var weight = Preconditioning.LossWeight(a, sigmaData);
        return norm == LossNorm.L1 ? (weight.sqrt() * (prediction - target).abs()).mean() : (weight * (prediction - target).square()).mean();
    }

    /// <summary>KL(N(m1, e^{lv1}) ‖ N(m2, e^{lv2})), elementwise, in nats.</summary>
    public static Tensor NormalKl(Tensor mean1, Tensor logVar1, Tensor mean2, Tensor logVar2) =>
        0.5 * (-1.0 + logVar2 - logVar1 + (logVar1 - logVar2).exp() + (mean1 - mean2) * (mean1 - mean2) * (-logVar2).exp());

    /// <summary>Standard normal CDF, by the tanh approximation improved-DDPM uses.</summary>
    static Tensor ApproxStandardNormalCdf(Tensor x) =>
        0.5 * (1.0 + tanh(Math.Sqrt(2.0 / Math.PI) * (x + 0.044715 * x * x * x)));

    /// <summary>
    /// Log-likelihood of data x ∈ [−1, 1] quantised to 256 levels under N(mean, e^{logScale·2}), elementwise, in nats
    /// (the decoder term L_0 of DDPM for 8-bit images).
    /// </summary>
    public static Tensor DiscretizedGaussianLogLikelihood(Tensor x, Tensor mean, Tensor logScale)
    {
        using var scope = NewDisposeScope();
        var centered = x - mean;
        var invStd = (-logScale).exp();
        var cdfPlus = ApproxStandardNormalCdf(invStd * (centered + 1.0 / 255.0));
        var cdfMin = ApproxStandardNormalCdf(invStd * (centered - 1.0 / 255.0));
        var logCdfPlus = cdfPlus.clamp(min: 1e-12).log();
        var logOneMinusCdfMin = (1.0 - cdfMin).clamp(min: 1e-12).log();
        var cdfDelta = cdfPlus - cdfMin;
        var mid = cdfDelta.clamp(min: 1e-12).log();
        var result = where(x < -0.999, logCdfPlus, where(x > 0.999, logOneMinusCdfMin, mid));
        return result.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// improved-DDPM's hybrid loss L_simple + λ·L_vlb for a model that predicts ε and a variance interpolation
    /// v ∈ [−1, 1]. The L_vlb term sees the mean through a stopped gradient, so it trains only the variance.
    /// x0, xt, eps, epsPred and varInterp are [B, ...]; t is int64 [B]. L_vlb is in bits per dimension.
    /// </summary>
    public static (Tensor Total, Tensor Simple, Tensor Vlb) Hybrid(ForwardProcess q, Tensor x0, Tensor xt, Tensor t,
        Tensor eps, Tensor epsPred, Tensor varInterp, double lambda = 0.001)
    {
        using var scope = NewDisposeScope();
        var s = q.Schedule;
        var simple = nn.functional.mse_loss(epsPred, eps);
        var (trueMean, _, trueLogVar) = q.Posterior(x0, xt, t);
        var x0Pred = Parameterisation.X0FromEpsilon(xt, epsPred.detach(), ForwardProcess.Gather(s.SqrtAlphasCumprod, t, xt),
            ForwardProcess.Gather(s.SqrtOneMinusAlphasCumprod, t, xt));
        var (modelMean, _, _) = q.Posterior(x0Pred, xt, t);
        var logVar = LearnedLogVariance(s, varInterp, t);
        var dims = Enumerable.Range(1, (int)x0.dim() - 1).Select(i => (long)i).ToArray();
        var kl = NormalKl(trueMean, trueLogVar, modelMean, logVar).mean(dims) / Math.Log(2.0);
        var nll = -DiscretizedGaussianLogLikelihood(x0, modelMean, 0.5 * logVar).mean(dims) / Math.Log(2.0);
        var vlb = where(t == 0, nll, kl).mean();
        var total = simple + lambda * vlb;
        return (total.MoveToOuterDisposeScope(), simple.MoveToOuterDisposeScope(), vlb.MoveToOuterDisposeScope());
    }

    /// <summary>log σ² = f·log β_t + (1 − f)·log β̃_t with f = (v + 1)/2 (improved-DDPM's learned range).</summary>
    public static Tensor LearnedLogVariance(NoiseSchedule s, Tensor varInterp, Tensor t)
    {
        using var scope = NewDisposeScope();
        var minLog = ForwardProcess.Gather(s.PosteriorLogVarianceClipped, t, varInterp);
        var maxLog = ForwardProcess.Gather(s.Betas.Select(b => Math.Log(b)).ToArray(), t, varInterp);
        var frac = (varInterp + 1) / 2;
        return (frac * maxLog + (1 - frac) * minLog).MoveToOuterDisposeScope();
    }
}
