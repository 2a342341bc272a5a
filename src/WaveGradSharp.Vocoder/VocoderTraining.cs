using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using TorchSharp;
using WaveGradSharp.Audio;
using WaveGradSharp.Diffusion;
using static TorchSharp.torch;

namespace WaveGradSharp.Vocoder;

/// <summary>One utterance of a training corpus: its waveform (padded to frames·hop) and log-mel, on the CPU.</summary>
public sealed record Utterance(string Name, Tensor Audio, Tensor Mel)
{
    /// <summary>Mel frames.</summary>
    public long Frames => Mel.shape[1];
}

/// <summary>
/// A folder of WAVs (recursive) or the LJSpeech layout (metadata.csv + wavs/), loaded with a voice's mel preset.
/// The validation list is val.txt when the folder has one, otherwise every 20th file in name order.
/// Mels are computed once at load and kept in memory.
/// </summary>
public sealed class VocoderDataset
{
    /// <summary>Training utterances long enough for a crop.</summary>
    public List<Utterance> Train { get; } = [];
    /// <summary>Held-out utterances.</summary>
    public List<Utterance> Validation { get; } = [];
    /// <summary>Files skipped because they are shorter than one crop.</summary>
    public int SkippedShort { get; private set; }
    /// <summary>Total training audio in seconds.</summary>
    public double TrainSeconds { get; private set; }

    /// <summary>Loads the corpus; files shorter than <paramref name="cropFrames"/> mel frames are skipped and counted.
    /// <paramref name="validationOnly"/> reads only the validation files.</summary>
    public static VocoderDataset Load(string dir, MelConfig mel, int cropFrames, int maxFiles = int.MaxValue, bool validationOnly = false)
    {
        if (!Directory.Exists(dir)) throw new WaveGradException($"{dir}: no such data folder");
        var files = ListFiles(dir);
        if (files.Count == 0) throw new WaveGradException($"{dir}: no .wav files found (expected a folder of WAVs or the LJSpeech layout)");
        var valNames = File.Exists(Path.Combine(dir, "val.txt"))
            ? File.ReadAllLines(Path.Combine(dir, "val.txt")).Select(l => l.Trim()).Where(l => l.Length > 0).ToHashSet()
            : files.Where((_, i) => i % 20 == 19).Select(f => Path.GetFileNameWithoutExtension(f)).ToHashSet();
        var ds = new VocoderDataset();
        using var melSpec = new MelSpectrogram(mel);
        foreach (var f in files.Take(maxFiles))
        {
            if (validationOnly && !valNames.Contains(Path.GetFileNameWithoutExtension(f))) continue;
            var samples = Wav.Read(f, mel.SampleRate);
            for (int i = 0; i < samples.Length; i++) samples[i] = Math.Clamp(samples[i], -1f, 1f);
            var audio = tensor(samples);
            var m = melSpec.Compute(audio);
            string name = Path.GetFileNameWithoutExtension(f);
            bool isVal = valNames.Contains(name);
            if (!isVal && m.shape[1] < cropFrames) { ds.SkippedShort++; audio.Dispose(); m.Dispose(); continue; }
            var padded = nn.functional.pad(audio, [0, m.shape[1] * mel.Hop - audio.shape[0]]);
            audio.Dispose();
            var u = new Utterance(name, padded, m);
            if (isVal) ds.Validation.Add(u);
            else { ds.Train.Add(u); ds.TrainSeconds += samples.Length / (double)mel.SampleRate; }
        }
        if (ds.Train.Count == 0 && !validationOnly) throw new WaveGradException($"{dir}: no training clip is at least {cropFrames} mel frames long ({ds.SkippedShort} too short)");
        return ds;
    }

