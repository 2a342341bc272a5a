using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using TorchSharp;
using WaveGradSharp.Diffusion;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;
using WaveGradSharp.Core;

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
    /// <summary>Start a new run from the weights of a model bundle (its EMA weights, as shipped) instead of at random;
    /// the network must match. With <see cref="Resume"/> it is only recorded on the card.</summary>
    public string? InitFrom { get; init; }
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
/// The UNet's training objective, beside the network: ε-prediction with L_simple (DDPM), the hybrid loss with a learned
/// variance (improved DDPM) or denoising score matching over σ drawn log-uniformly (NCSN), with label dropout for
/// classifier-free guidance.
/// </summary>
public sealed class UNetObjective(UNet net, ImageSet data, ImageTrainingOptions o, NoiseSchedule schedule) : ITrainingObjective
{
    readonly ForwardProcess q = new(schedule);
    readonly Tensor logSigmas = NoiseFrame.LogSigmas(schedule);

    /// <inheritdoc/>
    public long SamplesPerStep => o.BatchSize;

    /// <inheritdoc/>
    public Tensor Loss(Generator rng)
    {
        var cfg = net.Config;
        var dev = o.Device;
        var (x0, y) = data.Batch(o.BatchSize, rng);
        if (cfg.Classes > 0)
        {
            var drop = rand([o.BatchSize], generator: rng) < o.LabelDropout;
            y = where(drop, full_like(y, cfg.Classes), y);
        }
        var noise = randn(x0.shape, generator: rng);
        if (cfg.Objective == ImageObjective.Score)
        {
            double logSigMax = Math.Log(o.SigmaMax), logSigMin = Math.Log(o.SigmaMin);
            var lnSig = rand([o.BatchSize], generator: rng, dtype: ScalarType.Float64) * (logSigMin - logSigMax) + logSigMax;
            var sig = lnSig.exp().to_type(ScalarType.Float32).reshape(-1, 1, 1, 1);
            var outp = net.call((x0 + sig * noise).to(dev), lnSig.to_type(ScalarType.Float32).to(dev), y.to(dev));
            // λ(σ) = σ²: σ²·‖s + z/σ‖² = ‖σ·s + z‖², and σ·s is the network's output.
            var err = outp + noise.to(dev);
            return (err * err).mean();
        }
        var t = randint(0, schedule.Steps, [o.BatchSize], generator: rng, dtype: ScalarType.Int64);
        var xt = q.Sample(x0, t, noise);
        var pred = net.call(xt.to(dev), logSigmas.index_select(0, t).to(dev), y.to(dev));
        int c = cfg.Channels;
        return cfg.Objective == ImageObjective.Hybrid
            ? Losses.Hybrid(q, x0.to(dev), xt.to(dev), t.to(dev), noise.to(dev), pred[.., ..c], pred[.., c..]).Total
            : F.mse_loss(pred, noise.to(dev));
    }
}

