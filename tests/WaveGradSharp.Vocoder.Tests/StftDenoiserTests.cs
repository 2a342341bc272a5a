using WaveGradSharp.Audio;
using WaveGradSharp.Core;
using WaveGradSharp.Diffusion;
using WaveGradSharp.Vocoder;
using static TorchSharp.torch;

namespace WaveGradSharp.Vocoder.Tests;

public class StftDenoiserTests
{
    [Fact]
    public void EdmPreconditioningAloneIsTheExactDenoiserOfGaussianDataAndItsLossIsInUnitsOfCOut()
    {
        // For x₀ ~ N(0, σ_d²), E[x₀ | x_t] = c_skip·x̃ exactly: a network whose F is zero is already the posterior mean.
        const double sd = 0.1;
        var exact = new GaussianMixtureDenoiser([1], [0], [sd]);
        var schedule = NoiseSchedule.Named("wavegrad-train");
        foreach (int t in new[] { 0, 10, 200, 999 })
        {
            var l = NoiseLevel.Of(schedule, t);
            var xt = randn(2, 50, generator: new Generator(3)) * 0.3;
            var a = full(1, 1, (float)l.SignalScale);
            var pre = Preconditioning.Edm(a, sd);
            var d = pre.Skip * xt / a;
            Assert.True(d.allclose(exact.PredictX0(xt, l), 1e-3, 1e-5), $"t {t}");
            // The loss weight is 1 / c_out²: F's regression target has unit variance.
            double w = Preconditioning.LossWeight(a, sd).item<float>(), cOut = pre.Out.item<float>();
            Assert.Equal(1, w * cOut * cOut, 3);
            // An x̂₀ that misses by c_out·δ (δ = ±0.5 at random) scores |δ| in L1 and δ² in L2 at every level.
            var target = randn(2, 50, generator: new Generator(4)) * sd;
            var delta = (randint(0, 2, [2, 50], generator: new Generator(5)) * 2 - 1).to_type(ScalarType.Float32) * 0.5;
            var missed = target + pre.Out * delta;
            Assert.Equal(0.5, Losses.PreconditionedX0(missed, target, a, sd, LossNorm.L1).item<float>(), 3);
            Assert.Equal(0.25, Losses.PreconditionedX0(missed, target, a, sd, LossNorm.L2).item<float>(), 3);
        }
    }

    [Fact]
    public void AFreshNetworkReturnsTheSkipTermAndItsParameterCountIsKnownFromTheConfig()
    {
        var cfg = StftDenoiserConfig.Create("tiny", MelConfig.Preset("hifigan-22k"));
        using var net = new StftDenoiser(cfg, new Generator(1));
        Assert.Equal(cfg.ParameterCount(), net.ParameterCount);
        Assert.Equal(StftDenoiserConfig.Create("small", MelConfig.Preset("hifigan-22k")).ParameterCount(),
            new StftDenoiser(StftDenoiserConfig.Create("small", MelConfig.Preset("hifigan-22k"))).ParameterCount);
        var x = randn(2, 20 * 256) * 0.2;
        var level = tensor(new float[] { 0.3f, 0.9f });
        var y = net.call(x, randn(2, 80, 20), level);
        Assert.Equal(x.shape, y.shape);
        var pre = Preconditioning.Edm(level.reshape(-1, 1), cfg.SigmaData);
        Assert.True(y.allclose(pre.Skip * x / level.reshape(-1, 1), 1e-4, 1e-5));   // the head starts at zero
    }

