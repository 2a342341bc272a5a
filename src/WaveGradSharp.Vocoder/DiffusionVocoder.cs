using System.Text.Json;
using System.Text.Json.Nodes;
using TorchSharp;
using WaveGradSharp.Audio;
using WaveGradSharp.Core;
using WaveGradSharp.Diffusion;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace WaveGradSharp.Vocoder;

/// <summary>
/// The noise a diffusion vocoder draws, in training and sampling alike. <c>standard</c>: N(0, I), WaveGrad's.
/// <c>priorgrad</c>: N(0, Σ) with Σ = diag(σ²) following the mel's loudness (PriorGrad, Lee et al. 2022): per frame
/// σ_f = clamp(rms_m(mel magnitude_{m,f}) / <see cref="ReferenceLevel"/>, <see cref="MinStd"/>, 1), interpolated to the
/// samples, so quiet frames start nearly silent and the network only has to shape noise where there is sound.
/// </summary>
public sealed record NoisePrior
{
    /// <summary>"standard" or "priorgrad".</summary>
    public string Kind { get; init; } = "standard";
    /// <summary>The smallest σ (PriorGrad's 0.1).</summary>
    public double MinStd { get; init; } = 0.1;
    /// <summary>The RMS mel magnitude whose frames get σ = 1 (measured on the training corpus: a high percentile).</summary>
    public double ReferenceLevel { get; init; } = 1;

    /// <summary>WaveGrad's N(0, I).</summary>
    public static NoisePrior Standard { get; } = new();

    /// <summary>True for N(0, I).</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public bool IsStandard => Kind == "standard";

    /// <summary>The prior a card's <c>prior</c> field names (absent: standard); a bad field is an error naming <paramref name="source"/>.</summary>
    public static NoisePrior FromCard(JsonNode? node, MelConfig mel, string source)
    {
        if (node is null) return Standard;
        NoisePrior? p;
        try { p = node.Deserialize(CardJson.Default.NoisePrior); }
        catch (JsonException e) { throw new WaveGradException($"{source}: \"prior\" is malformed ({Text.FirstLine(e.Message)})"); }
        if (p is null || p.Kind is not ("standard" or "priorgrad")) throw new WaveGradException($"{source}: prior.kind must be standard or priorgrad");
        if (!(p.MinStd > 0 && p.MinStd <= 1) || !(p.ReferenceLevel > 0 && double.IsFinite(p.ReferenceLevel)))
            throw new WaveGradException($"{source}: prior needs 0 < min_std ≤ 1 and a finite reference_level > 0");
        return p;
    }

    /// <summary>The card's <c>prior</c> field.</summary>
    public JsonNode ToCard() => JsonSerializer.SerializeToNode(this, CardJson.Default.NoisePrior)!;

    /// <summary>The loudness of each frame the prior follows: rms over bands of the mel's magnitude, [B, F] for log-mels [B, n_mels, F].</summary>
    public static Tensor FrameLevel(Tensor logMels, MelConfig mel)
    {
        using var scope = NewDisposeScope();
        var lin = mel.Decompress(logMels.to_type(ScalarType.Float32));
        return (lin * lin).mean([1]).sqrt().MoveToOuterDisposeScope();
    }

    /// <summary>σ per sample, [B, F·hop], for log-mels [B, n_mels, F]; null for the standard prior. Frame f's σ sits at its
    /// centre (f + ½)·hop and is interpolated linearly between centres.</summary>
    public Tensor? SampleStd(Tensor logMels, MelConfig mel)
    {
        if (IsStandard) return null;
        using var scope = NewDisposeScope();
        var sigma = (FrameLevel(logMels, mel) / ReferenceLevel).clamp(MinStd, 1.0).unsqueeze(1);   // [B, 1, F]
        var up = F.interpolate(sigma, size: [logMels.shape[2] * mel.Hop], mode: InterpolationMode.Linear, align_corners: false);
        return up.squeeze(1).MoveToOuterDisposeScope();
    }
}