    static List<string> ListFiles(string dir)
    {
        string meta = Path.Combine(dir, "metadata.csv"), wavs = Path.Combine(dir, "wavs");
        if (File.Exists(meta) && Directory.Exists(wavs))
            return File.ReadAllLines(meta).Select(l => l.Split('|')[0].Trim()).Where(id => id.Length > 0)
                .Select(id => Path.Combine(wavs, id + ".wav")).Where(File.Exists).ToList();
        return Directory.EnumerateFiles(dir, "*.wav", SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToList();
    }

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
    /// <summary>Folder of WAVs or LJSpeech layout.</summary>
    public required string DataDir { get; init; }
    /// <summary>Run folder: it becomes a voice bundle (EMA weights) with raw weights and a checkpoint/ beside them.</summary>
    public required string OutputDir { get; init; }
    /// <summary>Mel preset.</summary>
    public string Preset { get; init; } = MelConfig.DefaultPreset;
    /// <summary>Model size (small, base, large).</summary>
    public string Size { get; init; } = "small";
    /// <summary>Overrides <see cref="Size"/> with an explicit network shape (tests use tiny ones).</summary>
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
    /// <summary>L1 (WaveGrad) or L2 on ε.</summary>
    public LossNorm Loss { get; init; } = LossNorm.L1;
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
    /// <summary>Start a new run from the weights of a voice or run folder (model-raw.safetensors if present, else model.safetensors; EMA from model.safetensors).</summary>
    public string? InitFrom { get; init; }
    /// <summary>Called after every step with (step, loss); for tests and tools.</summary>
    public Action<long, double>? OnStep { get; init; }
    /// <summary>Where progress goes (default: the console).</summary>
    public TextWriter? Log { get; init; }
}

/// <summary>
/// Trains a WaveGrad vocoder: continuous noise levels between adjacent levels of the 1000-step training schedule,
/// L1 on ε, Adam with gradient clipping, an EMA with warm-up, atomic checkpoints and exact resume. A fresh run
/// starts with the output layer at zero.
/// </summary>
public static class VocoderTrainer
{
    /// <summary>The training schedule: linspace(1e-6, 0.01, 1000).</summary>
    public static NoiseSchedule TrainingSchedule { get; } = NoiseSchedule.Named("wavegrad-train");

