using TorchSharp;
using static TorchSharp.torch;

namespace WaveGradSharp.Diffusion;

/// <summary>
/// The forward (noising) process q(x_t | x_0) and the posterior q(x_{t−1} | x_t, x_0) of a schedule, batched:
/// x_0 is [B, ...]; per-example timesteps t are an int64 tensor [B]; per-example continuous levels are float [B].
/// </summary>
public sealed class ForwardProcess(NoiseSchedule schedule)
{
    /// <summary>The schedule this process follows.</summary>
    public NoiseSchedule Schedule { get; } = schedule;

    /// <summary>Gathers schedule values at timesteps t and shapes them [B, 1, 1, ...] to broadcast against <paramref name="like"/>.</summary>
    public static Tensor Gather(double[] values, Tensor t, Tensor like)
    {
        using var scope = NewDisposeScope();
        var table = tensor(values, ScalarType.Float64, device: t.device);
        var g = table.index_select(0, t.to_type(ScalarType.Int64)).to_type(like.dtype);
        var shape = new long[like.dim()];
        Array.Fill(shape, 1L);
        shape[0] = like.shape[0];
        return g.reshape(shape).MoveToOuterDisposeScope();
    }

    /// <summary>x_t = √ᾱ_t x_0 + √(1 − ᾱ_t) ε at integer timesteps t [B].</summary>
    public Tensor Sample(Tensor x0, Tensor t, Tensor noise)
    {
        using var scope = NewDisposeScope();
        return (Gather(Schedule.SqrtAlphasCumprod, t, x0) * x0 + Gather(Schedule.SqrtOneMinusAlphasCumprod, t, x0) * noise)
            .MoveToOuterDisposeScope();
    }

    /// <summary>x = l·x_0 + √(1 − l²)·ε at continuous noise levels l = √ᾱ [B] (WaveGrad).</summary>
    public static Tensor SampleContinuous(Tensor x0, Tensor level, Tensor noise)
    {
        using var scope = NewDisposeScope();
        var shape = new long[x0.dim()];
        Array.Fill(shape, 1L);
        shape[0] = x0.shape[0];
        var l = level.to_type(x0.dtype).reshape(shape);
        return (l * x0 + (1 - l * l).sqrt() * noise).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// WaveGrad's continuous noise levels for a batch: for each example a step s ~ U{1..T} (U{1..<paramref name="maxStep"/>}
    /// when given), then √ᾱ uniform between the adjacent levels l_{s−1} and l_s (l_0 = 1). Returns float32 [B].
    /// </summary>
    public Tensor SampleContinuousLevels(int batch, Generator rng, Device? device = null, int? maxStep = null)
    {
        using var scope = NewDisposeScope();
        int top = maxStep ?? Schedule.Steps;
        if (top < 1 || top > Schedule.Steps) throw new ArgumentOutOfRangeException(nameof(maxStep), $"must be in [1, {Schedule.Steps}]");
        var s = randint(1, top + 1, [batch], generator: rng, dtype: ScalarType.Int64);
        var u = rand([batch], generator: rng, dtype: ScalarType.Float64);
        var levels = new double[Schedule.Steps + 1];
        levels[0] = 1;
        Array.Copy(Schedule.SqrtAlphasCumprod, 0, levels, 1, Schedule.Steps);
        var table = tensor(levels, ScalarType.Float64);
        var hi = table.index_select(0, s - 1);
        var lo = table.index_select(0, s);
        var l = (hi + u * (lo - hi)).to_type(ScalarType.Float32);
        return (device is null ? l : l.to(device)).MoveToOuterDisposeScope();
    }

    /// <summary>Mean, variance and clipped log-variance of q(x_{t−1} | x_t, x_0) at timesteps t [B].</summary>
    public (Tensor Mean, Tensor Variance, Tensor LogVariance) Posterior(Tensor x0, Tensor xt, Tensor t)
    {
        using var scope = NewDisposeScope();
        var mean = Gather(Schedule.PosteriorMeanCoef1, t, xt) * x0 + Gather(Schedule.PosteriorMeanCoef2, t, xt) * xt;
        var variance = Gather(Schedule.PosteriorVariance, t, xt).expand_as(xt);
        var logVar = Gather(Schedule.PosteriorLogVarianceClipped, t, xt).expand_as(xt);
        return (mean.MoveToOuterDisposeScope(), variance.MoveToOuterDisposeScope(), logVar.MoveToOuterDisposeScope());
    }
}