/// <summary>
/// A mel-conditioned denoising network as a diffusion vocoder: the network predicts ε for (x_t [B, T], mel [B, n_mels, T/hop],
/// √ᾱ [B]); a <see cref="NoisePrior"/> shapes the noise; any engine sampler walks its levels (the voice's default, or the
/// render's <see cref="SynthesisOptions.Sampler"/>), from noise or from the mel's Griffin-Lim waveform
/// (<see cref="SampleStart"/>), with optional Griffin-Lim consistency steps (<see cref="GriffinLimConsistency"/>). Noise is tied
/// to absolute sample positions, so streamed pieces match a one-shot render. Calls from several threads take turns on the one
/// network.
/// </summary>
public sealed class DiffusionVocoderModel : IVocoderModel
{
    readonly object gate = new();
    readonly nn.Module<Tensor, Tensor, Tensor, Tensor> network;
    readonly MelConfig mel;
    readonly NoisePrior prior;
    readonly ISampler defaultSampler;
    readonly Prediction predicts;

    /// <summary>Wraps a network on <paramref name="device"/> that takes and returns float32 (it may compute in bfloat16: see
    /// <see cref="WaveGradInference"/> on the CPU, <see cref="WaveGradNet.UseBf16UpsamplingPath"/> on CUDA) and predicts
    /// <paramref name="predicts"/>; the sampler's arithmetic is float32.</summary>
    public DiffusionVocoderModel(nn.Module<Tensor, Tensor, Tensor, Tensor> network, MelConfig mel, NoisePrior prior, ISampler defaultSampler,
        Device device, Prediction predicts = Prediction.Epsilon)
    {
        this.network = network; this.mel = mel; this.prior = prior; this.defaultSampler = defaultSampler; this.predicts = predicts;
        Device = device;
    }

    /// <inheritdoc/>
    public Device Device { get; }
    /// <summary>The noise prior.</summary>
    public NoisePrior Prior => prior;

    /// <inheritdoc/>
    public bool UsesEstimate(SynthesisOptions options) =>
        (options.Start == SamplerStart.GriffinLim && !StartsFromConditioning(options)) || options.Consistency.Mode == ConsistencyMode.Substitute;

    /// <summary>Whether the network makes the Griffin-Lim start from its own conditioning (<see cref="IMelConditioned.GriffinLimStart"/>):
    /// a start from the phase gradients, for a network that holds that phase already.</summary>
    bool StartsFromConditioning(SynthesisOptions o) =>
        o.Start == SamplerStart.GriffinLim && o.StartPhase == PhaseStart.PhaseGradient && network is IMelConditioned { MakesGriffinLimStart: true };

    /// <inheritdoc/>
    public int Evaluations(SynthesisOptions options)
    {
        var sampler = options.Sampler ?? defaultSampler;
        return options.Start == SamplerStart.GriffinLim ? sampler.EvaluationsFrom(sampler.StartLevel(options.StartNoise)) : sampler.Evaluations;
    }

