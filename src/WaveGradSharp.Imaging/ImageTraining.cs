using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using TorchSharp;
using WaveGradSharp.Diffusion;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace WaveGradSharp.Imaging;

/// <summary>Settings of <see cref="ImageTrainer"/>.</summary>
public sealed record ImageTrainingOptions
{
    /// <summary>Output folder: the model bundle, with its checkpoint/ beside it.</summary>
    public required string OutputDir { get; init; }
    /// <summary>The network (its objective decides the loss).</summary>
    public required UNetConfig Network { get; init; }
    /// <summary>Variance-preserving training schedule (ε and hybrid objectives).</summary>
    public string Schedule { get; init; } = "ddpm-linear";
    /// <summary>σ range of the score objective (geometric levels, sampled log-uniformly).</summary>
    public double SigmaMax { get; init; } = 50;
    /// <summary>Smallest σ of the score objective.</summary>
    public double SigmaMin { get; init; } = 0.01;
    /// <summary>Total optimizer steps.</summary>
    public long Steps { get; init; } = 10_000;
    /// <summary>Images per step.</summary>
    public int BatchSize { get; init; } = 64;
    /// <summary>Peak learning rate (AdamW).</summary>
    public double LearningRate { get; init; } = 5e-4;
    /// <summary>Linear warm-up steps of the learning rate.</summary>
    public int WarmupSteps { get; init; } = 200;
    /// <summary>Gradient-norm clip.</summary>
    public double GradClip { get; init; } = 1.0;
    /// <summary>Largest EMA decay (after the warm-up).</summary>
    public double EmaDecay { get; init; } = 0.999;
    /// <summary>Probability of replacing a label by the null class (classifier-free guidance).</summary>
    public double LabelDropout { get; init; } = 0.1;
    /// <summary>Seed of initialisation, batches and noise.</summary>
    public long Seed { get; init; } = 1234;
    /// <summary>Where to train.</summary>
    public Device Device { get; init; } = CPU;
    /// <summary>Checkpoint interval in steps (and always at exit).</summary>
    public int CheckpointEvery { get; init; } = 500;
    /// <summary>Log interval in steps.</summary>
    public int LogEvery { get; init; } = 50;
    /// <summary>Continue from OutputDir/checkpoint.</summary>
    public bool Resume { get; init; }
    /// <summary>Stop (with a checkpoint) after this much wall time.</summary>
    public double MaxMinutes { get; init; } = double.PositiveInfinity;
    /// <summary>Where progress goes (stdout when null).</summary>
    public TextWriter? Log { get; init; }
    /// <summary>Called after every step with the step and its loss (tests).</summary>
    public Action<long, double>? OnStep { get; init; }
    /// <summary>Extra card fields (description, data).</summary>
    public JsonObject? Card { get; init; }
}