/// <summary>
/// Trains a <see cref="UNet"/> on <see cref="UNetObjective"/> with the one training loop (<see cref="Trainer"/>: AdamW
/// with fp32 master weights, gradient clipping, EMA with warm-up, atomic checkpoints, exact resume) and a linear
/// learning-rate warm-up.
/// </summary>
public static class ImageTrainer
{
    /// <summary>Trains to <see cref="ImageTrainingOptions.Steps"/> (or the time limit); returns the last step.</summary>
    public static long Run(ImageSet data, ImageTrainingOptions o, CancellationToken ct = default)
    {
        var cfg = o.Network.Checked();
        if (o.BatchSize < 1) throw WaveGradException.About("BatchSize must be at least 1", "BatchSize");
        if (data.Size != cfg.ImageSize || data.Channels != cfg.Channels)
            throw new WaveGradException($"{data.Source}: images are {data.Channels}×{data.Size}×{data.Size}, the network takes " +
                $"{cfg.Channels}×{cfg.ImageSize}×{cfg.ImageSize}");
        if (cfg.Classes > 0 && data.Labels is null)
            throw WaveGradException.About($"{data.Source}: has no labels; train an Unconditional network", "Unconditional");
        var schedule = NoiseSchedule.Resolve(o.Schedule);
        var net = new UNet(cfg, new Generator((ulong)o.Seed + 1));
        Dictionary<string, Tensor>? emaStart = null;
        string? startedFrom = null;
        if (o.InitFrom is string init)   // on --resume only named on the card: the checkpoint holds the weights
        {
            var from = ImageModel.Load(init, "unet");
            var theirs = JsonSerializer.SerializeToNode(from.Network, ImageModel.JsonOpts)!;
            if (!JsonNode.DeepEquals(theirs, JsonSerializer.SerializeToNode(cfg, ImageModel.JsonOpts)))
                throw WaveGradException.About($"{from.Directory}: its network ({Text.Escape(theirs.ToJsonString())}) is not the one this run " +
                    "trains; use the same objective, size and classes", "InitFrom");
            if (cfg.Objective != ImageObjective.Score && from.Card["schedule"]?.GetValue<string>() is string sched && sched != o.Schedule)
                throw WaveGradException.About($"{from.Directory}: was trained on schedule '{Text.Escape(sched)}', this run on '{o.Schedule}'",
                    "InitFrom", "Schedule");
            if (!o.Resume)
            {
                emaStart = TensorFiles.Load(from.WeightsPath);
                TensorFiles.LoadInto(net, emaStart, from.WeightsPath);
            }
            long before = from.Card["training"]?["steps"]?.GetValue<long>() ?? 0;
            startedFrom = $"{Path.GetFileName(from.Directory.TrimEnd('/'))} after {before} steps";
        }
        var network = JsonSerializer.SerializeToNode(cfg, ImageModel.JsonOpts)!;
        return Trainer.Run(net, new UNetObjective(net, data, o, schedule), new TrainerOptions
        {
            RunDir = o.OutputDir, Network = network, Steps = o.Steps, LearningRate = o.LearningRate, GradClip = o.GradClip, EmaDecay = o.EmaDecay,
            EmaStart = emaStart, LearningRateSchedule = step => Math.Min(1.0, (step + 1.0) / Math.Max(1, o.WarmupSteps)),
            CheckpointEvery = o.CheckpointEvery, LogEvery = o.LogEvery, MaxMinutes = o.MaxMinutes, Resume = o.Resume, Device = o.Device,
            Seed = o.Seed, OnStep = o.OnStep, Log = o.Log, SaveBundle = s => SaveModel(o, cfg, data, net.ParameterCount, startedFrom, s),
        }, $"network: {net.ParameterCount:N0} parameters, {net.MacsPerImage() / 1e6:F1} M multiply-adds per image, objective {cfg.Objective}, " +
           $"device {o.Device.type}; data: {data.Count} images from {data.Source}{(startedFrom is null ? "" : $"; started from {startedFrom}")}", ct);
    }

    static void SaveModel(ImageTrainingOptions o, UNetConfig cfg, ImageSet data, long parameters, string? startedFrom, TrainingSnapshot s)
    {
        var card = o.Card is null ? new JsonObject() : (JsonObject)o.Card.DeepClone();
        if (cfg.Objective == ImageObjective.Score) { card["sigma_max"] = o.SigmaMax; card["sigma_min"] = o.SigmaMin; }
        else card["schedule"] = o.Schedule;
        card["training"] = new JsonObject
        {
            ["data"] = data.Source, ["images"] = data.Count, ["steps"] = s.Step, ["batch"] = o.BatchSize, ["learning_rate"] = o.LearningRate,
            ["label_dropout"] = o.LabelDropout, ["ema_decay_max"] = o.EmaDecay, ["parameters"] = parameters,
            ["device"] = o.Device.type.ToString(), ["hardware"] = $"{Environment.ProcessorCount} CPU " +
                $"cores{(o.Device.type == DeviceType.CUDA ? " + CUDA GPU" : "")}",
            ["wall_minutes"] = Math.Round(s.WallSeconds / 60, 1), ["seed"] = o.Seed,
        };
        if (startedFrom is not null) card["training"]!["started_from"] = startedFrom;
        ImageModel.Save(o.OutputDir, "unet", cfg, s.Ema.Shadow, card);
    }
}

