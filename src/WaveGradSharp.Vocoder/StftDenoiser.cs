using System.Text.Json;
using System.Text.Json.Nodes;
using TorchSharp;
using TorchSharp.Modules;
using WaveGradSharp.Audio;
using WaveGradSharp.Core;
using WaveGradSharp.Diffusion;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;
using F = TorchSharp.torch.nn.functional;

namespace WaveGradSharp.Vocoder;

/// <summary>The shape of a <see cref="StftDenoiser"/>, as a voice card's <c>network</c> field stores it.</summary>
public sealed record StftDenoiserConfig
{
    /// <summary>Mel bands of the conditioning.</summary>
    public int NMels { get; init; } = 80;
    /// <summary>FFT size of the STFT the network works in (its hop is the mel's).</summary>
    public int NFft { get; init; } = 1024;
    /// <summary>Hop of the STFT: the mel's hop, so that one network frame is one mel frame.</summary>
    public int Hop { get; init; } = 256;
    /// <summary>Channels of the ConvNeXt blocks.</summary>
    public int Width { get; init; } = 256;
    /// <summary>Hidden channels of each block's pointwise layers.</summary>
    public int Hidden { get; init; } = 768;
    /// <summary>ConvNeXt blocks.</summary>
    public int Blocks { get; init; } = 8;
    /// <summary>Width of the noise-level embedding.</summary>
    public int Embedding { get; init; } = 128;
    /// <summary>σ_data of the preconditioning: the waveform's standard deviation (see <see cref="Preconditioning"/>).</summary>
    public double SigmaData { get; init; } = 0.1;
    /// <summary>
    /// Whether the network also outputs a real gain per STFT bin and frame that scales the noisy input's own STFT (a learned
    /// Wiener-like mask on top of the preconditioning's one skip factor for all bins). Through the head alone, a denoiser must
    /// rebuild the noise to remove from a frame's width-sized summary; a gain removes it where it lies and keeps the phase of
    /// the iterate. Written to the card only when set, so cards and checkpoints from before it read and resume as they were.
    /// </summary>
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingDefault)]
    public bool BinGains { get; init; }
    /// <summary>
    /// Whether the bin gains form a Wiener mask m = sigmoid(ln(σ_data²/σ²) + ln|P|² + g) on the noisy input's STFT, which replaces
    /// the skip term c_skip·x̃ (P the phase prior in units of σ_data, left out without one; g the gains' output). A bin of prior
    /// power |X|² under noise σ² has the Wiener gain |X|²/(|X|² + σ²), whose logit is ln(|X|²/σ_data²) + ln(σ_data²/σ²): g is
    /// then a log power the mel nearly tells, the same at every level, rather than a gain whose slightest error, where the signal
    /// is loud and the noise slight, leaves a residue many times the noise. g = 0 without a prior is the skip term exactly.
    /// Written to the card only when set.
    /// </summary>
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingDefault)]
    public bool WienerGains { get; init; }
    /// <summary>
    /// Whether the network also sees a phase prior: the STFT the mel alone suggests, its magnitude the mel's least-squares
    /// inverse and its phase integrated from that magnitude's gradients (<see cref="GriffinLim.PhaseFromGradients"/>, no
    /// iterations). It enters as input features, as each band's correlation with the noisy input (from which the trunk can tell
    /// how the prior's arbitrary phase offset lines up with the iterate), and through a complex gain per bin on the prior in the
    /// output. The head alone must make every bin's phase through a trunk narrower than the bins; a gain on the prior carries a
    /// whole phase plane through. Written to the card only when set.
    /// </summary>
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingDefault)]
    public bool PhasePrior { get; init; }

    /// <summary>Frequency bins of the STFT.</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public int Bins => NFft / 2 + 1;

    /// <summary>Bands over which the phase prior's correlation with the noisy input is taken (equal runs of bins, the Nyquist bin
    /// left out).</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public int PriorBands => Math.Min(16, NFft / 2);

    /// <summary>Input features per frame: the noisy STFT and the mel, plus the prior and its band correlations when set.</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public int InputFeatures => 2 * Bins + NMels + (PhasePrior ? 2 * Bins + 2 * PriorBands : 0);

    /// <summary>The named sizes.</summary>
    public static IReadOnlyList<string> SizeNames { get; } = ["tiny", "small", "base"];

    /// <summary>A named size for a mel preset: <c>small</c> (width 256, 8 blocks, 4.27 M parameters), <c>base</c> (384, 10) or
    /// <c>tiny</c> (64, 2: for tests).</summary>
    public static StftDenoiserConfig Create(string size, MelConfig mel)
    {
        var c = new StftDenoiserConfig { NMels = mel.NMels, NFft = mel.NFft, Hop = mel.Hop };
        return size switch
        {
            "tiny" => c with { Width = 64, Hidden = 128, Blocks = 2, Embedding = 32 },
            "small" => c,
            "base" => c with { Width = 384, Hidden = 1152, Blocks = 10 },
            _ => throw WaveGradException.About($"Size '{Text.Escape(size, 20)}': the stft network's sizes are {string.Join(", ", SizeNames)}", "Size"),
        };
    }

    /// <summary>The most parameters a card may ask for.</summary>
    public const long MaxParameters = 100_000_000;

    /// <summary>The network's parameter count, from the config alone.</summary>
    public long ParameterCount()
    {
        long w = Width, bins = Bins;
        long block = w * 7 + w + 2 * w * Hidden + Hidden + w + Embedding * 2 * w + 2 * w + w;
        return InputFeatures * w + w + 2 * w + 64 * Embedding + Embedding + Embedding * Embedding + Embedding
            + Blocks * block + 2 * w + w * 2 * bins + 2 * bins + (BinGains ? w * bins + bins : 0) + (PhasePrior ? w * 2 * bins + 2 * bins : 0);
    }

    /// <summary>Multiply-adds of one evaluation per mel frame in the linear layers and the depthwise convs (the STFT, the inverse
    /// STFT and the norms are left out: a few per cent).</summary>
    public long MultiplyAddsPerFrame() =>
        (long)InputFeatures * Width + Blocks * (7L * Width + 2L * Width * Hidden) + Width * (2L + (BinGains ? 1 : 0) + (PhasePrior ? 2 : 0)) * Bins;

    /// <summary>Checks the limits and, given a mel preset, its bands, FFT size and hop; throws naming the field.</summary>
    public StftDenoiserConfig Check(MelConfig? mel = null, string source = "config")
    {
        if (NMels < 1 || NMels > 1024) throw new WaveGradException($"{source}: n_mels {NMels} must be between 1 and 1024");
        if (NFft < 16 || NFft > 8192 || (NFft & (NFft - 1)) != 0) throw new WaveGradException($"{source}: n_fft {NFft} must be a power of two in [16, 8192]");
        if (Hop < 1 || Hop > NFft / 2) throw new WaveGradException($"{source}: hop {Hop} must be between 1 and n_fft / 2");
        if (Width < 1 || Width > 4096 || Hidden < 1 || Hidden > 16384 || Blocks < 1 || Blocks > 64 || Embedding < 1 || Embedding > 4096)
            throw new WaveGradException($"{source}: width, hidden, blocks and embedding must be positive and at most 4096, 16384, 64 and 4096");
        if (!(SigmaData > 0 && SigmaData <= 10)) throw new WaveGradException($"{source}: sigma_data {SigmaData} must be in (0, 10]");
        if (WienerGains && !BinGains) throw new WaveGradException($"{source}: wiener_gains needs bin_gains");
        long p = ParameterCount();
        if (p > MaxParameters) throw new WaveGradException($"{source}: the network would have {p:N0} parameters, more than the {MaxParameters:N0} supported");
        if (mel is not null && (NMels != mel.NMels || Hop != mel.Hop))
            throw new WaveGradException($"{source}: network has {NMels} mel bands and hop {Hop}, preset '{mel.Name}' {mel.NMels} and {mel.Hop}");
        return this;
    }

    /// <summary>The config in a card's <c>network</c> field, checked against the voice's mel preset.</summary>
    public static StftDenoiserConfig FromCard(JsonObject network, MelConfig mel, string source)
    {
        StftDenoiserConfig? cfg;
        try { cfg = network.Deserialize(CardJson.Default.StftDenoiserConfig); }
        catch (JsonException e) { throw new WaveGradException($"{source}: malformed network ({Text.Escape(Text.FirstLine(e.Message))})"); }
        return (cfg ?? throw new WaveGradException($"{source}: no network")).Check(mel, source);
    }

    /// <summary>The card's <c>network</c> field.</summary>
    public JsonNode ToCard() => JsonSerializer.SerializeToNode(this, CardJson.Default.StftDenoiserConfig)!;
}