    /// <summary>Runs training to <see cref="VocoderTrainingOptions.Steps"/>; returns the final step.</summary>
    public static long Run(VocoderTrainingOptions o, CancellationToken ct = default)
    {
        if (o.LogEvery < 1 || o.CheckpointEvery < 1 || o.BatchSize < 1 || o.CropFrames < 1 || o.ValidateEvery < 0)
            throw new WaveGradException("--log-every, --checkpoint-every, --batch and --crop-frames must be at least 1 (--validate-every 0 means never)");
        var log = new TrainingProgress(o.Steps, 0, o.LogEvery, o.Log);
        var mel = MelConfig.Preset(o.Preset);
        var netCfg = o.Network ?? WaveGradConfig.Create(o.Size, mel.Hop, mel.NMels, o.Dilations, o.NoiseScale);
        if (netCfg.NMels != mel.NMels || netCfg.Hop != mel.Hop)
            throw new WaveGradException($"network ({netCfg.NMels} mels, hop {netCfg.Hop}) does not fit preset {mel.Name} ({mel.NMels} mels, hop {mel.Hop})");
        string ckptDir = Path.Combine(o.OutputDir, "checkpoint");
        if (!o.Resume && Directory.Exists(ckptDir))
            throw new WaveGradException($"{o.OutputDir}: already holds a checkpoint; pass --resume to continue it or choose another --output");
        if (o.Resume && !Directory.Exists(ckptDir))
            throw new WaveGradException($"{ckptDir}: no checkpoint to resume");

        NativeTuning.DisableNnpack();
        if (o.Device.type == DeviceType.CPU) NativeTuning.DisableOneDnn();   // its float32 conv gradients are wrong here
        var wall = Stopwatch.StartNew();
        var data = VocoderDataset.Load(o.DataDir, mel, o.CropFrames, o.MaxFiles);
        log.Message($"data: {data.Train.Count} training clips ({data.TrainSeconds / 60:F1} min), {data.Validation.Count} validation, {data.SkippedShort} skipped as shorter than {o.CropFrames} frames");

        var rng = new Generator((ulong)o.Seed);
        var net = new WaveGradNet(netCfg, new Generator((ulong)o.Seed + 1));
        if (o.Device.type != DeviceType.CPU) net.to(o.Device);
        Dictionary<string, Tensor>? emaStart = null;
        if (o.InitFrom is string init && !o.Resume)
        {
            string emaPath = Path.Combine(init, "model.safetensors"), rawPath = Path.Combine(init, "model-raw.safetensors");
            string startPath = File.Exists(rawPath) ? rawPath : emaPath;
            TensorFiles.LoadInto(net, TensorFiles.Load(startPath), startPath);
            emaStart = TensorFiles.Load(emaPath);
            log.Message($"initialised from {init}");
        }
        else if (!o.Resume) net.ZeroOutputLayer();   // a fresh run starts from ε̂ = 0 (see ZeroOutputLayer)
        // bf16: the module's parameters are replaced by bf16 ones, so the optimizer and the EMA are built after
        // the cast and their fp32 copies are seeded from the weights as they were before it.
        Dictionary<string, Tensor>? fp32 = null;
        if (o.Bf16)
        {
            fp32 = net.named_parameters().ToDictionary(p => p.name, p => p.parameter.detach().clone());
            net.to(ScalarType.BFloat16);
        }
        var opt = new AdamW(net, o.LearningRate);
        var ema = new Ema(net, o.EmaDecay);
        if (fp32 is not null)
            using (no_grad())
                foreach (var (k, v) in fp32) { opt.Master[k].copy_(v); ema.Shadow[k].copy_(v); }
        if (emaStart is not null)
        {
            foreach (var (k, v) in ema.Shadow)
            {
                if (!emaStart.TryGetValue(k, out var t)) throw new WaveGradException($"{o.InitFrom}/model.safetensors: lacks '{k}'");
                v.copy_(t);
            }
            ema.Updates = 10_000;   // the imported average is already warm
        }
        long step = 0, nonFiniteTotal = 0;
        double previousWall = 0;
        if (o.Resume)
        {
            var state = LoadCheckpoint(ckptDir, net, opt, ema, rng, netCfg);
            step = state.Step; nonFiniteTotal = state.NonFinite; previousWall = state.WallSeconds;
            log = new TrainingProgress(o.Steps, step, o.LogEvery, o.Log);
            log.Message($"resumed at step {step}");
        }
        log.Message($"network: {net.ParameterCount:N0} parameters ({(o.Network is null ? o.Size : "custom")}), device {o.Device.type}{(o.Bf16 ? " bf16" : "")}, batch {o.BatchSize}×{o.CropFrames} frames");

        log = new TrainingProgress(o.Steps, step, o.LogEvery, o.Log);   // rates from here, not from data loading
        var q = new ForwardProcess(TrainingSchedule);
        int nonFiniteInARow = 0;
        double lastValidation = double.NaN;
        net.train();
        void Save() => SaveAll(o, mel, netCfg, net, opt, ema, rng, step, nonFiniteTotal, previousWall + wall.Elapsed.TotalSeconds, data, lastValidation);
        try
        {
            while (step < o.Steps)
            {
                if (wall.Elapsed.TotalMinutes >= o.MaxMinutes) { log.Message($"stopping at step {step}: --max-minutes {o.MaxMinutes} reached"); break; }
                ct.ThrowIfCancellationRequested();
                double loss;
                using (var scope = NewDisposeScope())
                {
                    var (audio, m) = data.Batch(o.BatchSize, o.CropFrames, mel.Hop, rng);
                    var levels = q.SampleContinuousLevels(o.BatchSize, rng);
                    var noise = randn(audio.shape, generator: rng);
                    var noisy = ForwardProcess.SampleContinuous(audio, levels, noise);
                    var dt = o.Bf16 ? ScalarType.BFloat16 : ScalarType.Float32;
                    var pred = net.call(noisy.to(o.Device).to_type(dt), m.to(o.Device).to_type(dt), levels.to(o.Device));
                    var lossT = Losses.Regression(pred.to_type(ScalarType.Float32), noise.to(o.Device), o.Loss);
                    loss = lossT.item<float>();
                    opt.ZeroGrad();
                    bool finite = double.IsFinite(loss);
                    if (finite)
                    {
                        lossT.backward();
                        // An overflowing gradient would poison every weight: skip the step like a non-finite loss.
                        finite = double.IsFinite(opt.ClipGradNorm(o.GradClip));
                    }
                    if (finite)
                    {
                        opt.StepOnce();
                        ema.Update();
                        nonFiniteInARow = 0;
                    }
                    else
                    {
                        nonFiniteTotal++;
                        if (++nonFiniteInARow >= o.MaxNonFiniteInARow)
                            throw new WaveGradException($"training stopped: {nonFiniteInARow} non-finite losses or gradients in a row at step {step + 1}; lower --lr or check the data");
                    }
                    opt.ZeroGrad();
                }
                step++;
                o.OnStep?.Invoke(step, loss);
                string extra = nonFiniteTotal > 0 ? $"  skipped {nonFiniteTotal} non-finite" : "";
                if (o.ValidateEvery > 0 && step % o.ValidateEvery == 0 && data.Validation.Count > 0)
                {
                    lastValidation = Validate(netCfg, ema, mel, data.Validation, o.Device);
                    extra += $"  val log-mel L1 {lastValidation:F3}";
                }
                log.Report(step, loss, (long)o.BatchSize * o.CropFrames * mel.Hop, extra);
                if (step % o.CheckpointEvery == 0 && step < o.Steps) Save();
            }
        }
        finally
        {
            // A checkpoint at exit, also when interrupted (Ctrl+C) or stopped by an error mid-run.
            if (step > 0) Save();
        }
        log.Message($"saved {o.OutputDir} at step {step} ({(previousWall + wall.Elapsed.TotalSeconds) / 60:F1} min of training in all)");
        return step;
    }