    [Fact]
    public void BinGainsScaleTheNoisyInputsOwnStftAndStartAtZero()
    {
        var cfg = StftDenoiserConfig.Create("tiny", MelConfig.Preset("hifigan-22k")) with { BinGains = true };
        using var net = new StftDenoiser(cfg, new Generator(1));
        Assert.Equal(cfg.ParameterCount(), net.ParameterCount);
        Assert.True(cfg.ParameterCount() > (cfg with { BinGains = false }).ParameterCount());
        Assert.DoesNotContain("bin_gains", (cfg with { BinGains = false }).ToCard().ToJsonString());   // old cards stay as they were
        Assert.True(StftDenoiserConfig.FromCard(cfg.ToCard().AsObject(), MelConfig.Preset("hifigan-22k"), "card").BinGains);
        var x = randn(2, 20 * 256) * 0.2;
        var level = tensor(new float[] { 0.3f, 0.9f });
        var a = level.reshape(-1, 1);
        var skip = Preconditioning.Edm(a, cfg.SigmaData).Skip * x / a;
        Assert.True(net.call(x, randn(2, 80, 20), level).allclose(skip, 1e-4, 1e-5));   // fresh: the skip term alone
        // A gain g in every bin and frame adds g·x̃ (the inverse STFT of the STFT is the identity).
        using (no_grad()) net.named_parameters().Single(p => p.name == "gains.bias").parameter.fill_(0.25);
        Assert.True(net.call(x, randn(2, 80, 20), level).allclose(skip + 0.25 * x / a, 1e-3, 1e-4));
    }

    [Fact]
    public void WienerGainsMaskTheNoisyInputWithTheLevelsLogitPlusTheGainAndStartAsTheSkipTerm()
    {
        var mel = MelConfig.Preset("hifigan-22k");
        var cfg = StftDenoiserConfig.Create("tiny", mel) with { BinGains = true, WienerGains = true };
        Assert.Equal((cfg with { WienerGains = false }).ParameterCount(), cfg.ParameterCount());   // the same gains layer, read otherwise
        Assert.True(StftDenoiserConfig.FromCard(cfg.ToCard().AsObject(), mel, "card").WienerGains);
        Assert.Contains("wiener_gains needs bin_gains", Assert.Throws<WaveGradException>(() => (cfg with { BinGains = false }).Check()).Message);
        using var net = new StftDenoiser(cfg, new Generator(1));
        var x = randn(2, 20 * 256) * 0.2;
        var level = tensor(new float[] { 0.3f, 0.999f });
        var a = level.reshape(-1, 1);
        var skip = Preconditioning.Edm(a, cfg.SigmaData).Skip;
        Assert.True(net.call(x, randn(2, 80, 20), level).allclose(skip * x / a, 1e-4, 1e-5));   // fresh: c_skip·x̃, as without the mask
        // A gain b in every bin: the mask is sigmoid(logit(c_skip) + b), the same in every bin, so x̂₀ = that times x̃.
        using (no_grad()) net.named_parameters().Single(p => p.name == "gains.bias").parameter.fill_(-2);
        var mask = (1 / (1 + (1 / skip - 1) * Math.Exp(2))).reshape(-1, 1);
        Assert.True(net.call(x, randn(2, 80, 20), level).allclose(mask * x / a, 1e-3, 1e-4));
        // With a phase prior the logit adds ln(|P|² + 1e-6): a silent mel's prior masks every bin to almost nothing.
        using var withPrior = new StftDenoiser(cfg with { PhasePrior = true }, new Generator(1), mel);
        var silent = full(2, 80, 20, (float)Math.Log(1e-5));
        var y = withPrior.call(x, silent, level);
        Assert.True(y.norm().item<float>() < 0.01 * (skip * x / a).norm().item<float>());
    }