/// <summary>
/// Trains a <see cref="UNet"/> with the Diffusion project's loop parts (AdamW with fp32 master weights, gradient
/// clipping, EMA with warm-up, atomic safetensors checkpoints, exact resume): ε-prediction with L_simple (DDPM),
/// the hybrid loss with a learned variance (improved DDPM) or denoising score matching over σ (NCSN), with label
/// dropout for classifier-free guidance.
/// </summary>
public static class ImageTrainer
{
    /// <summary>Trains to <see cref="ImageTrainingOptions.Steps"/> (or the time limit); returns the last step.</summary>
    public static long Run(ImageSet data, ImageTrainingOptions o, CancellationToken ct = default)
    {
        var cfg = o.Network;
        cfg.Validate();
        if (o.BatchSize < 1 || o.LogEvery < 1 || o.CheckpointEvery < 1) throw new WaveGradException("--batch, --log-every and --checkpoint-every must be at least 1");
        if (data.Size != cfg.ImageSize || data.Channels != cfg.Channels)
            throw new WaveGradException($"{data.Source}: images are {data.Channels}×{data.Size}×{data.Size}, the network takes {cfg.Channels}×{cfg.ImageSize}×{cfg.ImageSize}");
        if (cfg.Classes > 0 && data.Labels is null) throw new WaveGradException($"{data.Source}: has no labels; train an unconditional network (--classes 0)");
        string ckptDir = Path.Combine(o.OutputDir, "checkpoint");
        if (!o.Resume && Directory.Exists(ckptDir))
            throw new WaveGradException($"{o.OutputDir}: already holds a checkpoint; pass --resume to continue it or choose another --output");
        if (o.Resume && !Directory.Exists(ckptDir)) throw new WaveGradException($"{ckptDir}: no checkpoint to resume");
        NativeTuning.DisableNnpack();
        if (o.Device.type == DeviceType.CPU) NativeTuning.DisableOneDnn();   // oneDNN's float32 conv gradients are wrong on some CPUs (see Vocoder)

        var schedule = NoiseSchedule.Resolve(o.Schedule);
        var q = new ForwardProcess(schedule);
        var rng = new Generator((ulong)o.Seed);
        var net = new UNet(cfg, new Generator((ulong)o.Seed + 1));
        if (o.Device.type != DeviceType.CPU) net.to(o.Device);
        var opt = new AdamW(net, o.LearningRate);
        var ema = new Ema(net, o.EmaDecay);
        long step = 0;
        double previousWall = 0;
        var log = new TrainingProgress(o.Steps, 0, o.LogEvery, o.Log);
        if (o.Resume)
        {
            var st = TrainingCheckpoint.Load(ckptDir, net, opt, ema, rng);
            if (st["network"]?.ToJsonString() != JsonSerializer.SerializeToNode(cfg, ImageModel.JsonOpts)!.ToJsonString())
                throw new WaveGradException($"{ckptDir}/state.json: the checkpoint's network differs from the one asked for");
            step = st["step"]!.GetValue<long>();
            previousWall = st["wall_seconds"]?.GetValue<double>() ?? 0;
            log.Message($"resumed at step {step}");
        }
        log.Message($"network: {net.ParameterCount:N0} parameters, {net.MacsPerImage() / 1e6:F1} M multiply-adds per image, objective {cfg.Objective}, device {o.Device.type}; data: {data.Count} images from {data.Source}");
        log = new TrainingProgress(o.Steps, step, o.LogEvery, o.Log);
        var wall = Stopwatch.StartNew();
        net.train();
        double logSigMax = Math.Log(o.SigmaMax), logSigMin = Math.Log(o.SigmaMin);
        using var logSigmas = NoiseFrame.LogSigmas(schedule);
        void Save()
        {
            double wallSeconds = previousWall + wall.Elapsed.TotalSeconds;
            var state = new JsonObject { ["wall_seconds"] = wallSeconds, ["network"] = JsonSerializer.SerializeToNode(cfg, ImageModel.JsonOpts) };
            TrainingCheckpoint.Save(ckptDir, opt, ema, rng, step, state);
            var card = o.Card is null ? new JsonObject() : (JsonObject)o.Card.DeepClone();
            if (cfg.Objective == ImageObjective.Score) { card["sigma_max"] = o.SigmaMax; card["sigma_min"] = o.SigmaMin; }
            else card["schedule"] = o.Schedule;
            card["training"] = new JsonObject
            {
                ["data"] = data.Source, ["images"] = data.Count, ["steps"] = step, ["batch"] = o.BatchSize, ["learning_rate"] = o.LearningRate,
                ["label_dropout"] = o.LabelDropout, ["ema_decay_max"] = o.EmaDecay, ["parameters"] = net.ParameterCount,
                ["device"] = o.Device.type.ToString(), ["hardware"] = $"{Environment.ProcessorCount} CPU cores{(o.Device.type == DeviceType.CUDA ? " + CUDA GPU" : "")}",
                ["wall_minutes"] = Math.Round(wallSeconds / 60, 1), ["seed"] = o.Seed,
            };
            ImageModel.Save(o.OutputDir, "unet", cfg, ema.Shadow, card);
        }
        try
        {
            while (step < o.Steps)
            {
                if (wall.Elapsed.TotalMinutes >= o.MaxMinutes) { log.Message($"stopping at step {step}: --max-minutes {o.MaxMinutes} reached"); break; }
                ct.ThrowIfCancellationRequested();
                opt.LearningRate = o.LearningRate * Math.Min(1.0, (step + 1.0) / Math.Max(1, o.WarmupSteps));
                double loss;
                using (var scope = NewDisposeScope())
                {
                    var (x0, y) = data.Batch(o.BatchSize, rng);
                    if (cfg.Classes > 0)
                    {
                        var drop = rand([o.BatchSize], generator: rng) < o.LabelDropout;
                        y = where(drop, full_like(y, cfg.Classes), y);
                    }
                    var noise = randn(x0.shape, generator: rng);
                    Tensor lossT;
                    if (cfg.Objective == ImageObjective.Score)
                    {
                        var lnSig = rand([o.BatchSize], generator: rng, dtype: ScalarType.Float64) * (logSigMin - logSigMax) + logSigMax;
                        var sig = lnSig.exp().to_type(ScalarType.Float32).reshape(-1, 1, 1, 1);
                        var outp = net.call((x0 + sig * noise).to(o.Device), lnSig.to_type(ScalarType.Float32).to(o.Device), y.to(o.Device));
                        // λ(σ) = σ²: σ²·‖s + z/σ‖² = ‖σ·s + z‖², and σ·s is the network's output.
                        var err = outp + noise.to(o.Device);
                        lossT = (err * err).mean();
                    }
                    else
                    {
                        var t = randint(0, schedule.Steps, [o.BatchSize], generator: rng, dtype: ScalarType.Int64);
                        var xt = q.Sample(x0, t, noise);
                        var lnSig = logSigmas.index_select(0, t);
                        var outp = net.call(xt.to(o.Device), lnSig.to(o.Device), y.to(o.Device));
                        int c = cfg.Channels;
                        if (cfg.Objective == ImageObjective.Hybrid)
                            lossT = Losses.Hybrid(q, x0.to(o.Device), xt.to(o.Device), t.to(o.Device), noise.to(o.Device), outp[.., ..c], outp[.., c..]).Total;
                        else
                            lossT = F.mse_loss(outp, noise.to(o.Device));
                    }
                    loss = lossT.item<float>();
                    opt.ZeroGrad();
                    if (double.IsFinite(loss))
                    {
                        lossT.backward();
                        if (double.IsFinite(opt.ClipGradNorm(o.GradClip))) { opt.StepOnce(); ema.Update(); }
                    }
                    opt.ZeroGrad();
                }
                step++;
                o.OnStep?.Invoke(step, loss);
                log.Report(step, loss, o.BatchSize);
                if (step % o.CheckpointEvery == 0 && step < o.Steps) Save();
            }
        }
        finally
        {
            if (step > 0) Save();
        }
        log.Message($"saved {o.OutputDir} at step {step} ({(previousWall + wall.Elapsed.TotalSeconds) / 60:F1} min of training in all)");
        return step;
    }
}