    /// <summary>Log-mel L1 of EMA renders (WG-6 schedule, first 2 s of up to 4 validation clips) against their references.</summary>
    public static double Validate(WaveGradConfig cfg, Ema ema, MelConfig mel, IReadOnlyList<Utterance> clips, Device device)
    {
        using var scope = NewDisposeScope();
        using var net = new WaveGradNet(cfg);
        TensorFiles.LoadInto(net, ema.Shadow, "EMA weights");
        if (device.type != DeviceType.CPU) net.to(device);
        net.eval();
        using var spec = new MelSpectrogram(mel);
        using var _ = no_grad();
        double total = 0;
        int n = Math.Min(4, clips.Count);
        for (int i = 0; i < n; i++)
        {
            long frames = Math.Min(clips[i].Frames, 2 * mel.SampleRate / mel.Hop);
            using var gen = new Generator(7);
            var m = clips[i].Mel[.., ..(int)frames].unsqueeze(0).to(device);
            var audio = DdpmSampler.WaveGrad(NoiseSchedule.Named("wg-6"))
                .Sample(new WaveGradDenoiser(net, m), [1, frames * mel.Hop], gen, new SampleOptions { Device = device }).cpu();
            var rendered = spec.Compute(audio[0]);
            long f = Math.Min(rendered.shape[1], frames);
            total += (rendered[.., ..(int)f] - clips[i].Mel[.., ..(int)f]).abs().mean().item<float>();
        }
        return total / n;
    }

    sealed record CheckpointState(long Step, long NonFinite, double WallSeconds);

    static void SaveAll(VocoderTrainingOptions o, MelConfig mel, WaveGradConfig cfg, WaveGradNet net, AdamW opt, Ema ema, Generator rng,
        long step, long nonFinite, double wallSeconds, VocoderDataset data, double validation)
    {
        TrainingCheckpoint.Save(Path.Combine(o.OutputDir, "checkpoint"), opt, ema, rng, step, new JsonObject
        {
            ["non_finite_skipped"] = nonFinite, ["wall_seconds"] = wallSeconds, ["preset"] = mel.Name,
            ["network"] = JsonSerializer.SerializeToNode(cfg, Voice.JsonOpts),
        });
        // The run folder is itself a voice bundle: EMA weights in model.safetensors, raw ones beside them.
        // Keep what others recorded in the run's voice.json (a searched schedule, notes); refresh the training fields.
        string cardPath = Path.Combine(o.OutputDir, "voice.json");
        var card = File.Exists(cardPath) && JsonNode.Parse(File.ReadAllText(cardPath)) is JsonObject existing ? existing : new JsonObject();
        if (o.Card is not null) foreach (var (k, v) in o.Card) card[k] = v?.DeepClone();
        card["training"] = new JsonObject
        {
            ["data"] = Path.GetFullPath(o.DataDir), ["train_clips"] = data.Train.Count, ["train_minutes"] = Math.Round(data.TrainSeconds / 60, 2),
            ["steps"] = step, ["batch"] = o.BatchSize, ["crop_frames"] = o.CropFrames, ["learning_rate"] = o.LearningRate,
            ["loss"] = o.Loss.ToString(), ["device"] = o.Device.type.ToString(), ["bf16"] = o.Bf16,
            ["hardware"] = $"{Environment.ProcessorCount} CPU cores{(o.Device.type == DeviceType.CUDA ? " + CUDA GPU" : "")}",
            ["wall_minutes"] = Math.Round(wallSeconds / 60, 1), ["ema_decay_max"] = o.EmaDecay,
            ["val_logmel_l1_wg6"] = double.IsFinite(validation) ? Math.Round(validation, 4) : null,
        };
        Voice.Save(o.OutputDir + ".voice-tmp", o.VoiceName ?? Path.GetFileName(Path.GetFullPath(o.OutputDir).TrimEnd('/')), mel, cfg, ema.Shadow, card, half: false);
        foreach (var f in new[] { "voice.json", "model.safetensors" })
            File.Move(Path.Combine(o.OutputDir + ".voice-tmp", f), Path.Combine(o.OutputDir, f), overwrite: true);
        Directory.Delete(o.OutputDir + ".voice-tmp", true);
        TensorFiles.Save(Path.Combine(o.OutputDir, "model-raw.safetensors"), opt.Master);
    }

    static CheckpointState LoadCheckpoint(string dir, WaveGradNet net, AdamW opt, Ema ema, Generator rng, WaveGradConfig cfg)
    {
        string statePath = Path.Combine(dir, "state.json");
        if (File.Exists(statePath) && JsonNode.Parse(File.ReadAllText(statePath)) is JsonObject st && st["network"] is JsonNode n
            && n.ToJsonString() != JsonSerializer.SerializeToNode(cfg, Voice.JsonOpts)!.ToJsonString())
            throw new WaveGradException($"{statePath}: the checkpoint's network differs from the one asked for (check --size and --preset)");
        var state = TrainingCheckpoint.Load(dir, net, opt, ema, rng);
        return new CheckpointState(state["step"]!.GetValue<long>(), state["non_finite_skipped"]?.GetValue<long>() ?? 0, state["wall_seconds"]?.GetValue<double>() ?? 0);
    }
}