    [Fact]
    public void APhasePriorGainCarriesTheMelsPhasePlaneToTheOutputAndConditioningMadeOnceIsWhatForwardMakes()
    {
        var mel = MelConfig.Preset("hifigan-22k");
        var cfg = StftDenoiserConfig.Create("tiny", mel) with { PhasePrior = true };
        Assert.Throws<WaveGradException>(() => new StftDenoiser(cfg));   // the prior needs the preset
        using var net = new StftDenoiser(cfg, new Generator(1), mel);
        Assert.Equal(cfg.ParameterCount(), net.ParameterCount);
        Assert.DoesNotContain("phase_prior", (cfg with { PhasePrior = false }).ToCard().ToJsonString());
        Assert.True(StftDenoiserConfig.FromCard(cfg.ToCard().AsObject(), mel, "card").PhasePrior);
        var x = randn(2, 20 * 256) * 0.2;
        var mels = randn(2, 80, 20) - 4;
        var level = tensor(new float[] { 0.3f, 0.9f });
        var a = level.reshape(-1, 1);
        var skip = Preconditioning.Edm(a, cfg.SigmaData).Skip * x / a;
        Assert.True(net.call(x, mels, level).allclose(skip, 1e-4, 1e-5));   // fresh: the skip term alone
        var conditioning = net.Conditioning(mels);
        Assert.Equal(new long[] { 2, 80 + 2 * cfg.Bins, 21 }, conditioning.shape);
        using (no_grad())
        {
            // A gain of 1 on every bin's real part adds the prior's waveform; the trunk's weights reach the output through it.
            net.named_parameters().Single(p => p.name == "prior_gains.bias").parameter.copy_(tensor(new float[] { 1, 0 }).repeat(cfg.Bins));
            net.named_parameters().Single(p => p.name == "prior_gains.weight").parameter.normal_(0, 0.01);
        }
        var y = net.call(x, mels, level);
        Assert.True(y.allclose(net.call(x, conditioning, level), 0, 0), "conditioning made once differs from forward's own");
        var priorWave = (y - skip).abs().mean().item<float>();
        Assert.True(priorWave > 1e-3, $"the prior adds nothing: {priorWave}");
    }

    [Theory]
    [InlineData("clip-chirp-22k.wav", 0.7, 1.5)]   // a tone's phase follows from its magnitude: the turn is checked here
    [InlineData("clip-word-22k.wav", 0.3, 0)]      // a random phase lines up about 0.05
    public void ThePhasePriorOfAMelLinesUpWithTheRecordingsOwnStftFrameByFrame(string clip, double least, double overUnturned)
    {
        // Per frame, |Σ_k conj(P)·X| / (‖P‖·‖X‖) of the prior P and the recording's STFT X in the network's frames is blind to a
        // constant phase offset (the integration's arbitrary start) but not to a time shift, which turns bin k by 2πk·shift/n_fft.
        // Without the half-hop turn to the network's frames (hifigan-22k's frame f is centred hop/2 later), the prior is shifted.
        // On the chirp, shifts of ±16 samples from the turn score 0.66 against its 0.77.
        var mel = MelConfig.Preset("hifigan-22k");
        var cfg = StftDenoiserConfig.Create("tiny", mel) with { PhasePrior = true };
        using var net = new StftDenoiser(cfg, new Generator(1), mel);
        var audio = Wav.Read(Path.Combine(AppContext.BaseDirectory, "fixtures", "audio", clip), mel.SampleRate);
        using var spec = new MelSpectrogram(mel);
        var m = spec.Compute(tensor(audio));
        long frames = m.shape[1];
        var x = tensor(audio).narrow(0, 0, Math.Min(audio.Length, frames * mel.Hop));
        x = nn.functional.pad(x, [0, frames * mel.Hop - x.shape[0]]);
        var own = stft(x, cfg.NFft, cfg.Hop, cfg.NFft, hann_window(cfg.NFft, periodic: true), center: true, pad_mode: TorchSharp.PaddingModes.Reflect,
            return_complex: true);                                                                // [bins, F + 1]
        var parts = net.Conditioning(m.unsqueeze(0))[0].narrow(0, 80, 2 * cfg.Bins);
        var prior = view_as_complex(parts.unflatten(0, [2, cfg.Bins]).permute(1, 2, 0).contiguous());
        var energy = own.abs().square().sum(dim: 0);
        var loud = (energy > energy.max() * 0.01).narrow(0, 0, frames);   // frames within 20 dB of the loudest; the prior's last is silent
        var ownParts = view_as_real(own.contiguous());
        var (xr, xi) = (ownParts.select(-1, 0), ownParts.select(-1, 1));
        double Lined(Tensor p)
        {
            var parts = view_as_real(p.contiguous());
            var (pr, pi) = (parts.select(-1, 0), parts.select(-1, 1));
            var dot = ((pr * xr + pi * xi).sum(dim: 0).square() + (pr * xi - pi * xr).sum(dim: 0).square()).sqrt();
            var norms = ((pr.square() + pi.square()).sum(dim: 0) * (xr.square() + xi.square()).sum(dim: 0)).sqrt();
            return (dot / norms).narrow(0, 0, frames).masked_select(loud).mean().item<float>();
        }
        var bin = arange(cfg.Bins, dtype: ScalarType.Float32).unsqueeze(1);
        double aligned = Lined(prior), unturned = Lined(prior * polar(ones_like(bin), bin * (2 * Math.PI * mel.FrameOffset / cfg.NFft)));
        Assert.True(aligned > least && aligned > overUnturned * unturned, $"lined up {aligned:F3}, without the turn {unturned:F3}");
    }

