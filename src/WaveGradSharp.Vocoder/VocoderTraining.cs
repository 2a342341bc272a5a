using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using TorchSharp;
using WaveGradSharp.Audio;
using WaveGradSharp.Diffusion;
using static TorchSharp.torch;
using WaveGradSharp.Core;

namespace WaveGradSharp.Vocoder;

/// <summary>One utterance of a training corpus: its waveform (frames·hop samples) and log-mel, on the CPU, and the speaker
/// (the corpus folder it came from).</summary>
public sealed record Utterance(string Name, Tensor Audio, Tensor Mel, string Speaker = "")
{
    /// <summary>Mel frames.</summary>
    public long Frames => Mel.shape[1];
}

/// <summary>
/// A speech corpus loaded with a voice's mel preset: a folder of WAVs (recursive), the LJSpeech layout (metadata.csv +
/// wavs/), or a folder of speaker folders in the LJSpeech layout (what scripts/build-multispeaker.sh writes). Each
/// corpus's validation list is its val.txt, otherwise every 20th file in name order. Mels are computed once at load
/// and kept in memory. A file that cannot be read is skipped with a one-line warning and counted.
/// </summary>
public sealed class VocoderDataset
{
    /// <summary>Training utterances long enough for a crop.</summary>
    public List<Utterance> Train { get; } = [];
    /// <summary>Held-out utterances.</summary>
    public List<Utterance> Validation { get; } = [];
    /// <summary>Files skipped because they are shorter than one crop.</summary>
    public int SkippedShort { get; private set; }
    /// <summary>Files skipped because they could not be read.</summary>
    public int SkippedUnreadable { get; private set; }
    /// <summary>Total training audio in seconds.</summary>
    public double TrainSeconds { get; private set; }
    /// <summary>Speaker (corpus folder) names, in load order.</summary>
    public List<string> Speakers { get; } = [];

    /// <summary>Loads the corpus; files shorter than <paramref name="cropFrames"/> mel frames are skipped and counted.
    /// <paramref name="validationOnly"/> reads only the validation files, <paramref name="perSpeaker"/> at most that many
    /// per speaker; warnings about skipped files go to <paramref name="warnings"/>.</summary>
    public static VocoderDataset Load(string dir, MelConfig mel, int cropFrames, int maxFiles = int.MaxValue, bool validationOnly = false,
        TextWriter? warnings = null, int perSpeaker = int.MaxValue)
    {
        if (!Directory.Exists(dir)) throw new WaveGradException($"{dir}: no such data folder");
        var corpora = Corpora(dir);
        var ds = new VocoderDataset();
        using var melSpec = new MelSpectrogram(mel);
        int taken = 0, listed = 0;
        foreach (var (speaker, files, valNames) in corpora)
        {
            listed += files.Count;
            ds.Speakers.Add(speaker);
            int fromSpeaker = 0;
            foreach (var f in files)
            {
                if (taken >= maxFiles || fromSpeaker >= perSpeaker) break;
                string name = Path.GetFileNameWithoutExtension(f);
                bool isVal = valNames.Contains(name);
                if (validationOnly && !isVal) continue;
                taken++; fromSpeaker++;
                float[] samples;
                try { samples = AudioFiles.Read(f, mel.SampleRate); }
                catch (WaveGradException e)
                {
                    ds.SkippedUnreadable++;
                    (warnings ?? Console.Error).WriteLine($"warning: {Text.Escape(e.Message, 300)}; skipped");
                    continue;
                }
                if (samples.Length <= mel.NFft) { ds.SkippedShort++; continue; }
                for (int i = 0; i < samples.Length; i++) samples[i] = Math.Clamp(samples[i], -1f, 1f);
                using var audio = tensor(samples);
                var m = melSpec.Compute(audio);
                if (!isVal && m.shape[1] < cropFrames) { ds.SkippedShort++; m.Dispose(); continue; }
                var u = new Utterance(name, nn.functional.pad(audio, [0, m.shape[1] * mel.Hop - audio.shape[0]]), m, speaker);
                if (isVal) ds.Validation.Add(u);
                else { ds.Train.Add(u); ds.TrainSeconds += samples.Length / (double)mel.SampleRate; }
            }
        }
        if (listed == 0) throw new WaveGradException($"{dir}: no .wav files found (expected a folder of WAVs, the LJSpeech layout or speaker folders in it)");
        if (ds.Train.Count == 0 && !validationOnly)
            throw new WaveGradException($"{dir}: no training clip is at least {cropFrames} mel frames long " +
                $"({ds.SkippedShort} too short, {ds.SkippedUnreadable} unreadable)");
        return ds;
    }