/// <summary>
/// A denoiser that works at the frame rate, in the STFT domain (after Vocos' ConvNeXt backbone and inverse-STFT head, and
/// RFWave's diffusion over complex STFT frames), while the diffusion itself stays on the waveform, so every engine sampler,
/// the Griffin-Lim start, the noise prior and streaming work unchanged. The noisy waveform's STFT (real and imaginary parts)
/// and the mel go in, one frame per mel frame, through a linear layer; ConvNeXt blocks whose layer norms are modulated by
/// the noise level run at the frame rate; a linear head gives a complex STFT (with <see cref="StftDenoiserConfig.BinGains"/>,
/// plus a gain per bin times the noisy input's STFT; with <see cref="StftDenoiserConfig.PhasePrior"/>, plus a complex gain per
/// bin on the mel's phase prior), inverted to a waveform. EDM's preconditioning (<see cref="Preconditioning"/>) turns that
/// into x̂₀. Shapes: audio [B, T = F·hop], mel [B, n_mels, F] (or the <see cref="Conditioning"/> made from it, [B, n_mels +
/// 2·bins, F + 1]), noise level √ᾱ [B]; output x̂₀ [B, T].
/// </summary>
public sealed class StftDenoiser : Module<Tensor, Tensor, Tensor, Tensor>, IMelConditioned
{
    /// <summary>The network's shape.</summary>
    public StftDenoiserConfig Config { get; }