    [Fact]
    public void ATrainingCropIsTurnedToItsPriorsPhaseOffsetAndKeepsItsSpectrum()
    {
        var mel = MelConfig.Preset("hifigan-22k");
        var cfg = StftDenoiserConfig.Create("tiny", mel) with { PhasePrior = true };
        using var net = new StftDenoiser(cfg, new Generator(1), mel);
        var audio = Wav.Read(Path.Combine(AppContext.BaseDirectory, "fixtures", "audio", "clip-word-22k.wav"), mel.SampleRate);
        using var spec = new MelSpectrogram(mel);
        var m = spec.Compute(tensor(audio)).narrow(1, 8, 32).unsqueeze(0);             // a 32-frame training crop
        var x = tensor(audio).narrow(0, 8 * 256, 32 * 256).unsqueeze(0);
        var conditioning = net.Conditioning(m);
        var target = net.TrainingTarget(x, conditioning);
        Assert.Same(x, new StftDenoiser(cfg with { PhasePrior = false }).TrainingTarget(x, m));   // no prior: the crop itself
        Tensor Stft(Tensor w) => view_as_real(stft(w, 1024, 256, 1024, hann_window(1024, periodic: true), center: true,
            pad_mode: TorchSharp.PaddingModes.Reflect, return_complex: true));
        var prior = conditioning.narrow(1, 80, 2 * cfg.Bins).unflatten(1, [2, cfg.Bins]);
        (double Re, double Im) Dot(Tensor w)
        {
            var own = Stft(w);
            var (xr, xi, pr, pi) = (own.select(-1, 0), own.select(-1, 1), prior.select(1, 0), prior.select(1, 1));
            return ((xr * pr + xi * pi).sum().item<float>(), (xr * pi - xi * pr).sum().item<float>());
        }
        var (before, after) = (Dot(x), Dot(target));
        // The turn is exact for the whole crop's spectrum and close for its frames (the Hilbert transform reaches past a window).
        Assert.True(after.Re > 0 && Math.Abs(after.Im) < 0.2 * after.Re, $"turned crop against its prior: {after}, before {before}");
        double lined = Math.Sqrt(before.Re * before.Re + before.Im * before.Im);
        Assert.True(after.Re > 0.95 * lined, $"turned crop against its prior: {after}, before {before}");
        // A turn of every frequency by one angle keeps the magnitude spectrum: frame by frame, and the energy. (Not in the frames
        // within n_fft/2 of the ends: the STFT pads there by reflection, and a reflected turn is a turn the other way.)
        var (a, b) = (Stft(x).square().sum(-1).sqrt().narrow(2, 3, 27), Stft(target).square().sum(-1).sqrt().narrow(2, 3, 27));
        double change = ((a - b).square().sum() / a.square().sum()).sqrt().item<float>();
        Assert.True(change < 0.01, $"magnitude spectrum changed by {change:F4}");
        Assert.Equal(x.square().sum().item<float>(), target.square().sum().item<float>(), x.square().sum().item<float>() * 0.01);
    }