    /// <summary>The corpora under <paramref name="dir"/>: itself (LJSpeech layout or a folder of WAVs), or each speaker
    /// folder in the LJSpeech layout; with their files and validation names.</summary>
    static List<(string Speaker, List<string> Files, HashSet<string> Val)> Corpora(string dir)
    {
        static bool IsLj(string d) => File.Exists(Path.Combine(d, "metadata.csv")) && Directory.Exists(Path.Combine(d, "wavs"));
        List<string> roots = IsLj(dir) ? [dir] : Directory.GetDirectories(dir).Where(IsLj).Order(StringComparer.Ordinal).ToList();
        if (roots.Count == 0) roots = [dir];
        return roots.Select(root =>
        {
            var files = ListFiles(root);
            string valPath = Path.Combine(root, "val.txt");
            var val = File.Exists(valPath)
                ? InputFile.ReadLines(valPath, "validation list").Select(l => l.Trim()).Where(l => l.Length > 0).ToHashSet()
                : files.Where((_, i) => i % 20 == 19).Select(f => Path.GetFileNameWithoutExtension(f)).ToHashSet();
            return (Path.GetFileName(Path.GetFullPath(root).TrimEnd('/', '\\')), files, val);
        }).ToList();
    }

    /// <summary>A corpus's audio files: metadata.csv's ids under wavs/ (each a .wav or a .wgopus), or every such file below.</summary>
    internal static List<string> ListFiles(string dir)
    {
        string meta = Path.Combine(dir, "metadata.csv"), wavs = Path.Combine(dir, "wavs");
        if (File.Exists(meta) && Directory.Exists(wavs))
            return InputFile.ReadLines(meta, "corpus metadata file").Select(l => l.Split('|')[0].Trim()).Where(id => id.Length > 0)
                .Select(id => new[] { ".wav", OpusAudio.Extension }.Select(e => Path.Combine(wavs, id + e)).FirstOrDefault(File.Exists))
                .OfType<string>().ToList();
        return Directory.EnumerateFiles(dir, "*", SearchOption.AllDirectories)
            .Where(f => f.EndsWith(".wav", StringComparison.OrdinalIgnoreCase) || f.EndsWith(OpusAudio.Extension, StringComparison.OrdinalIgnoreCase))
            .Order(StringComparer.Ordinal).ToList();
    }

    /// <summary>The corpora under <paramref name="dir"/> (see <see cref="Load"/>) with their files and validation names.</summary>
    internal static List<(string Speaker, List<string> Files, HashSet<string> Val)> SpeakerCorpora(string dir) => Corpora(dir);

    /// <summary>A random batch of aligned crops: audio [B, crop·hop] and mel [B, n_mels, crop].</summary>
    public (Tensor Audio, Tensor Mel) Batch(int batch, int cropFrames, int hop, Generator rng)
    {
        using var scope = NewDisposeScope();
        var which = randint(0, Train.Count, [batch], generator: rng, dtype: ScalarType.Int64).data<long>().ToArray();
        var audios = new Tensor[batch];
        var mels = new Tensor[batch];
        for (int i = 0; i < batch; i++)
        {
            var u = Train[(int)which[i]];
            long start = randint(0, u.Frames - cropFrames + 1, [1], generator: rng, dtype: ScalarType.Int64).item<long>();
            mels[i] = u.Mel[.., (int)start..(int)(start + cropFrames)];
            audios[i] = u.Audio[(int)(start * hop)..(int)((start + cropFrames) * hop)];
        }
        return (stack(audios).MoveToOuterDisposeScope(), stack(mels).MoveToOuterDisposeScope());
    }
}