/// <summary>
/// A digit classifier's objective: cross-entropy on random shifts of up to 2 pixels of clean digits (a judge), or of
/// digits noised at uniformly drawn steps of the schedule and seen in the variance-preserving frame (a noise-aware
/// classifier for guidance).
/// </summary>
public sealed class ClassifierObjective(DigitClassifier net, ImageSet data, int batch, bool noiseAware, NoiseSchedule schedule, Device device)
    : ITrainingObjective
{
    readonly ForwardProcess q = new(schedule);
    readonly Tensor logSigmas = NoiseFrame.LogSigmas(schedule);

    /// <inheritdoc/>
    public long SamplesPerStep => batch;

    /// <inheritdoc/>
    public Tensor Loss(Generator rng)
    {
        var (x, y) = data.Batch(batch, rng);
        x = ClassifierTrainer.Shift(x, rng, 2);
        Tensor ln;
        if (noiseAware)
        {
            var t = randint(0, schedule.Steps, [batch], generator: rng, dtype: ScalarType.Int64);
            x = q.Sample(x, t, randn(x.shape, generator: rng));
            ln = logSigmas.index_select(0, t);   // x_t from q.Sample is already in the variance-preserving frame the classifier reads
        }
        else ln = full([batch], Math.Log(schedule.SqrtOneMinusAlphasCumprod[0] / schedule.SqrtAlphasCumprod[0]), ScalarType.Float32);
        return F.cross_entropy(net.call(x.to(device), ln.to(device)), y.to(device));
    }
}

/// <summary>
/// Trains a <see cref="DigitClassifier"/> on <see cref="ClassifierObjective"/> with the one training loop (AdamW with
/// weight decay, cosine learning-rate decay), then scores it on the held-out digits and writes the bundle.
/// </summary>
public static class ClassifierTrainer
{
    /// <summary>Trains and writes the bundle; returns held-out accuracy (on clean digits).</summary>
    public static double Run(ImageSet train, ImageSet heldOut, string outputDir, bool noiseAware, long steps = 3000, int batch = 128,
        double lr = 1e-3, long seed = 1234, string schedule = "ddpm-linear", Device? device = null, TextWriter? logTo = null, bool resume = false)
    {
        device ??= CPU;
        if (train.Labels is null) throw new WaveGradException($"{train.Source}: a classifier needs labelled images");
        var cfg = new ClassifierConfig
        {
            Channels = train.Channels, Classes = (int)train.Labels.max().item<long>() + 1, NoiseAware = noiseAware, ImageSize = train.Size,
        };
        var net = new DigitClassifier(cfg, seed);
        var s = NoiseSchedule.Resolve(schedule);
        var wall = System.Diagnostics.Stopwatch.StartNew();
        Trainer.Run(net, new ClassifierObjective(net, train, batch, noiseAware, s, device), new TrainerOptions
        {
            RunDir = outputDir, Network = JsonSerializer.SerializeToNode(cfg, ImageModel.JsonOpts)!, Steps = steps, LearningRate = lr,
            WeightDecay = 1e-4, EmaDecay = 0.999, LearningRateSchedule = step => 0.5 * (1 + Math.Cos(Math.PI * (step + 1) / steps)),   // cosine decay
            LogEvery = 100, CheckpointEvery = 1000, Device = device, Seed = seed, Log = logTo, Resume = resume,
        }, ct: default);
        TensorFiles.LoadInto(net, TensorFiles.Load(Path.Combine(outputDir, "checkpoint", "ema.safetensors")), "EMA weights");
        if (device.type != DeviceType.CPU) net.to(device);
        net.eval();
        double acc = Evaluation.Accuracy(net, heldOut.Images, heldOut.Labels!, device);
        (logTo ?? Console.Out).WriteLine($"held-out accuracy {acc:P2} on {heldOut.Count} clean digits");
        var card = new JsonObject
        {
            ["schedule"] = schedule,
            ["training"] = new JsonObject { ["data"] = train.Source, ["images"] = train.Count, ["steps"] = steps, ["batch"] = batch,
                ["wall_minutes"] = Math.Round(wall.Elapsed.TotalMinutes, 1), ["seed"] = seed },
            ["heldout_accuracy"] = Math.Round(acc, 4), ["heldout_images"] = heldOut.Count,
        };
        ImageModel.Save(outputDir, "classifier", cfg, TensorFiles.StateOf(net), card);
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