    [Fact]
    public void AStreamedPiecesPhasePriorContinuesThePhaseOfThePieceBeforeItWhereTheyOverlap()
    {
        var mel = MelConfig.Preset("hifigan-22k");
        var cfg = StftDenoiserConfig.Create("tiny", mel) with { PhasePrior = true };
        using var net = new StftDenoiser(cfg, new Generator(1), mel);
        var audio = Wav.Read(Path.Combine(AppContext.BaseDirectory, "fixtures", "audio", "clip-word-22k.wav"), mel.SampleRate);
        using var spec = new MelSpectrogram(mel);
        var m = spec.Compute(tensor(audio)).unsqueeze(0);                                       // [1, 80, 68]
        Tensor Prior(Tensor c) => c.narrow(1, 80, 2 * cfg.Bins);
        using var continuation = new PhaseContinuation();
        var first = Prior(net.Conditioning(m.narrow(2, 0, 48), continuation, 0));
        var second = Prior(net.Conditioning(m.narrow(2, 24, 44), continuation, 24));
        var alone = Prior(net.Conditioning(m.narrow(2, 24, 44)));
        // Frames 24–47 are in both pieces: the second takes the first's phase there (its magnitude is the same frame by frame).
        var overlap = first.narrow(2, 24, 24);
        Assert.True(second.narrow(2, 0, 24).allclose(overlap, 1e-4, 1e-5), "the second piece does not continue the first's phase");
        double apart = (alone.narrow(2, 0, 24) - overlap).abs().mean().item<float>() / overlap.abs().mean().item<float>();
        Assert.True(apart > 0.3, $"a piece on its own begins from an offset of its own: {apart:F3}");
    }

    [Fact]
    public void TheGriffinLimStartMadeFromAPhasePriorIsGriffinLimsOwnFromThePhaseGradients()
    {
        var mel = MelConfig.Preset("hifigan-22k");
        var cfg = StftDenoiserConfig.Create("tiny", mel) with { PhasePrior = true };
        using var net = new StftDenoiser(cfg, new Generator(1), mel);
        using var plain = new StftDenoiser(cfg with { PhasePrior = false }, new Generator(1), mel);
        Assert.True(((IMelConditioned)net).MakesGriffinLimStart);
        Assert.False(((IMelConditioned)plain).MakesGriffinLimStart);
        var audio = Wav.Read(Path.Combine(AppContext.BaseDirectory, "fixtures", "audio", "clip-word-22k.wav"), mel.SampleRate);
        using var spec = new MelSpectrogram(mel);
        var m = spec.Compute(tensor(audio));                                                   // [80, 68]
        long samples = m.shape[1] * mel.Hop;
        var made = net.GriffinLimStart(net.Conditioning(m.unsqueeze(0)), samples, 4)[0];
        var own = tensor(GriffinLim.FromMel(m, mel, 4, start: PhaseStart.PhaseGradient));
        Assert.Equal(samples, own.shape[0]);
        double error = (made - own).abs().max().item<float>() / own.abs().max().item<float>();
        Assert.True(error < 1e-4, $"largest difference {error:E2} of the peak");
        // Mels shorter than Griffin-Lim takes get silence, as the vocoder gives them.
        var tooShort = m.narrow(1, 0, GriffinLim.MinFrames(mel) - 1).unsqueeze(0);
        Assert.Equal(0, net.GriffinLimStart(net.Conditioning(tooShort), tooShort.shape[2] * mel.Hop, 4).abs().max().item<float>());
    }