    readonly Linear input;
    readonly LayerNorm input_norm;
    readonly Linear embed_in, embed_out;
    readonly ModuleList<ConvNextBlock> blocks;
    readonly LayerNorm output_norm;
    readonly Linear head;
    readonly Linear? gains;
    readonly Linear? prior_gains;
    readonly MelConfig? mel;
    readonly double windowNorm;

    /// <summary>A network with libtorch's default initialisation drawn from <paramref name="init"/>, its head at zero (so a fresh
    /// network's x̂₀ is the preconditioning's skip term: the posterior mean of Gaussian data). A network with a phase prior needs
    /// the voice's mel preset, whose STFT must be the network's.</summary>
    public StftDenoiser(StftDenoiserConfig config, Generator? init = null, MelConfig? mel = null) : this(config, init, mel, draw: true) { }

    /// <summary>As the public constructor; with <paramref name="draw"/> false the dense layers' weights are left undrawn (see
    /// <see cref="Dense"/>), for <see cref="Load"/> to fill.</summary>
    StftDenoiser(StftDenoiserConfig config, Generator? init, MelConfig? mel, bool draw) : base("StftDenoiser")
    {
        Config = config.Check(mel);
        if (config.PhasePrior && (mel is null || mel.NFft != config.NFft || mel.WinLength != config.NFft))
            throw new WaveGradException($"a phase prior needs a mel preset whose n_fft and window length are the network's {config.NFft}");
        this.mel = mel;
        if (init is not null) random.manual_seed((long)init.initial_seed());
        int w = config.Width;
        input = Dense(config.InputFeatures, w, draw);
        input_norm = LayerNorm([w]);
        embed_in = Dense(64, config.Embedding, draw);
        embed_out = Dense(config.Embedding, config.Embedding, draw);
        blocks = new ModuleList<ConvNextBlock>();
        for (int i = 0; i < config.Blocks; i++) blocks.Add(new ConvNextBlock(w, config.Hidden, config.Embedding, 1.0 / config.Blocks, draw));
        output_norm = LayerNorm([w]);
        head = Dense(w, 2 * config.Bins, draw);
        if (config.BinGains) gains = Dense(w, config.Bins, draw);
        if (config.PhasePrior) prior_gains = Dense(w, 2 * config.Bins, draw);
        using (no_grad())
        {
            foreach (var layer in new[] { head, gains, prior_gains })
            {
                layer?.weight!.zero_();
                layer?.bias!.zero_();
            }
        }
        windowNorm = Math.Sqrt(config.NFft * 3.0 / 8);   // √Σw² of a periodic Hann window: an STFT bin of white noise has unit variance
        RegisterComponents();
    }

