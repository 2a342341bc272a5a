using TorchSharp;
using static TorchSharp.torch;

namespace WaveGradSharp.Diffusion;

/// <summary>
/// EDM's preconditioning (Karras et al. 2022, table 1) of an x₀-predicting network at variance-preserving levels: with
/// x̃ = x_t / a and σ = s / a, the denoiser is D(x_t) = c_skip·x̃ + c_out·F(c_in·x̃, c_noise), where F is the raw network. For
/// data of standard deviation σ_data, F = 0 already gives the posterior mean of Gaussian data, and F's regression target
/// (x₀ − c_skip·x̃)/c_out has unit variance at every level, so one network serves levels from σ ≈ 0.001 to σ ≈ 12.
/// Tensors broadcast against the batch (for example a [B, 1] per crop).
/// </summary>
/// <param name="Skip">c_skip = σ_data² / (σ² + σ_data²).</param>
/// <param name="Out">c_out = σ·σ_data / √(σ² + σ_data²).</param>
/// <param name="In">c_in = 1 / √(σ² + σ_data²).</param>
/// <param name="Noise">c_noise = ln(σ) / 4, what F is conditioned on.</param>
public sealed record Preconditioning(Tensor Skip, Tensor Out, Tensor In, Tensor Noise)
{
    /// <summary>The coefficients for signal scales <paramref name="a"/> (√ᾱ) of a variance-preserving process.</summary>
    public static Preconditioning Edm(Tensor a, double sigmaData)
    {
        var s = (1 - a * a).clamp_min(1e-12).sqrt();
        var sigma = s / a;
        var d2 = sigmaData * sigmaData;
        var norm = (sigma * sigma + d2).sqrt();
        return new Preconditioning(d2 / (sigma * sigma + d2), sigma * sigmaData / norm, 1 / norm, sigma.log() / 4);
    }

    /// <summary>
    /// The weight λ = 1 / c_out² of the squared x₀ error that makes it F's unit-variance regression,
    /// (s² + a²·σ_data²) / (s²·σ_data²); with σ_data = 1 it is 1/s², v-prediction's weighting.
    /// </summary>
    public static Tensor LossWeight(Tensor a, double sigmaData)
    {
        var s2 = (1 - a * a).clamp_min(1e-12);
        var d2 = sigmaData * sigmaData;
        return (s2 + a * a * d2) / (s2 * d2);
    }
}