    [Fact]
    public void APhasePriorOnAPresetWhoseWindowIsNotItsFftIsRefusedBeforeTheCorpusLoads()
    {
        using var tmp = new TempDir();
        var o = new VocoderTrainingOptions
        {
            DataDir = tmp["no-such-corpus"], OutputDir = tmp["run"], Architecture = "stft", Preset = "lmnt-22k", PhasePrior = true,
        };
        var e = Assert.Throws<WaveGradException>(() => VocoderTrainer.Run(o));
        Assert.Equal("PhasePrior: preset 'lmnt-22k' windows 1200 samples, not its n_fft 2048", e.Message);
    }

    /// <summary>A tiny voice with bin gains whose head and gains are not at zero (a fresh one's are, and would hide what a grown
    /// network adds), and a batch to run it on.</summary>
    static (StftDenoiser Voice, Tensor X, Tensor Mels, Tensor Level) TinyVoiceAndBatch(MelConfig mel)
    {
        var voice = new StftDenoiser(StftDenoiserConfig.Create("tiny", mel) with { BinGains = true }, new Generator(1));
        using (no_grad())
            foreach (var (_, p) in voice.named_parameters().Where(p => p.name.StartsWith("head.") || p.name.StartsWith("gains.")))
                p.normal_(0, 0.05);
        return (voice, randn(2, 20 * 256) * 0.2, randn(2, 80, 20) - 4, tensor(new float[] { 0.3f, 0.9f }));
    }

    [Fact]
    public void AVoicesWeightsGrowIntoANetworkWithAPhasePriorThatComputesWhatTheVoiceDid()
    {
        var mel = MelConfig.Preset("hifigan-22k");
        var (small, x, mels, level) = TinyVoiceAndBatch(mel);
        using var _ = small;
        using var grown = new StftDenoiser(small.Config with { PhasePrior = true }, new Generator(2), mel);
        TensorFiles.LoadInto(grown, TensorFiles.Grown(grown, TensorFiles.StateOf(small), "voice"), "voice");
        Assert.True(grown.call(x, mels, level).allclose(small.call(x, mels, level), 1e-5, 1e-6));
        // Weights that do not fit a smaller network's are refused, naming the tensor.
        using var wider = new StftDenoiser(StftDenoiserConfig.Create("small", mel));
        var e = Assert.Throws<WaveGradException>(() => TensorFiles.Grown(small, TensorFiles.StateOf(wider), "voice"));
        Assert.Contains("voice: weights cannot grow", e.Message);
    }

    [Fact]
    public void AVoicesWeightsGrowIntoADeeperNetworkThatComputesWhatTheVoiceDidAndThenLearns()
    {
        var (voice, x, mels, level) = TinyVoiceAndBatch(MelConfig.Preset("hifigan-22k"));
        using var _ = voice;
        var cfg = voice.Config;
        using var deeper = new StftDenoiser(cfg with { Blocks = cfg.Blocks + 2 }, new Generator(2));
        var grown = TensorFiles.Grown(deeper, TensorFiles.StateOf(voice), "voice", StftDenoiser.IsBlockOutputScale);
        TensorFiles.LoadInto(deeper, grown, "voice");
        Assert.True(deeper.call(x, mels, level).allclose(voice.call(x, mels, level), 1e-5, 1e-6));
        // The new blocks' scales start at zero, their layers at a live initialisation: the scales' gradients move them at once.
        Assert.All(new[] { "blocks.2.scale", "blocks.3.scale" }, name => Assert.Equal(0f, grown[name].abs().max().item<float>()));
        Assert.True(grown["blocks.3.up.weight"].abs().max().item<float>() > 0);
        deeper.call(x, mels, level).square().mean().backward();
        var scale = deeper.named_parameters().Single(p => p.name == "blocks.3.scale").parameter;
        Assert.True(scale.grad!.abs().max().item<float>() > 0);
        // Without the zeros, a new block's random scale changes what the network computes.
        using var fresh = new StftDenoiser(cfg with { Blocks = cfg.Blocks + 2 }, new Generator(2));
        TensorFiles.LoadInto(fresh, TensorFiles.Grown(fresh, TensorFiles.StateOf(voice), "voice"), "voice");
        Assert.False(fresh.call(x, mels, level).allclose(voice.call(x, mels, level), 1e-5, 1e-6));
    }