    /// <summary>
    /// torch's Linear layer (weight [out, in], bias [out]: the bundle's names and shapes). With <paramref name="draw"/> false its
    /// weights are left as allocated, for a load to overwrite: libtorch's generator draws one number at a time, and a voice's
    /// millions of them are a noticeable part of <c>speak</c>'s wait for its first audio.
    /// </summary>
    static Linear Dense(long inputs, long outputs, bool draw) => draw ? Linear(inputs, outputs)
        : Linear(new Parameter(empty(outputs, inputs).DetachFromDisposeScope()), new Parameter(empty(outputs).DetachFromDisposeScope()));

    /// <summary>What the network outputs.</summary>
    public static Prediction Predicts => Prediction.X0;

    /// <summary>The type the trunk (the layers between the STFT and the inverse STFT) computes in.</summary>
    public ScalarType TrunkType { get; private set; } = ScalarType.Float32;

    /// <summary>Casts the trunk's weights to bfloat16 for inference, where the CPU multiplies bf16 matrices natively; the STFT,
    /// the preconditioning and the inverse STFT stay float32, so the waveform in and out keeps its precision.</summary>
    public void UseBf16Trunk()
    {
        foreach (var (_, m) in named_children()) m.to(ScalarType.BFloat16);
        TrunkType = ScalarType.BFloat16;
    }

    /// <summary>Parameters.</summary>
    public long ParameterCount => parameters().Sum(p => p.numel());