/// <summary>Settings of <c>wavegrad train vocoder</c>.</summary>
public sealed record VocoderTrainingOptions
{
    /// <summary>Folder of WAVs, LJSpeech layout, or a folder of speaker folders in that layout.</summary>
    public required string DataDir { get; init; }
    /// <summary>Run folder: it becomes a voice bundle (EMA weights) with raw weights and a checkpoint/ beside them.</summary>
    public required string OutputDir { get; init; }
    /// <summary>Mel preset.</summary>
    public string Preset { get; init; } = MelConfig.DefaultPreset;
    /// <summary>The network kind (<see cref="VocoderArchitectures"/>: <c>wavegrad</c> or <c>stft</c>).</summary>
    public string Architecture { get; init; } = VocoderArchitectures.Default;
    /// <summary>Model size (the kind's names: small, base, large for WaveGrad).</summary>
    public string Size { get; init; } = "small";
    /// <summary>Overrides <see cref="Size"/> with an explicit WaveGrad network shape (tests use tiny ones).</summary>
    public WaveGradConfig? Network { get; init; }
    /// <summary>Step to stop at (total, counting resumed steps).</summary>
    public long Steps { get; init; } = 1000;
    /// <summary>Crops per step.</summary>
    public int BatchSize { get; init; } = 8;
    /// <summary>Mel frames per crop (24 for base, as in the paper).</summary>
    public int CropFrames { get; init; } = 24;
    /// <summary>Adam learning rate.</summary>
    public double LearningRate { get; init; } = 2e-4;
    /// <summary>Gradient-norm clip.</summary>
    public double GradClip { get; init; } = 1.0;
    /// <summary>L1 (WaveGrad) or L2: on ε, or for an x̂₀-predicting kind on x̂₀ in units of its preconditioning's c_out
    /// (<see cref="Losses.PreconditionedX0"/>).</summary>
    public LossNorm Loss { get; init; } = LossNorm.L1;
    /// <summary>The noise prior: "standard" (WaveGrad's N(0, I)) or "priorgrad" (see <see cref="NoisePrior"/>).</summary>
    public string Prior { get; init; } = "standard";
    /// <summary>Weight of the auxiliary multi-resolution STFT loss on the network's one-step estimate of the clean
    /// waveform (0: off; see <see cref="DiffusionVocoderObjective"/>).</summary>
    public double StftLossWeight { get; init; }
    /// <summary>Weight of the auxiliary phase-derivative loss on the same estimate (<see cref="Metrics.PhaseDerivativeError"/>: its
    /// instantaneous frequency and group delay against the clean crop's; 0: off; see <see cref="DiffusionVocoderObjective"/>).</summary>
    public double PhaseLossWeight { get; init; }
    /// <summary>Weight of the adversarial loss from a <see cref="WaveformCritic"/> on the estimates of the crops whose noise level
    /// lies above the schedule's first third (0: no critic). x̂₀-predicting kinds only. The critic's state is kept beside the checkpoint, in
    /// <see cref="CriticFile"/>, so a resumed run goes on with it.</summary>
    public double CriticWeight { get; init; }
    /// <summary>The run folder's file of the critic's weights and optimizer state.</summary>
    public const string CriticFile = "critic.safetensors";
    /// <summary>Largest EMA decay.</summary>
    public double EmaDecay { get; init; } = 0.9999;
    /// <summary>Checkpoint interval in steps (and always at exit).</summary>
    public int CheckpointEvery { get; init; } = 500;
    /// <summary>Validation interval in steps (0: never).</summary>
    public int ValidateEvery { get; init; } = 500;
    /// <summary>Progress line interval.</summary>
    public int LogEvery { get; init; } = 10;
    /// <summary>Seed of every random choice (crops, noise levels, noise).</summary>
    public long Seed { get; init; } = 1234;
    /// <summary>Continue from OutputDir/checkpoint.</summary>
    public bool Resume { get; init; }
    /// <summary>Device to train on.</summary>
    public Device Device { get; init; } = CPU;
    /// <summary>bf16 weights and activations with fp32 master weights (CUDA).</summary>
    public bool Bf16 { get; init; }
    /// <summary>UBlock dilation order.</summary>
    public DilationOrder Dilations { get; init; } = DilationOrder.Paper;
    /// <summary>Noise-level encoding scale (paper 5000, lmnt 1).</summary>
    public double NoiseScale { get; init; } = 5000;
    /// <summary>The stft kind's per-bin gains on the noisy input (<see cref="StftDenoiserConfig.BinGains"/>).</summary>
    public bool BinGains { get; init; }
    /// <summary>The stft kind's bin gains as a Wiener mask (<see cref="StftDenoiserConfig.WienerGains"/>); implies <see cref="BinGains"/>.</summary>
    public bool WienerGains { get; init; }
    /// <summary>The stft kind's phase prior from the mel (<see cref="StftDenoiserConfig.PhasePrior"/>).</summary>
    public bool PhasePrior { get; init; }
    /// <summary>The stft kind's ConvNeXt blocks; 0: the size's. With <see cref="InitFrom"/>, blocks past the voice's are added after
    /// its own with their output scale at zero, so the deeper network starts computing what the voice did.</summary>
    public int Blocks { get; init; }
    /// <summary>
    /// 0: noise levels drawn over the whole training schedule (any sampler can use the network). N: only the N levels that the
    /// samplers respacing the training schedule to N steps visit (<c>ddim</c>, <c>respaced</c>), each drawn as often: the network
    /// learns just what an N-step render asks of it, N of them instead of a thousand, and its card names <c>ddim</c> with N steps
    /// as its default sampler.
    /// </summary>
    public int TrainLevels { get; init; }
    /// <summary>
    /// The share of crops whose noise level is drawn from the training schedule's first <see
    /// cref="DiffusionVocoderObjective.LowNoiseSteps"/> steps (σ = √(1 − ᾱ)/√ᾱ up to 0.86, the levels a render from a Griffin-Lim
    /// start visits) instead of all of it: 0 (the default) draws every crop over the whole schedule, where two thirds of the
    /// levels lie at σ above 0.86, below −18 dB of a waveform of std 0.1.
    /// </summary>
    public double LowNoiseShare { get; init; }
    /// <summary>Name written into voice.json.</summary>
    public string? VoiceName { get; init; }
    /// <summary>Stop after this many non-finite losses in a row.</summary>
    public int MaxNonFiniteInARow { get; init; } = 20;
    /// <summary>At most this many files are loaded (for quick runs).</summary>
    public int MaxFiles { get; init; } = int.MaxValue;
    /// <summary>Free-form fields copied into voice.json (corpus description and so on).</summary>
    public JsonObject? Card { get; init; }
    /// <summary>Stop (with a checkpoint) after this many minutes of wall time in this run.</summary>
    public double MaxMinutes { get; init; } = double.PositiveInfinity;
    /// <summary>Start a new run from the weights of a voice or run folder (model-raw.safetensors if present, else model.safetensors; EMA from
    /// model.safetensors).</summary>
    public string? InitFrom { get; init; }
    /// <summary>Called after every step with (step, loss); for tests and tools.</summary>
    public Action<long, double>? OnStep { get; init; }
    /// <summary>Where progress goes (default: the console).</summary>
    public TextWriter? Log { get; init; }
    /// <summary>Where warnings about skipped corpus files go (default: standard error, apart from the progress on standard output).</summary>
    public TextWriter? Warnings { get; init; }
}