    /// <inheritdoc/>
    public float[][] Render(Tensor mels, RenderRequest r)
    {
        var o = r.Options;
        var sampler = o.Sampler ?? defaultSampler;
        lock (gate)
        {
            using var scope = NewDisposeScope();
            using var _ = no_grad();
            var m = mels.to_type(ScalarType.Float32).to(Device);
            var std = prior.SampleStd(m, mel);
            var positional = new PositionalNoise(o.Seed, r.SampleOffset);
            Func<long[], Tensor> noise = std is null ? positional.Next : shape => positional.Next(shape).to(Device) * std;
            var estimate = r.Estimate?.to_type(ScalarType.Float32).to(Device);
            var conditioned = new MelConditionedDenoiser(network, m, predicts, r.Continuation, r.SampleOffset / mel.Hop);
            var start = StartsFromConditioning(o) ? conditioned.GriffinLimStart(m.shape[2] * mel.Hop, o.StartIterations)
                : o.Start == SamplerStart.GriffinLim ? estimate : null;
            // A waveform lies in [−1, 1], so x̂₀ is clipped there (improved-diffusion's clip_denoised): the samplers that step
            // through x̂₀ (DDIM, the ODE) otherwise carry an early overshoot, divided by a small √ᾱ, to the end.
            IDenoiser denoiser = new ClippedX0(conditioned);
            if (o.Consistency.Mode != ConsistencyMode.None) denoiser = new GriffinLimConsistency(denoiser, m, mel, estimate, o.Consistency);
            if (o.Estimates is not null) denoiser = new EstimateReporter(denoiser, o.Estimates);
            var so = new SampleOptions
            {
                Device = Device, Progress = o.Progress, Cancellation = r.Cancellation, NoiseSource = noise,
                Start = start is null ? null : new SampleStart(start, o.StartNoise),
            };
            // Every sampler's output is clamped as WaveGrad's is after each step: a waveform lies in [−1, 1].
            var audio = sampler.Sample(denoiser, [m.shape[0], m.shape[2] * mel.Hop], so).clamp(-1, 1).cpu();
            return Enumerable.Range(0, (int)audio.shape[0]).Select(i => audio[i].data<float>().ToArray()).ToArray();
        }
    }

    /// <summary>Frees the network.</summary>
    public void Dispose() => network.Dispose();
}

/// <summary>A network that makes what it is conditioned on from the mels once per render rather than at every evaluation (the
/// sampler's evaluations all see the same mels).</summary>
public interface IMelConditioned
{
    /// <summary>The conditioning the network's forward takes in place of the mels [B, n_mels, F] (which it also takes as they are). A
    /// piece of a streamed render whose first frame is <paramref name="firstFrame"/> of the whole mel continues what the piece before
    /// it kept in <paramref name="continuation"/>.</summary>
    Tensor Conditioning(Tensor mels, PhaseContinuation? continuation = null, long firstFrame = 0);

    /// <summary>The waveforms [B, T] a training step teaches the network to make for this conditioning: the clean crops themselves,
    /// or a form of them that differs only in what the mel cannot tell (see <see cref="StftDenoiser.TrainingTarget"/>).</summary>
    Tensor TrainingTarget(Tensor audio, Tensor conditioning) => audio;

    /// <summary>Whether the conditioning holds the mels' least-squares magnitude and phase-gradient phase, from which
    /// <see cref="GriffinLimStart"/> makes the Griffin-Lim start without computing them again.</summary>
    bool MakesGriffinLimStart => false;

    /// <summary>The mels' Griffin-Lim waveforms [B, <paramref name="samples"/>] from the phase gradients after
    /// <paramref name="iterations"/> iterations (what <see cref="GriffinLim.FromMel"/> gives with <see cref="PhaseStart.PhaseGradient"/>),
    /// made from this conditioning (<see cref="MakesGriffinLimStart"/>).</summary>
    Tensor GriffinLimStart(Tensor conditioning, long samples, int iterations) =>
        throw new NotSupportedException("this network's conditioning holds no phase prior");
}

/// <summary>
/// The phase a streamed render's pieces hand on: each piece keeps the phase of its frames, and the next piece, which overlaps it
/// by the context frames, takes the overlap's phase as it is and integrates onward from it (as <see cref="GriffinLimStream"/>'s
/// windows do). Pieces whose phase each began from an arbitrary offset would disagree where they are cross-faded. One per
/// stream, used by one render at a time.
/// </summary>
public sealed class PhaseContinuation : IDisposable
{
    Tensor? phase;   // [B, bins, F] of the last piece
    long first;      // the whole mel's frame of its first column