    /// <inheritdoc cref="IMelConditioned.Conditioning"/>
    /// <remarks>
    /// What the network is conditioned on, made once per render: the mels [B, n_mels, F] themselves, or with a phase prior the
    /// mels followed by the prior's real and imaginary parts, [B, n_mels + 2·bins, F + 1] (<see cref="forward"/> takes either, and
    /// makes the prior itself from bare mels, as in training). The prior is the mel's <see cref="GriffinLim.Magnitude"/> with
    /// <see cref="GriffinLim.PhaseFromGradients"/>, moved to the network's frames (the preset's frame f lies
    /// <see cref="MelConfig.FrameOffset"/> samples after the network's, so bin k turns by −2πk·offset/n_fft), in units of
    /// <see cref="StftDenoiserConfig.SigmaData"/>: an STFT bin of white noise of that std has unit variance.
    /// </remarks>
    public Tensor Conditioning(Tensor mels, PhaseContinuation? continuation = null, long firstFrame = 0)
    {
        if (!Config.PhasePrior || mels.shape[1] != Config.NMels) return mels;
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var m = mels.to_type(ScalarType.Float32);
        var cpu = m.to(CPU);
        var magnitudes = new Tensor[m.shape[0]];
        var phases = new Tensor[m.shape[0]];
        for (int b = 0; b < phases.Length; b++)
        {
            magnitudes[b] = GriffinLim.Magnitude(cpu[b], mel!);
            phases[b] = GriffinLim.PhaseFromGradients(magnitudes[b], mel!, continuation?.Leading(b, firstFrame, m.shape[2]));
        }
        var phase = stack(phases);
        continuation?.Keep(phase, firstFrame);
        var prior = polar(stack(magnitudes), phase) * FrameTurn() / (windowNorm * Config.SigmaData);   // [B, bins, F]
        prior = cat([prior, zeros_like(prior.narrow(2, 0, 1))], 2);                  // the network's F + 1 frames: the last is silent
        var parts = view_as_real(prior).permute(0, 3, 1, 2).flatten(1, 2).to(m.device);   // [B, 2·bins, F + 1]: real parts, then imaginary
        return cat([F.pad(m, [0, 1], PaddingModes.Replicate), parts], 1).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// With a phase prior, each clean crop [B, T] turned by one phase angle φ to line up with its prior: the analytic signal times
    /// e^{iφ}, x·cos φ − H(x)·sin φ (H the Hilbert transform), with φ the angle of Σ conj(STFT(x))·P over the crop's bins and
    /// frames. The prior's phase is integrated from an arbitrary start, so the clean phase stands at an offset to it that the
    /// mel cannot tell; regressed onto as it is, the offset averages the prior's term away. The turned crop has the same
    /// magnitude spectrum, pitch and periodicity. Without a prior, the crops as they are.
    /// </summary>
    public Tensor TrainingTarget(Tensor audio, Tensor conditioning)
    {
        if (!Config.PhasePrior || conditioning.shape[1] == Config.NMels) return audio;
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var c = Config;
        var x = audio.to_type(ScalarType.Float32);
        var win = hann_window(c.NFft, periodic: true, device: x.device);
        var own = stft(x, c.NFft, c.Hop, c.NFft, win, center: true, pad_mode: PaddingModes.Reflect, normalized: false, onesided: true,
            return_complex: true);                                                   // [B, bins, F + 1]
        var (cos, sin) = ConjugateDot(own, PriorOf(conditioning).to(x.device), [1, 2]);   // Σ conj(X)·P over bins and frames
        var norm = (cos.square() + sin.square()).sqrt();
        var lined = norm > 1e-12;                                                     // a crop with nothing to line up stays as it is
        var turn = complex(where(lined, cos / norm, ones_like(cos)), where(lined, sin / norm, zeros_like(sin))).unsqueeze(1);   // e^{iφ} per crop
        // Reflected past both ends, as the STFT pads them, so that the transform's wrap-around falls outside the crop.
        int pad = (int)Math.Min(c.NFft / 2, x.shape[1] - 1);
        var padded = F.pad(x.unsqueeze(1), [pad, pad], PaddingModes.Reflect).squeeze(1);
        var turned = fft.irfft(fft.rfft(padded, dim: 1) * turn, padded.shape[1], dim: 1).narrow(1, pad, x.shape[1]);
        return turned.to_type(audio.dtype).MoveToOuterDisposeScope();
    }

    /// <inheritdoc/>
    public bool MakesGriffinLimStart => Config.PhasePrior;

    /// <inheritdoc/>
    /// <remarks>The prior, turned back to the preset's frames and scaled back to <see cref="GriffinLim.Magnitude"/>'s units, is
    /// the magnitude and start phase <see cref="GriffinLim.FromMel"/> would compute; mels shorter than Griffin-Lim takes get
    /// silence, as <see cref="Vocoder"/> gives them.</remarks>
    public Tensor GriffinLimStart(Tensor conditioning, long samples, int iterations)
    {
        if (!Config.PhasePrior || conditioning.shape[1] == Config.NMels)
            throw new ArgumentException("the conditioning holds no phase prior", nameof(conditioning));
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        long frames = conditioning.shape[2] - 1;
        var result = zeros([conditioning.shape[0], samples], ScalarType.Float32);
        if (frames >= GriffinLim.MinFrames(mel!))
        {
            var spectra = PriorOf(conditioning).narrow(2, 0, frames) * FrameTurn().conj().to(conditioning.device) * (windowNorm * Config.SigmaData);
            for (int b = 0; b < result.shape[0]; b++)
            {
                var wave = GriffinLim.FromSpectrum(spectra[b], mel!, iterations);
                long n = Math.Min(samples, wave.Length);
                result[b].narrow(0, 0, n).copy_(tensor(wave).narrow(0, 0, n));
            }
        }
        return result.to(conditioning.device).MoveToOuterDisposeScope();
    }

    /// <inheritdoc/>
    public override Tensor forward(Tensor audio, Tensor mels, Tensor level)
    {
        using var scope = NewDisposeScope();
        var c = Config;
        var a = level.to_type(ScalarType.Float32).reshape(-1, 1);
        var pre = Preconditioning.Edm(a, c.SigmaData);
        var x = audio / a;                                                           // x̃ = x_t / a
        var win = hann_window(c.NFft, periodic: true, device: audio.device);   // made per call: a field would be a weight of the bundle
        var spec = stft(x * pre.In, c.NFft, c.Hop, c.NFft, win, center: true, pad_mode: PaddingModes.Reflect, normalized: false, onesided: true,
            return_complex: true) / windowNorm;                                      // [B, bins, F + 1]
        var conditioning = Conditioning(mels);
        var cond = F.pad(conditioning.narrow(1, 0, c.NMels), [0, spec.shape[2] - conditioning.shape[2]], PaddingModes.Replicate);
        var inputs = new List<Tensor> { view_as_real(spec).permute(0, 3, 1, 2).flatten(1, 2), cond };
        Tensor? prior = null;
        if (c.PhasePrior)
        {
            prior = PriorOf(conditioning);
            var magnitude = prior.abs();
            inputs.Add(view_as_real(prior / (magnitude + 1).sqrt()).permute(0, 3, 1, 2).flatten(1, 2));  // the compressed prior
            inputs.Add(BandCorrelation(prior, spec, c.PriorBands));
        }
        var features = cat(inputs.ToArray(), 1).transpose(1, 2).to_type(TrunkType);
        var h = input_norm.call(input.call(features));                             // [B, F + 1, C]
        var e = embed_out.call(F.silu(embed_in.call(Sinusoidal(pre.Noise.reshape(-1), 64).to_type(TrunkType))));
        foreach (var b in blocks) h = b.call(h, e);
        h = output_norm.call(h);
        var o = head.call(h).to_type(ScalarType.Float32);                           // [B, F + 1, 2·bins]
        var raw = view_as_complex(o.reshape(o.shape[0], o.shape[1], c.Bins, 2).contiguous()).transpose(1, 2);
        // With a phase prior P (in units of σ_data), F = head + g_P ⊙ P: inside c_out, so F's target keeps unit variance at every
        // level (outside it, the loss weight 1/c_out² would magnify the prior's term a millionfold at the lowest levels).
        if (prior_gains is not null)
        {
            var g = prior_gains.call(h).to_type(ScalarType.Float32);                    // [B, F + 1, 2·bins]
            raw = raw + view_as_complex(g.reshape(g.shape[0], g.shape[1], c.Bins, 2).contiguous()).transpose(1, 2) * prior!;
        }
        var s = raw * windowNorm * pre.Out.unsqueeze(2);
        if (gains is not null)
        {
            // With bin gains g, x̂₀ = c_skip·x̃ + iSTFT(g ⊙ STFT(x̃)) + c_out·F, or with Wiener gains iSTFT(m ⊙ STFT(x̃)) + c_out·F:
            // spec is STFT(c_in·x̃)/windowNorm.
            var g = gains.call(h).to_type(ScalarType.Float32).transpose(1, 2);        // [B, bins, F + 1]
            var noisy = spec * (windowNorm / pre.In.unsqueeze(2));
            s = s + (c.WienerGains ? WienerMask(g, pre, prior) : g) * noisy;
        }
        var f = istft(s, c.NFft, c.Hop, c.NFft, win, center: true, normalized: false, onesided: true, length: audio.shape[1]);
        return (c.WienerGains ? f : pre.Skip * x + f).MoveToOuterDisposeScope();
    }

    /// <summary>sigmoid(ln(σ_data²/σ²) + ln(|P|² + 10⁻⁶) + g), [B, bins, F + 1] (see <see cref="StftDenoiserConfig.WienerGains"/>);
    /// ln σ is 4·c_noise. The floor keeps a silent prior's bins at a finite logit.</summary>
    Tensor WienerMask(Tensor g, Preconditioning pre, Tensor? prior)
    {
        var logit = g + (2 * Math.Log(Config.SigmaData) - 8 * pre.Noise).unsqueeze(2);
        if (prior is not null) logit = logit + (prior.abs().square() + 1e-6).log();
        return logit.sigmoid();
    }

    /// <summary>Per frame and band, Σ conj(prior)·noisy / (‖prior‖·‖noisy‖): how the prior's phase lines up with the iterate's in
    /// each band (its angle) and how far the iterate is noise (its length). [B, 2·bands, F + 1]: the real parts, then the imaginary.</summary>
    static Tensor BandCorrelation(Tensor prior, Tensor noisy, int bands)
    {
        long per = (prior.shape[1] - 1) / bands;
        var p = prior.narrow(1, 0, per * bands).unflatten(1, [bands, per]);
        var n = noisy.narrow(1, 0, per * bands).unflatten(1, [bands, per]);
        var (dotReal, dotImag) = ConjugateDot(p, n, [2]);                           // [B, bands, F + 1]
        var norms = (p.abs().square().sum(2) * n.abs().square().sum(2)).sqrt() + 1e-6;
        return cat([dotReal / norms, dotImag / norms], 1);
    }

    /// <summary>The real and imaginary parts of Σ conj(a)·b over <paramref name="dims"/>, in real arithmetic.</summary>
    static (Tensor Real, Tensor Imag) ConjugateDot(Tensor a, Tensor b, long[] dims)
    {
        var (ap, bp) = (view_as_real(a.contiguous()), view_as_real(b.contiguous()));
        var (ar, ai, br, bi) = (ap.select(-1, 0), ap.select(-1, 1), bp.select(-1, 0), bp.select(-1, 1));
        return ((ar * br + ai * bi).sum(dims), (ar * bi - ai * br).sum(dims));
    }

    /// <summary>e^{−2πik·offset/n_fft} per bin k, [bins, 1]: turns a spectrum on the preset's frames (frame f lies
    /// <see cref="MelConfig.FrameOffset"/> samples after the network's) to the network's frames; its conjugate turns it back.</summary>
    Tensor FrameTurn()
    {
        var bin = arange(Config.Bins, dtype: ScalarType.Float32).unsqueeze(1);
        return polar(ones_like(bin), bin * (-2 * Math.PI * mel!.FrameOffset / Config.NFft));
    }

    /// <summary>The phase prior [B, bins, F + 1] (complex, float32) in a <see cref="Conditioning"/>.</summary>
    Tensor PriorOf(Tensor conditioning)
    {
        var parts = conditioning.narrow(1, Config.NMels, 2 * Config.Bins).to_type(ScalarType.Float32);
        return view_as_complex(parts.unflatten(1, [2, Config.Bins]).permute(0, 2, 3, 1).contiguous());
    }

    /// <summary>[B, 2·half] sines and cosines of t at geometric frequencies 1 … 1000.</summary>
    static Tensor Sinusoidal(Tensor t, int dims)
    {
        int half = dims / 2;
        var freqs = exp(arange(half, dtype: ScalarType.Float32, device: t.device) * (Math.Log(1000.0) / (half - 1)));
        var arg = t.unsqueeze(1) * freqs.unsqueeze(0);
        return cat([arg.sin(), arg.cos()], 1);
    }

    /// <summary>Whether a parameter is a ConvNeXt block's output scale, at zero of which the block adds nothing: a network grown by
    /// blocks starts as the smaller one with the new blocks' scales at zero (the block's other weights keep their initialisation,
    /// so their gradients are live as soon as the scale moves).</summary>
    public static bool IsBlockOutputScale(string name) =>
        name.StartsWith("blocks.", StringComparison.Ordinal) && name.EndsWith(".scale", StringComparison.Ordinal);

    /// <summary>A voice's network with its weights, on the CPU, in eval mode; <paramref name="weights"/> is called once the network
    /// is built (see <see cref="IVocoderArchitecture.Create"/>).</summary>
    public static StftDenoiser Load(Voice voice, Func<IReadOnlyDictionary<string, Tensor>> weights)
    {
        var net = new StftDenoiser(StftDenoiserConfig.FromCard(voice.Network, voice.Mel, voice.Bundle.ManifestPath), null, voice.Mel, draw: false);
        TensorFiles.LoadInto(net, weights(), voice.WeightsPath);
        net.eval();
        return net;
    }

    /// <summary>
    /// A ConvNeXt block (Liu et al. 2022; Vocos' 1-D form) whose layer norm is modulated by the noise-level embedding
    /// (adaptive layer norm, its scale and shift starting at zero): depthwise conv (kernel 7), norm, pointwise up, GELU,
    /// pointwise down, a learned per-channel scale, residual. Frames-last activations [B, F, C] in and out. The depthwise conv
    /// is seven shifted products summed in place: libtorch's grouped convolution without oneDNN (off for CPU training) is far
    /// slower, and needs the channels-first layout.
    /// </summary>
    sealed class ConvNextBlock : Module<Tensor, Tensor, Tensor>
    {
        const int Kernel = 7;
        readonly Parameter depthwise_weight, depthwise_bias;
        readonly LayerNorm norm;
        readonly Linear modulation, up, down;
        readonly Parameter scale;

        public ConvNextBlock(int width, int hidden, int embedding, double layerScale, bool draw) : base("ConvNextBlock")
        {
            double bound = 1 / Math.Sqrt(Kernel);   // libtorch's default for a depthwise conv (fan-in = kernel)
            // Parameters made from tensors must leave any dispose scope the network is built in (a voice loads inside one).
            depthwise_weight = new Parameter(((rand(Kernel, width) * 2 - 1) * bound).DetachFromDisposeScope());
            depthwise_bias = new Parameter(((rand(width) * 2 - 1) * bound).DetachFromDisposeScope());
            norm = LayerNorm([width], elementwise_affine: false);
            modulation = Dense(embedding, 2 * width, draw);
            up = Dense(width, hidden, draw);
            down = Dense(hidden, width, draw);
            scale = new Parameter(full(width, (float)layerScale).DetachFromDisposeScope());
            using (no_grad())
            {
                modulation.weight!.zero_();
                modulation.bias!.zero_();
            }
            RegisterComponents();
        }

        public override Tensor forward(Tensor h, Tensor e)
        {
            long frames = h.shape[1];
            var padded = F.pad(h, [0, 0, Kernel / 2, Kernel / 2]);                   // zero frames at both ends, as padding 3 would
            // Accumulated in place: seven fresh frame-sized tensors per block cost more (in allocation) than the products.
            var x = padded.narrow(1, 0, frames) * depthwise_weight[0];
            x.add_(depthwise_bias);
            for (int k = 1; k < Kernel; k++) x.addcmul_(padded.narrow(1, k, frames), depthwise_weight[k], 1);
            x = norm.call(x);
            var mod = modulation.call(F.silu(e)).unsqueeze(1).chunk(2, -1);
            x = x * (1 + mod[0]) + mod[1];
            x = down.call(F.gelu(up.call(x))) * scale;
            return h + x;
        }
    }
}

/// <summary>The frame-rate STFT denoiser (<see cref="StftDenoiser"/>) as a <see cref="DiffusionVocoderModel"/>: its trunk computes in
/// the precision asked for (by default bf16 where auto picks it: CUDA, or a CPU with AMX), its transforms in float32.</summary>
sealed class StftArchitecture : IDiffusionVocoderArchitecture
{
    public const string Name = VocoderArchitectures.Stft;
    string IVocoderArchitecture.Name => Name;