/// <summary>
/// The training objective of a diffusion vocoder (<see cref="IDiffusionVocoderArchitecture"/>): a batch of aligned (audio, mel)
/// crops, a continuous noise level √ᾱ per crop drawn between adjacent levels of the 1000-step training schedule,
/// x_t = √ᾱ·x_0 + √(1−ᾱ)·ε with ε from the noise prior. An ε-predicting network (WaveGrad) is scored by the L1 (or L2) distance
/// of ε̂ to ε, in units of the prior's σ (PriorGrad's weighting); with a positive STFT weight it adds λ·√ᾱ²·MR-STFT(x̂_0, x_0) on
/// the one-step estimate x̂_0 = (x_t − √(1−ᾱ)·ε̂)/√ᾱ, the weight √ᾱ² fading the term out where x̂_0 is mostly noise. An
/// x̂₀-predicting network is scored by its x̂₀ error in units of its preconditioning's c_out, L1 or L2
/// (<see cref="Losses.PreconditionedX0"/>), plus λ·MR-STFT(x̂_0, x_0) at every level: its x̂₀ is bounded, and the term
/// sharpens the high-noise estimate that the first reverse step keeps. A positive <paramref name="phaseWeight"/> adds, beside the
/// MR-STFT term and weighted as it is, μ·<see cref="Metrics.PhaseDerivativeError"/>(x̂_0, x_0). With <paramref name="levels"/>,
/// √ᾱ is one of those levels instead (<see cref="VocoderTrainingOptions.TrainLevels"/>); with a <paramref name="lowNoiseShare"/>,
/// that share of the crops draws it from the schedule's first <see cref="LowNoiseSteps"/> steps
/// (<see cref="VocoderTrainingOptions.LowNoiseShare"/>). With a <paramref name="critic"/> (x̂₀-predicting kinds), the crops above
/// the schedule's first third first train it on their x̂₀ and then add <paramref name="criticWeight"/> times its loss for the
/// network (<see cref="WaveformCritic"/>).
/// </summary>
public sealed class DiffusionVocoderObjective(TrainableNetwork network, Prediction predicts, VocoderDataset data, MelConfig mel, NoisePrior prior,
    int batch, int cropFrames, LossNorm norm, double stftWeight, Device device, bool bf16, IReadOnlyList<double>? levels = null,
    double lowNoiseShare = 0, double phaseWeight = 0, WaveformCritic? critic = null, double criticWeight = 0) : ITrainingObjective
{
    /// <summary>The training schedule's steps from which <see cref="VocoderTrainingOptions.LowNoiseShare"/> draws: its first third,
    /// where √ᾱ stays above 0.76 (σ up to 0.86).</summary>
    public const int LowNoiseSteps = 333;

    readonly Tensor? levelTable = levels is null ? null : tensor(levels.Select(l => (float)l).ToArray()).DetachFromDisposeScope();

    /// <summary>The critic's last loss (NaN before its first step or without one).</summary>
    public double LastCriticLoss { get; private set; } = double.NaN;

    /// <summary>The training schedule: linspace(1e-6, 0.01, 1000).</summary>
    public static NoiseSchedule TrainingSchedule { get; } = NoiseSchedule.Named("wavegrad-train");
    static readonly ForwardProcess q = new(TrainingSchedule);

    /// <summary>The √ᾱ below which a crop's estimate goes to the <see cref="WaveformCritic"/>: the schedule's level about
    /// <see cref="LowNoiseSteps"/>. Below it (more noise) x̂₀ comes from the mel and the prior more than from the noisy input, and
    /// a regression averages its phase away; above it x̂₀ keeps the clean crop's own loud bins, and the critic cannot tell it from
    /// the crop (tried: its loss sat at 0.5 a period). A render's first steps are made there and its later ones keep them.</summary>
    static readonly double CriticLevel = TrainingSchedule.SqrtAlphasCumprod[LowNoiseSteps];

    /// <inheritdoc/>
    public long SamplesPerStep => (long)batch * cropFrames * mel.Hop;

    /// <inheritdoc/>
    public Tensor Loss(Generator rng)
    {
        var (audio, m) = data.Batch(batch, cropFrames, mel.Hop, rng);
        var conditioning = m;
        if (network.Network is IMelConditioned c)
        {
            conditioning = c.Conditioning(m);
            audio = c.TrainingTarget(audio, conditioning);
        }
        var levels = levelTable is null
            ? q.SampleContinuousLevels(batch, rng)
            : levelTable.index_select(0, randint(0, levelTable.shape[0], [batch], generator: rng, dtype: ScalarType.Int64));
        if (lowNoiseShare > 0)   // drawn only then, so that a run without it draws the random stream it always did
        {
            var low = q.SampleContinuousLevels(batch, rng, maxStep: LowNoiseSteps);
            levels = where(rand([batch], generator: rng) < lowNoiseShare, low, levels);
        }
        var z = randn(audio.shape, generator: rng);
        var std = prior.SampleStd(m, mel);
        var noise = std is null ? z : z * std;
        var noisy = ForwardProcess.SampleContinuous(audio, levels, noise);
        var dt = bf16 ? ScalarType.BFloat16 : ScalarType.Float32;
        // A prepared conditioning stays float32, as it is at render time: the network casts what its trunk takes.
        var conditioned = conditioning.to(device).to_type(ReferenceEquals(conditioning, m) ? dt : ScalarType.Float32);
        var pred = network.Network.call(noisy.to(device).to_type(dt), conditioned, levels.to(device)).to_type(ScalarType.Float32);
        var l = levels.to(device).unsqueeze(1);
        var clean = audio.to(device);
        if (predicts == Prediction.X0)
        {
            var regression = Losses.PreconditionedX0(pred, clean, l, network.SigmaData ?? 1, norm);
            return regression + Auxiliary(clean, pred, null) + Adversarial(clean, pred, l.reshape(-1));
        }
        var loss = std is null
            ? Losses.Regression(pred, noise.to(device), norm)
            : Losses.Regression(pred / std.to(device), z.to(device), norm);
        if (stftWeight <= 0 && phaseWeight <= 0) return loss;
        var x0 = Parameterisation.X0FromEpsilon(noisy.to(device), pred, l, (1 - l * l).sqrt());
        return loss + Auxiliary(clean, x0, levels.to(device) * levels.to(device));
    }

    /// <summary>With a critic: its step on the crops whose level is below <see cref="CriticLevel"/>, then the weighted critic
    /// loss of the network's estimates of them, as a share of the batch; 0 without a critic or such crops.</summary>
    Tensor Adversarial(Tensor clean, Tensor x0, Tensor levels)
    {
        if (critic is null) return zeros([], device: clean.device);
        var chosen = nonzero(levels < CriticLevel).reshape(-1);
        if (chosen.shape[0] == 0) return zeros([], device: clean.device);
        var (real, fake) = (clean.index_select(0, chosen), x0.index_select(0, chosen));
        LastCriticLoss = critic.Learn(real, fake);
        return critic.NetworkLoss(real, fake) * (criticWeight * chosen.shape[0] / clean.shape[0]);
    }

    /// <summary>The weighted MR-STFT and phase-derivative terms on an estimate x̂₀ [B, T], each example's weighted by
    /// <paramref name="fade"/> [B] where given; 0 when both weights are.</summary>
    Tensor Auxiliary(Tensor clean, Tensor x0, Tensor? fade)
    {
        var terms = zeros(clean.shape[0], device: clean.device);
        if (stftWeight > 0)
        {
            var (sc, lm) = Metrics.MultiResolutionStft(clean, x0);
            terms = terms + stftWeight * (sc + lm);
        }
        if (phaseWeight > 0) terms = terms + phaseWeight * Metrics.PhaseDerivativeError(clean, x0);
        return (fade is null ? terms : fade * terms).mean();
    }
}