/// <summary>
/// Trains a <see cref="DigitClassifier"/>: a judge of clean digits (random shifts of up to 2 pixels as
/// augmentation) or a noise-aware classifier for guidance (inputs noised at uniformly drawn steps of the schedule,
/// seen in the variance-preserving frame).
/// </summary>
public static class ClassifierTrainer
{
    /// <summary>Trains and writes the bundle; returns held-out accuracy (on clean digits).</summary>
    public static double Run(ImageSet train, ImageSet heldOut, string outputDir, bool noiseAware, long steps = 3000, int batch = 128,
        double lr = 1e-3, long seed = 1234, string schedule = "ddpm-linear", Device? device = null, TextWriter? logTo = null)
    {
        device ??= CPU;
        if (train.Labels is null) throw new WaveGradException($"{train.Source}: a classifier needs labelled images");
        NativeTuning.DisableNnpack();
        if (device.type == DeviceType.CPU) NativeTuning.DisableOneDnn();
        var cfg = new ClassifierConfig { Channels = train.Channels, Classes = (int)train.Labels.max().item<long>() + 1, NoiseAware = noiseAware, ImageSize = train.Size };
        var rng = new Generator((ulong)seed);
        var net = new DigitClassifier(cfg, seed);
        if (device.type != DeviceType.CPU) net.to(device);
        var opt = new AdamW(net, lr, weightDecay: 1e-4);
        var ema = new Ema(net, 0.999);
        var s = NoiseSchedule.Resolve(schedule);
        var q = new ForwardProcess(s);
        using var logSigmas = NoiseFrame.LogSigmas(s);
        var log = new TrainingProgress(steps, 0, 100, logTo);
        var wall = Stopwatch.StartNew();
        net.train();
        for (long step = 1; step <= steps; step++)
        {
            opt.LearningRate = lr * 0.5 * (1 + Math.Cos(Math.PI * step / steps));   // cosine decay
            using var scope = NewDisposeScope();
            var (x, y) = train.Batch(batch, rng);
            x = Shift(x, rng, 2);
            Tensor ln;
            if (noiseAware)
            {
                var t = randint(0, s.Steps, [batch], generator: rng, dtype: ScalarType.Int64);
                x = q.Sample(x, t, randn(x.shape, generator: rng));
                ln = logSigmas.index_select(0, t);   // x_t from q.Sample is already in the variance-preserving frame the classifier reads
            }
            else ln = full([batch], Math.Log(s.SqrtOneMinusAlphasCumprod[0] / s.SqrtAlphasCumprod[0]), ScalarType.Float32);
            var lossT = F.cross_entropy(net.call(x.to(device), ln.to(device)), y.to(device));
            double loss = lossT.item<float>();
            opt.ZeroGrad();
            lossT.backward();
            opt.ClipGradNorm(1.0);
            opt.StepOnce();
            ema.Update();
            log.Report(step, loss, batch);
        }
        TensorFiles.LoadInto(net, ema.Shadow, "EMA weights");
        net.eval();
        double acc = Evaluation.Accuracy(net, heldOut.Images, heldOut.Labels!, device);
        log.Message($"held-out accuracy {acc:P2} on {heldOut.Count} clean digits");
        var card = new JsonObject
        {
            ["schedule"] = schedule,
            ["training"] = new JsonObject { ["data"] = train.Source, ["images"] = train.Count, ["steps"] = steps, ["batch"] = batch, ["wall_minutes"] = Math.Round(wall.Elapsed.TotalMinutes, 1), ["seed"] = seed },
            ["heldout_accuracy"] = Math.Round(acc, 4), ["heldout_images"] = heldOut.Count,
        };
        ImageModel.Save(outputDir, "classifier", cfg, ema.Shadow, card);
        return acc;
    }

    /// <summary>Random integer shifts of up to <paramref name="max"/> pixels per image (the border filled with the background, −1).</summary>
    internal static Tensor Shift(Tensor x, Generator rng, int max)
    {
        using var scope = NewDisposeScope();
        long n = x.shape[0], h = x.shape[2], w = x.shape[3];
        var padded = F.pad(x, [max, max, max, max], value: -1);
        var dx = randint(0, 2 * max + 1, [n], generator: rng, dtype: ScalarType.Int64).data<long>().ToArray();
        var dy = randint(0, 2 * max + 1, [n], generator: rng, dtype: ScalarType.Int64).data<long>().ToArray();
        var outs = new Tensor[n];
        for (int i = 0; i < n; i++) outs[i] = padded[i, .., (int)dy[i]..(int)(dy[i] + h), (int)dx[i]..(int)(dx[i] + w)];
        return stack(outs).MoveToOuterDisposeScope();
    }
}