    /// <summary>The kept phase of batch item <paramref name="b"/> from frame <paramref name="from"/> of the whole mel to the end of the
    /// last piece, at most <paramref name="most"/> frames; null when the last piece does not reach that far or there is none.</summary>
    public Tensor? Leading(int b, long from, long most)
    {
        if (phase is null || b >= phase.shape[0] || from < first || from >= first + phase.shape[2]) return null;
        long count = Math.Min(first + phase.shape[2] - from, most);
        return phase[b].narrow(1, from - first, count);
    }

    /// <summary>Keeps <paramref name="piecePhase"/> [B, bins, F], whose first column is frame <paramref name="firstFrame"/> of the whole mel.</summary>
    public void Keep(Tensor piecePhase, long firstFrame)
    {
        phase?.Dispose();
        phase = piecePhase.detach().clone().DetachFromDisposeScope();
        first = firstFrame;
    }

    /// <summary>Frees the kept phase.</summary>
    public void Dispose()
    {
        phase?.Dispose();
        phase = null;
    }
}

/// <summary>A mel-conditioned network as a denoiser for one batch of mels: predicts ε (or what <paramref name="predicts"/> says),
/// conditioned on √ᾱ.</summary>
public sealed class MelConditionedDenoiser(nn.Module<Tensor, Tensor, Tensor, Tensor> net, Tensor mels, Prediction predicts = Prediction.Epsilon,
    PhaseContinuation? continuation = null, long firstFrame = 0) : IDenoiser
{
    readonly Tensor conditioning = net is IMelConditioned c ? c.Conditioning(mels, continuation, firstFrame) : mels;

    /// <inheritdoc/>
    public Prediction Predicts => predicts;

    /// <inheritdoc/>
    public Tensor Predict(Tensor xt, NoiseLevel level) =>
        net.call(xt, conditioning, full([xt.shape[0]], level.SignalScale, ScalarType.Float32, device: xt.device));

    /// <summary>The Griffin-Lim start made from the network's conditioning (<see cref="IMelConditioned.GriffinLimStart"/>).</summary>
    public Tensor GriffinLimStart(long samples, int iterations) => ((IMelConditioned)net).GriffinLimStart(conditioning, samples, iterations);
}

/// <summary>
/// Griffin-Lim consistency steps (<see cref="ConsistencySteps"/>) as a denoiser: at the first <see cref="ConsistencySteps.Levels"/>
/// distinct noise levels it is asked about, the inner denoiser's x̂₀ is projected onto the mels' magnitude or replaced by the
/// Griffin-Lim estimate; at later levels it passes x̂₀ through. One instance serves one render (it counts the levels it has seen).
/// </summary>
public sealed class GriffinLimConsistency : IDenoiser
{
    readonly IDenoiser inner;
    readonly MelConfig mel;
    readonly ConsistencySteps steps;
    readonly Tensor? estimate;
    readonly Tensor[]? magnitudes;
    readonly List<double> seen = [];

    /// <summary>Wraps <paramref name="inner"/> for log-mels [B, n_mels, F] of <paramref name="mel"/>'s preset; <paramref name="estimate"/>
    /// [B, F·hop] is needed to substitute.</summary>
    public GriffinLimConsistency(IDenoiser inner, Tensor mels, MelConfig mel, Tensor? estimate, ConsistencySteps steps)
    {
        this.inner = inner; this.mel = mel; this.steps = steps; this.estimate = estimate;
        if (steps.Mode == ConsistencyMode.Substitute && estimate is null)
            throw new ArgumentException("substituting x̂₀ needs the Griffin-Lim estimate", nameof(estimate));
        // The projection's target needs as many frames as Griffin-Lim inverts; shorter mels keep the network's estimate.
        if (steps.Mode == ConsistencyMode.Project && mels.shape[2] >= GriffinLim.MinFrames(mel))
            magnitudes = Enumerable.Range(0, (int)mels.shape[0]).Select(b => GriffinLim.Magnitude(mels[b], mel)).ToArray();
    }

    /// <inheritdoc/>
    public Prediction Predicts => Prediction.X0;