/// <summary>
/// Trains a diffusion vocoder of any registered kind (<see cref="IDiffusionVocoderArchitecture"/>) with the one training loop
/// (<see cref="Trainer"/>) and <see cref="DiffusionVocoderObjective"/>: Adam with gradient clipping, an EMA with warm-up, atomic
/// checkpoints and exact resume (the kind and its config are part of the checkpoint and checked on resume). The run folder is
/// itself a voice.
/// </summary>
public static class VocoderTrainer
{
    /// <summary>Runs training to <see cref="VocoderTrainingOptions.Steps"/>; returns the final step.</summary>
    public static long Run(VocoderTrainingOptions o, CancellationToken ct = default)
    {
        if (o.BatchSize < 1 || o.CropFrames < 1) throw WaveGradException.About("BatchSize and CropFrames must be at least 1", "BatchSize", "CropFrames");
        if (!(o.StftLossWeight >= 0)) throw WaveGradException.About($"StftLossWeight {o.StftLossWeight}: must be 0 or more", "StftLossWeight");
        if (!(o.PhaseLossWeight >= 0)) throw WaveGradException.About($"PhaseLossWeight {o.PhaseLossWeight}: must be 0 or more", "PhaseLossWeight");
        if (!(o.CriticWeight >= 0 && o.CriticWeight <= 1000))
            throw WaveGradException.About($"CriticWeight {o.CriticWeight}: must be in [0, 1000]", "CriticWeight");
        var mel = MelConfig.Preset(o.Preset);
        var kind = VocoderArchitectures.Get(o.Architecture, "Architecture") as IDiffusionVocoderArchitecture
            ?? throw WaveGradException.About($"Architecture '{Text.Escape(o.Architecture, 40)}': not a diffusion vocoder the trainer knows", "Architecture");
        if (o.Network is not null && kind is not WaveGradArchitecture)
            throw WaveGradException.About("Network: an explicit WaveGrad shape needs the wavegrad architecture", "Network", "Architecture");
        if (!(o.LowNoiseShare >= 0 && o.LowNoiseShare <= 1))
            throw WaveGradException.About($"LowNoiseShare {o.LowNoiseShare}: must be between 0 and 1", "LowNoiseShare");
        if (o.LowNoiseShare > 0 && o.TrainLevels > 0)
            throw WaveGradException.About("LowNoiseShare and TrainLevels: give one or the other", "LowNoiseShare", "TrainLevels");
        if (o.TrainLevels < 0 || o.TrainLevels > Voice.MaxScheduleSteps)
            throw WaveGradException.About($"TrainLevels {o.TrainLevels}: must be 0 (all) or a step count up to {Voice.MaxScheduleSteps}", "TrainLevels");
        if ((o.BinGains || o.WienerGains) && kind is not StftArchitecture)
        {
            string field = o.WienerGains ? "WienerGains" : "BinGains";
            throw WaveGradException.About($"{field}: only the {StftArchitecture.Name} architecture has bin gains", field, "Architecture");
        }
        if (o.Blocks != 0 && kind is not StftArchitecture)
            throw WaveGradException.About($"Blocks: only the {StftArchitecture.Name} architecture takes a block count", "Blocks", "Architecture");
        if (o.Blocks < 0 || o.Blocks > 64) throw WaveGradException.About($"Blocks {o.Blocks}: must be between 1 and 64 (0: the size's)", "Blocks");
        if (o.PhasePrior && kind is not StftArchitecture)
            throw WaveGradException.About($"PhasePrior: only the {StftArchitecture.Name} architecture has a phase prior", "PhasePrior", "Architecture");
        if (o.PhasePrior && mel.WinLength != mel.NFft)
            throw WaveGradException.About($"PhasePrior: preset '{mel.Name}' windows {mel.WinLength} samples, not its n_fft {mel.NFft}", "PhasePrior",
                "Preset");
        if (o.CriticWeight > 0 && kind.Predicts != Prediction.X0)
            throw WaveGradException.About($"CriticWeight: the {kind.Name} network predicts noise, and the critic judges x̂₀ estimates",
                "CriticWeight", "Architecture");
        if (o.Network is null && !kind.SizeNames.Contains(o.Size))
            throw WaveGradException.About($"Size '{Text.Escape(o.Size, 20)}': the {kind.Name} network's sizes are {string.Join(", ", kind.SizeNames)}", "Size");
        RunLock.ThrowIfHeld(o.OutputDir);   // refused before the corpus loads, not after (the Trainer takes the lock itself)
        var log = o.Log ?? Console.Out;
        var data = VocoderDataset.Load(o.DataDir, mel, o.CropFrames, o.MaxFiles, warnings: o.Warnings);
        log.WriteLine($"data: {data.Train.Count} training clips ({data.TrainSeconds / 60:F1} min) of {data.Speakers.Count} speaker(s), " +
            $"{data.Validation.Count} validation; skipped {data.SkippedShort} shorter than {o.CropFrames} frames, {data.SkippedUnreadable} unreadable");
        var prior = o.Prior switch
        {
            "standard" => NoisePrior.Standard,
            "priorgrad" => new NoisePrior { Kind = "priorgrad", ReferenceLevel = ReferenceLevel(data, mel) },
            _ => throw WaveGradException.About($"Prior '{o.Prior}': expected standard or priorgrad", "Prior"),
        };
        var net = kind.NewNetwork(o.Size, mel, o, new Generator((ulong)o.Seed + 1));
        Dictionary<string, Tensor>? emaStart = null;
        // CPU minutes of the weights this run starts from: a resumed run's card says; a voice it is initialised from adds its own.
        string runCard = Path.Combine(o.OutputDir, "voice.json");
        double cpuMinutesBefore = o.Resume && File.Exists(runCard) ? Minutes(InputFile.ReadJsonObject(runCard, "voice card"), "cpu_minutes_before") : 0;
        if (o.InitFrom is string init && !o.Resume)
        {
            var from = Voice.Load(init);
            cpuMinutesBefore = CpuMinutesInAll(from.Card);
            if (from.Architecture != kind.Name)
                throw WaveGradException.About($"{from.Directory}: a {from.Architecture} voice cannot start a {kind.Name} run", "InitFrom", "Architecture");
            // A switch the voice's network has (a card field set true, named as its flag) must be given again: a network cannot shrink.
            var lacking = from.Network.Where(kv => kv.Value is JsonValue v && v.TryGetValue(out bool on) && on && net.Card[kv.Key] is null)
                .Select(kv => kv.Key).ToList();
            if (lacking.Count > 0)
                throw WaveGradException.About($"{from.Directory}: the voice's network has {string.Join(", ", lacking)}: add " +
                    string.Join(" ", lacking.Select(k => "--" + k.Replace('_', '-'))), "InitFrom");
            // The new network may have grown (say, a phase prior added): its new inputs start at zero weight, so it starts as the voice.
            string raw = Path.Combine(from.Directory, "model-raw.safetensors"), rawPath = File.Exists(raw) ? raw : from.WeightsPath;
            TensorFiles.LoadInto(net.Network, TensorFiles.Grown(net.Network, TensorFiles.Load(rawPath), rawPath, net.ZeroWhenGrown), rawPath);
            emaStart = TensorFiles.Grown(net.Network, from.Bundle.LoadWeights(), from.WeightsPath, net.ZeroWhenGrown);
        }
        var recipe = new JsonObject { ["loss"] = o.Loss.ToString(), ["prior"] = prior.ToCard(), ["stft_loss_weight"] = o.StftLossWeight };
        // Each only when set, so older checkpoints resume as they were.
        if (o.TrainLevels > 0) recipe["train_levels"] = o.TrainLevels;
        if (o.LowNoiseShare > 0) recipe["low_noise_share"] = o.LowNoiseShare;
        if (o.PhaseLossWeight > 0) recipe["phase_loss_weight"] = o.PhaseLossWeight;
        if (o.CriticWeight > 0) recipe["critic_weight"] = o.CriticWeight;
        var network = new JsonObject { [kind.Name] = net.Card.DeepClone(), ["preset"] = mel.Name, ["recipe"] = recipe };
        string name = o.VoiceName ?? Path.GetFileName(Path.GetFullPath(o.OutputDir).TrimEnd('/'));
        // One sampler is the source of both: the levels a --train-levels run trains on are those its validation renders visit.
        var validation = ValidationSampler(o);
        var trainLevels = o.TrainLevels > 0 ? validation.Levels.Select(l => l.SignalScale).ToList() : null;
        string criticPath = Path.Combine(o.OutputDir, VocoderTrainingOptions.CriticFile);
        if (o.CriticWeight > 0 && o.Resume && !File.Exists(criticPath))
            throw WaveGradException.About($"{criticPath}: missing; a run with a critic resumes only with the critic's state", "CriticWeight", "Resume");
        if (o.CriticWeight > 0) random.manual_seed(o.Seed + 2);   // the critic's initial weights come from libtorch's global generator
        var critic = o.CriticWeight > 0 ? new WaveformCritic(o.Device) : null;
        if (critic is not null && o.Resume) critic.Load(TensorFiles.Load(criticPath), criticPath);
        var objective = new DiffusionVocoderObjective(net, kind.Predicts, data, mel, prior, o.BatchSize, o.CropFrames, o.Loss, o.StftLossWeight, o.Device,
            o.Bf16, trainLevels, o.LowNoiseShare, o.PhaseLossWeight, critic, o.CriticWeight);
        return Trainer.Run(net.Network, objective, new TrainerOptions
        {
            RunDir = o.OutputDir, Network = network, Steps = o.Steps, LearningRate = o.LearningRate, GradClip = o.GradClip, EmaDecay = o.EmaDecay,
            EmaStart = emaStart, CheckpointEvery = o.CheckpointEvery, LogEvery = o.LogEvery, MaxMinutes = o.MaxMinutes, Resume = o.Resume,
            Device = o.Device, Bf16 = o.Bf16, MaxNonFiniteInARow = o.MaxNonFiniteInARow, Seed = o.Seed, OnStep = o.OnStep, Log = o.Log,
            ValidateEvery = data.Validation.Count > 0 ? o.ValidateEvery : 0,
            Validate = ("val log-mel L1", ema => Validate(kind, net.Card, ema, mel, prior, data.Validation, o.Device, validation)),
            SaveBundle = snap =>
            {
                SaveVoice(o, kind, name, mel, net.Card, prior, recipe, data, snap, cpuMinutesBefore);
                if (critic is null) return;
                TensorFiles.Save(criticPath, critic.State());
                log.WriteLine($"critic: last loss {objective.LastCriticLoss:F4} (2.5 when it cannot tell estimates from clean crops: 0.5 a period)");
            },
        }, $"network: {kind.Name}, {net.Parameters:N0} parameters ({(o.Network is null ? o.Size : "custom")}), device {o.Device.type}" +
           $"{(o.Bf16 ? " bf16" : "")}, batch {o.BatchSize}×{o.CropFrames} frames, prior {prior.Kind}" +
           $"{(o.StftLossWeight > 0 ? $", STFT loss ×{o.StftLossWeight}" : "")}{(o.PhaseLossWeight > 0 ? $", phase loss ×{o.PhaseLossWeight}" : "")}" +
           $"{(o.CriticWeight > 0 ? $", critic ×{o.CriticWeight}" : "")}", ct);
    }