    [Fact]
    public void ABf16TrunkKeepsTheTransformsInFloat32AndStaysCloseToTheFloat32Network()
    {
        var cfg = StftDenoiserConfig.Create("tiny", MelConfig.Preset("hifigan-22k")) with { BinGains = true };
        using var fp32 = new StftDenoiser(cfg, new Generator(1));
        using var bf16 = new StftDenoiser(cfg, new Generator(1));
        using (no_grad())
        {
            // Non-zero heads, so the trunk reaches the output; the same weights in both.
            foreach (var (name, p) in fp32.named_parameters().Where(p => p.name.StartsWith("head.") || p.name.StartsWith("gains.")))
                p.copy_(randn(p.shape, generator: new Generator((ulong)name.Length)) * 0.05);
            bf16.load_state_dict(fp32.state_dict());
        }
        bf16.UseBf16Trunk();
        Assert.Equal((ScalarType.Float32, ScalarType.BFloat16), (fp32.TrunkType, bf16.TrunkType));
        var x = randn(2, 20 * 256, generator: new Generator(2)) * 0.2;
        var mel = randn(2, 80, 20, generator: new Generator(3));
        var level = tensor(new float[] { 0.3f, 0.9f });
        using var want = fp32.call(x, mel, level);
        using var got = bf16.call(x, mel, level);
        Assert.Equal(ScalarType.Float32, got.dtype);
        double rel = (got - want).norm().item<float>() / want.norm().item<float>();
        Assert.True(rel > 0 && rel < 0.01, $"relative difference {rel}");
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void TrainsThroughTheOneTrainerAndRendersWithEverySamplerAndStreaming(bool phasePrior)
    {
        using var tmp = new TempDir();
        var data = tmp["data"];
        Directory.CreateDirectory(data);
        Wav.Write(Path.Combine(data, "a.wav"), Tiny.Chirp(0.8), 22050);
        Wav.Write(Path.Combine(data, "b.wav"), Tiny.Chirp(0.7, f0: 220, f1: 180), 22050);
        var losses = new List<double>();
        var o = new VocoderTrainingOptions
        {
            DataDir = data, OutputDir = tmp["run"], Architecture = "stft", Size = "tiny", Steps = 60, BatchSize = 4, CropFrames = 16,
            LearningRate = 5e-3, StftLossWeight = 0, ValidateEvery = 0, CheckpointEvery = 1000, LogEvery = 1000, Log = TextWriter.Null,
            OnStep = (_, l) => losses.Add(l), PhasePrior = phasePrior, PhaseLossWeight = phasePrior ? 0.5 : 0,   // the phase loss on one of the two
        };
        VocoderTrainer.Run(o);
        Assert.Equal(60, losses.Count);
        var recipe = Voice.Load(tmp["run"]).Card["training"]!["recipe"]!;
        Assert.Equal(phasePrior ? 0.5 : null, recipe["phase_loss_weight"]?.GetValue<double>());
        double first = losses.Take(10).Average(), last = losses.TakeLast(10).Average();
        Assert.True(last < 0.85 * first, $"loss {first:F3} → {last:F3}");
        // The kind is part of the checkpoint: resuming it as another kind is refused.
        var asWaveGrad = o with { Architecture = "wavegrad", PhasePrior = false, Steps = 61, Resume = true };
        var wrong = Assert.Throws<WaveGradException>(() => VocoderTrainer.Run(asWaveGrad));
        Assert.Contains("network", wrong.Message);
        // The run folder is a voice of the stft kind; every sampler renders it, streamed or not.
        using var v = Vocoder.Load(tmp["run"]);
        Assert.Equal("stft", v.Voice.Architecture);
        Assert.Equal(1024, v.Voice.RenderDefaults().CpuPieceFrames);   // frame-rate activations are small: longer pieces
        // A phase prior holds the Griffin-Lim start's magnitude and phase: the vocoder makes no start of its own but from a random phase.
        var fromGriffinLim = new SynthesisOptions { Start = SamplerStart.GriffinLim };
        Assert.Equal(!phasePrior, v.Model.UsesEstimate(fromGriffinLim));
        Assert.True(v.Model.UsesEstimate(fromGriffinLim with { StartPhase = PhaseStart.Random }));
        var mel = Tiny.Mel(Tiny.Chirp(1.0));
        foreach (var name in Voice.SamplerNames)
        {
            var opts = new SynthesisOptions
            {
                Sampler = v.Voice.Sampler(name, name == "wavegrad" ? null : "3"), ChunkFrames = 40, Consistency = ConsistencySteps.None,
            };
            var oneShot = v.Synthesize(mel, opts);
            Assert.Equal(mel.shape[1] * 256, oneShot.Length);
            Assert.All(oneShot, s => Assert.True(float.IsFinite(s)));
            var streamed = v.SynthesizeStreaming(mel, opts).SelectMany(c => c).ToArray();
            double l1 = (Tiny.Mel(streamed) - Tiny.Mel(oneShot)).abs().mean().item<float>();
            double s1 = (Tiny.Mel(streamed) - mel).abs().mean().item<float>(), o1 = (Tiny.Mel(oneShot) - mel).abs().mean().item<float>();
            // A phase prior's integration starts from the largest coefficient of the first piece a stream renders, not of the whole
            // mel: the streamed render differs from the one-shot by a phase offset, so it is held to the one-shot's quality instead.
            if (phasePrior) Assert.True(s1 < 1.05 * o1 + 0.01, $"{name}: streamed log-mel L1 to the mel {s1}, one-shot {o1}");
            else Assert.True(l1 < 0.05, $"{name}: streamed vs one-shot log-mel L1 {l1}");
        }
        // An fp16 export loads and renders too.
        v.Voice.Export(tmp["exported"]);
        using var exported = Vocoder.Load(tmp["exported"]);
        Assert.Equal(mel.shape[1] * 256, exported.Synthesize(mel).Length);
        // The card counts the CPU time the weights have had, and a run started from them adds its own to theirs.
        double Training(string dir, string field) => Voice.Load(dir).Card["training"]![field]!.GetValue<double>();
        double own = Training(tmp["run"], "cpu_minutes");
        Assert.True(own > 0 && own == Training(tmp["run"], "cpu_minutes_in_all"), $"{own} CPU minutes");
        Assert.Equal(own, Training(tmp["exported"], "cpu_minutes_in_all"));
        VocoderTrainer.Run(o with { OutputDir = tmp["continued"], Steps = 5, InitFrom = tmp["exported"] });
        Assert.Equal(own, Training(tmp["continued"], "cpu_minutes_before"));
        Assert.True(Training(tmp["continued"], "cpu_minutes_in_all") >= own);
        // A voice without a phase prior starts a run with one: its weights grow into the larger network.
        if (!phasePrior) VocoderTrainer.Run(o with { OutputDir = tmp["grown"], Steps = 2, InitFrom = tmp["exported"], PhasePrior = true });
        if (!phasePrior) Assert.True(Voice.Load(tmp["grown"]).Network["phase_prior"]!.GetValue<bool>());
        // A network cannot shrink: a run from a voice with a phase prior must have one too, and is told so in one line.
        var shrunk = Assert.Throws<WaveGradException>(() =>
            VocoderTrainer.Run(o with { OutputDir = tmp["shrunk"], Steps = 2, InitFrom = tmp[phasePrior ? "run" : "grown"], PhasePrior = false }));
        Assert.EndsWith("the voice's network has phase_prior: add --phase-prior", shrunk.Message);
    }
}