    public void Validate(Voice voice) => StftDenoiserConfig.FromCard(voice.Network, voice.Mel, voice.Bundle.ManifestPath);

    public IVocoderModel Create(Voice voice, Func<IReadOnlyDictionary<string, Tensor>> weights, Device device, ScalarType dtype)
    {
        var net = StftDenoiser.Load(voice, weights);
        if (device.type != DeviceType.CPU) net.to(device);
        if (dtype == ScalarType.BFloat16) net.UseBf16Trunk();
        return new DiffusionVocoderModel(net, voice.Mel, voice.Prior, voice.DefaultSampler, device, StftDenoiser.Predicts);
    }

    public double MultiplyAddsPerSample(Voice voice) =>
        StftDenoiserConfig.FromCard(voice.Network, voice.Mel, voice.Bundle.ManifestPath).MultiplyAddsPerFrame() / (double)voice.Mel.Hop;

    public ScalarType ComputeType(ScalarType requested) => requested == ScalarType.BFloat16 ? requested : ScalarType.Float32;

    /// <summary>Four times an audio-rate network's: at the frame rate a 1024-frame piece's activations still fit in cache, and
    /// each piece costs its context twice over in the network, the phase prior and the post-filter.</summary>
    public int? CpuPieceFrames => 1024;

    public Prediction Predicts => StftDenoiser.Predicts;

    public IReadOnlyList<string> SizeNames => StftDenoiserConfig.SizeNames;

    public TrainableNetwork NewNetwork(string size, MelConfig mel, VocoderTrainingOptions o, Generator init)
    {
        var cfg = StftDenoiserConfig.Create(size, mel) with { BinGains = o.BinGains || o.WienerGains, WienerGains = o.WienerGains, PhasePrior = o.PhasePrior };
        if (o.Blocks > 0) cfg = cfg with { Blocks = o.Blocks };
        var net = new StftDenoiser(cfg, init, mel);   // the constructor checks the config
        return new TrainableNetwork(net, cfg.ToCard(), net.ParameterCount, cfg.SigmaData, StftDenoiser.IsBlockOutputScale);
    }

    public TrainableNetwork LoadNetwork(JsonObject card, MelConfig mel, string source)
    {
        var cfg = StftDenoiserConfig.FromCard(card, mel, source);
        var net = new StftDenoiser(cfg, mel: mel);
        return new TrainableNetwork(net, cfg.ToCard(), net.ParameterCount, cfg.SigmaData, StftDenoiser.IsBlockOutputScale);
    }
}