    /// <summary>PriorGrad's reference level: the 99th percentile of the training frames' loudness (<see cref="NoisePrior.FrameLevel"/>).</summary>
    public static double ReferenceLevel(VocoderDataset data, MelConfig mel)
    {
        using var scope = NewDisposeScope();
        var levels = cat(data.Train.Select(u => NoisePrior.FrameLevel(u.Mel.unsqueeze(0), mel)[0]).ToArray());
        return levels.sort().Values[(int)(0.99 * (levels.shape[0] - 1))].item<float>();
    }

    /// <summary>The sampler validation renders with: WG-6, or DDIM over the levels a <see cref="VocoderTrainingOptions.TrainLevels"/> run
    /// trains.</summary>
    static ISampler ValidationSampler(VocoderTrainingOptions o) =>
        o.TrainLevels > 0 ? new DdimSampler(Voice.TrainingSchedule, o.TrainLevels) : DdpmSampler.WaveGrad(NoiseSchedule.Named("wg-6"));

    /// <summary>Log-mel L1 of EMA renders (from noise with <paramref name="sampler"/>, first 2 s of up to 4 validation clips) against
    /// their mels.</summary>
    public static double Validate(IDiffusionVocoderArchitecture kind, JsonNode card, Ema ema, MelConfig mel, NoisePrior prior, IReadOnlyList<Utterance> clips,
        Device device, ISampler sampler)
    {
        using var scope = NewDisposeScope();
        var net = kind.LoadNetwork((JsonObject)card, mel, "network").Network;
        TensorFiles.LoadInto(net, ema.Shadow, "EMA weights");
        if (device.type != DeviceType.CPU) net.to(device);
        net.eval();
        using var model = new DiffusionVocoderModel(net, mel, prior, sampler, device, kind.Predicts);
        using var spec = new MelSpectrogram(mel);
        var options = new SynthesisOptions { Seed = 7, Start = SamplerStart.Noise };
        int n = Math.Min(4, clips.Count);
        double total = 0;
        for (int i = 0; i < n; i++)
        {
            long frames = Math.Min(clips[i].Frames, 2 * mel.SampleRate / mel.Hop);
            var m = clips[i].Mel[.., ..(int)frames];
            var audio = model.Render(m.unsqueeze(0), new RenderRequest(options, 0, null, default))[0];
            total += Metrics.LogMelL1(spec.Compute(tensor(audio)), m);
        }
        return total / n;
    }