    /// <inheritdoc/>
    public Tensor Predict(Tensor xt, NoiseLevel level)
    {
        if (!seen.Contains(level.NoiseStd)) seen.Add(level.NoiseStd);
        bool applies = seen.IndexOf(level.NoiseStd) < steps.Levels;
        using var scope = NewDisposeScope();
        var x0 = inner.PredictX0(xt, level);
        if (applies && steps.Mode == ConsistencyMode.Substitute) x0 = estimate!.expand_as(x0);
        else if (applies && magnitudes is not null)
            x0 = stack(Enumerable.Range(0, (int)x0.shape[0]).Select(b => GriffinLim.Project(x0[b], magnitudes[b], mel, steps.Iterations, steps.Momentum)));
        return x0.MoveToOuterDisposeScope();
    }
}

/// <summary>One network evaluation of a render, as <see cref="SynthesisOptions.Estimates"/> reports it.</summary>
/// <param name="Evaluation">1-based evaluation of the render (a streamed render counts each chunk's anew).</param>
/// <param name="NoiseStd">The noise std √(1−ᾱ) of the level evaluated.</param>
/// <param name="Noisy">x_t, the sampler's waveform the network was given.</param>
/// <param name="Estimate">x̂₀, the clean waveform estimated from it (after clipping and any consistency step).</param>
public sealed record DenoisingEstimate(int Evaluation, double NoiseStd, float[] Noisy, float[] Estimate);

/// <summary>Passes the inner denoiser's x̂₀ through, telling a callback x_t and x̂₀ of batch item 0 (<see cref="SynthesisOptions.Estimates"/>).</summary>
sealed class EstimateReporter(IDenoiser inner, Action<DenoisingEstimate> report) : IDenoiser
{
    int evaluation;

    public Prediction Predicts => Prediction.X0;

    public Tensor Predict(Tensor xt, NoiseLevel level)
    {
        var x0 = inner.PredictX0(xt, level);
        using (var scope = NewDisposeScope())
            report(new DenoisingEstimate(++evaluation, level.NoiseStd, xt[0].cpu().data<float>().ToArray(), x0[0].cpu().data<float>().ToArray()));
        return x0;
    }
}

/// <summary>
/// Standard normal noise tied to absolute sample positions: the k-th draw at sample n of batch item b is the
/// same number whatever chunk asks for it. Blocks of 4,096 samples each come from a generator seeded by
/// (seed, k, b, block).
/// </summary>
sealed class PositionalNoise(long seed, long offset)
{
    const int Block = 4096;
    int draw;

    public Tensor Next(long[] shape)
    {
        using var scope = NewDisposeScope();
        long batch = shape[0], length = shape[1];
        long first = offset / Block, lastBlock = (offset + length - 1) / Block;
        var rows = new Tensor[batch];
        for (long b = 0; b < batch; b++)
        {
            var blocks = new List<Tensor>();
            for (long j = first; j <= lastBlock; j++)
            {
                using var g = new Generator(Mix(seed, draw, b, j));
                blocks.Add(randn([Block], generator: g, dtype: ScalarType.Float32));
            }
            long start = offset - first * Block;
            rows[b] = cat(blocks.ToArray())[(int)start..(int)(start + length)];
        }
        draw++;
        return stack(rows).MoveToOuterDisposeScope();
    }

    static ulong Mix(long seed, long k, long b, long j)
    {
        ulong h = (ulong)seed * 0x9E3779B97F4A7C15UL;
        foreach (long v in new[] { k, b, j })
        {
            h ^= (ulong)v + 0x9E3779B97F4A7C15UL + (h << 6) + (h >> 2);
            h = (h ^ (h >> 30)) * 0xBF58476D1CE4E5B9UL;
            h = (h ^ (h >> 27)) * 0x94D049BB133111EBUL;
            h ^= h >> 31;
        }
        return h;
    }
}