    /// <summary>The CPU minutes a voice's weights have had in all: its run's own and those of the voices it was initialised from
    /// (the card's <c>training.cpu_minutes_in_all</c>; 0 when the card does not say).</summary>
    public static double CpuMinutesInAll(JsonObject card) => Minutes(card, "cpu_minutes_in_all");

    static double Minutes(JsonObject card, string field) =>
        card["training"]?[field] is JsonValue v && v.TryGetValue(out double m) && m >= 0 && double.IsFinite(m) ? m : 0;

    static void SaveVoice(VocoderTrainingOptions o, IDiffusionVocoderArchitecture kind, string name, MelConfig mel, JsonNode network, NoisePrior prior,
        JsonObject recipe, VocoderDataset data, TrainingSnapshot s, double cpuMinutesBefore)
    {
        // Keep what others recorded in the run's voice.json (a searched schedule, notes); refresh the training fields.
        string cardPath = Path.Combine(o.OutputDir, "voice.json");
        var card = File.Exists(cardPath) ? InputFile.ReadJsonObject(cardPath, "voice card") : new JsonObject();
        if (o.Card is not null) foreach (var (k, v) in o.Card) card[k] = v?.DeepClone();
        card["prior"] = prior.ToCard();
        if (o.TrainLevels > 0) card["default_sampler"] = new JsonObject { ["name"] = "ddim", ["steps"] = o.TrainLevels };
        card["training"] = new JsonObject
        {
            ["data"] = Path.GetFullPath(o.DataDir), ["speakers"] = new JsonArray(data.Speakers.Select(x => (JsonNode)x).ToArray()),
            ["train_clips"] = data.Train.Count, ["train_minutes"] = Math.Round(data.TrainSeconds / 60, 2),
            ["steps"] = s.Step, ["batch"] = o.BatchSize, ["crop_frames"] = o.CropFrames, ["learning_rate"] = o.LearningRate,
            ["recipe"] = recipe.DeepClone(), ["device"] = o.Device.type.ToString(), ["bf16"] = o.Bf16,
            ["hardware"] = $"{Environment.ProcessorCount} CPU cores{(o.Device.type == DeviceType.CUDA ? " + CUDA GPU" : "")}",
            ["wall_minutes"] = Math.Round(s.WallSeconds / 60, 1), ["cpu_minutes"] = Math.Round(s.CpuSeconds / 60, 2),
            ["cpu_minutes_before"] = Math.Round(cpuMinutesBefore, 2), ["cpu_minutes_in_all"] = Math.Round(cpuMinutesBefore + s.CpuSeconds / 60, 2),
            ["ema_decay_max"] = o.EmaDecay,
            [o.TrainLevels > 0 ? $"val_logmel_l1_ddim{o.TrainLevels}" : "val_logmel_l1_wg6"] =
                double.IsFinite(s.LastValidation) ? Math.Round(s.LastValidation, 4) : null,
        };
        // The run folder is itself a voice bundle: EMA weights in model.safetensors, raw ones beside them.
        Voice.Save(o.OutputDir, name, mel, kind.Name, network, s.Ema.Shadow, card, half: false);
        TensorFiles.Save(Path.Combine(o.OutputDir, "model-raw.safetensors"), s.Optimizer.Master);
    }
}
