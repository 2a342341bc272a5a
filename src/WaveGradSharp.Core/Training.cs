using System.Diagnostics;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using TorchSharp;
using static TorchSharp.torch;

namespace WaveGradSharp.Core;

/// <summary>
/// What a training run minimises: one step's loss on a batch the objective draws from its own data with the run's
/// generator. The network's objective lives beside the network (the vocoder's and the image model's); the loop
/// around it (<see cref="Trainer"/>) is the same for every model.
/// </summary>
public interface ITrainingObjective
{
    /// <summary>The scalar loss of one batch (float32, on the training device, with autograd on).</summary>
    Tensor Loss(Generator rng);

    /// <summary>What one step consumes, for the progress line's rate (images, or audio samples).</summary>
    long SamplesPerStep { get; }
}

/// <summary>The state a run hands to its bundle writer at every checkpoint and at exit.</summary>
/// <param name="Step">Optimizer steps taken, counting resumed ones.</param>
/// <param name="Ema">The averaged weights (what a bundle ships).</param>
/// <param name="Optimizer">The raw (master) weights and moments.</param>
/// <param name="WallSeconds">Training wall time over every run of this checkpoint.</param>
/// <param name="NonFiniteSkipped">Steps skipped for a non-finite loss or gradient.</param>
/// <param name="LastValidation">The last <see cref="TrainerOptions.Validate"/> score, NaN before the first.</param>
/// <param name="CpuSeconds">The process's CPU time in the training loop over every run of this checkpoint (all its threads;
/// loading the data is left out): what "CPU minutes" of a run mean.</param>
public sealed record TrainingSnapshot(long Step, Ema Ema, AdamW Optimizer, double WallSeconds, long NonFiniteSkipped, double LastValidation,
    double CpuSeconds);

/// <summary>Settings of <see cref="Trainer.Run"/>: the loop's, not the model's.</summary>
public sealed record TrainerOptions
{
    /// <summary>Run folder; the checkpoint goes to its <c>checkpoint/</c>.</summary>
    public required string RunDir { get; init; }
    /// <summary>Describes the network (its config as JSON): stored with the checkpoint, and a resume with another is refused.</summary>
    public required JsonNode Network { get; init; }
    /// <summary>Step to stop at, counting resumed steps.</summary>
    public long Steps { get; init; } = 1000;
    /// <summary>Peak learning rate.</summary>
    public double LearningRate { get; init; } = 2e-4;
    /// <summary>Multiplier of the learning rate at a step (0-based); null: constant.</summary>
    public Func<long, double>? LearningRateSchedule { get; init; }
    /// <summary>Decoupled weight decay (AdamW).</summary>
    public double WeightDecay { get; init; }
    /// <summary>Gradient-norm clip.</summary>
    public double GradClip { get; init; } = 1.0;
    /// <summary>Largest EMA decay.</summary>
    public double EmaDecay { get; init; } = 0.9999;
    /// <summary>Start of the EMA (a run initialised from another's weights); null: the network's weights.</summary>
    public IReadOnlyDictionary<string, Tensor>? EmaStart { get; init; }
    /// <summary>Checkpoint interval in steps (and always at exit).</summary>
    public int CheckpointEvery { get; init; } = 500;
    /// <summary>Progress line interval in steps.</summary>
    public int LogEvery { get; init; } = 10;
    /// <summary>Interval of <see cref="Validate"/> in steps; 0: never.</summary>
    public int ValidateEvery { get; init; }
    /// <summary>Scores the EMA weights (lower is better); its label names the score on the progress line.</summary>
    public (string Label, Func<Ema, double> Score)? Validate { get; init; }
    /// <summary>Stop with a checkpoint after this many minutes of wall time in this run.</summary>
    public double MaxMinutes { get; init; } = double.PositiveInfinity;
    /// <summary>Continue the checkpoint in <see cref="RunDir"/>.</summary>
    public bool Resume { get; init; }
    /// <summary>Where the network trains.</summary>
    public Device Device { get; init; } = CPU;
    /// <summary>bf16 weights and activations with fp32 master weights.</summary>
    public bool Bf16 { get; init; }
    /// <summary>Stop after this many non-finite losses or gradients in a row.</summary>
    public int MaxNonFiniteInARow { get; init; } = 20;
    /// <summary>Seed of the run's generator (batches, noise).</summary>
    public long Seed { get; init; } = 1234;
    /// <summary>Told after every step with (step, loss).</summary>
    public Action<long, double>? OnStep { get; init; }
    /// <summary>Writes the run's model bundle (at every checkpoint and at exit).</summary>
    public Action<TrainingSnapshot>? SaveBundle { get; init; }
    /// <summary>Where progress goes (default: the console).</summary>
    public TextWriter? Log { get; init; }
}

/// <summary>
/// The one training loop: the run folder locked against a second trainer (<see cref="RunLock"/>), resume, time limit,
/// zero-grad → loss → finite check → backward → clip → step → EMA, non-finite steps skipped (too many in a row stop
/// the run), progress, periodic validation, atomic checkpoints (also at exit and on cancellation) and exact resume: on
/// the CPU a resumed run reproduces the uninterrupted loss curve bit for bit.
/// </summary>
public static class Trainer
{
    /// <summary>Trains <paramref name="net"/> (already initialised, on the CPU or the device) on <paramref name="objective"/>;
    /// returns the last step. <paramref name="describe"/> is printed once the run has started (network, data).</summary>
    public static long Run(nn.Module net, ITrainingObjective objective, TrainerOptions o, string describe = "", CancellationToken ct = default)
    {
        if (o.LogEvery < 1 || o.CheckpointEvery < 1 || o.ValidateEvery < 0)
            throw WaveGradException.About("LogEvery and CheckpointEvery must be at least 1, ValidateEvery 0 or " +
                "more", "LogEvery", "CheckpointEvery", "ValidateEvery");
        string ckptDir = Path.Combine(o.RunDir, "checkpoint");
        if (o.Resume && !Directory.Exists(ckptDir)) throw new WaveGradException($"{ckptDir}: no checkpoint to resume");   // before the lock makes the folder
        // One trainer per run folder, for as long as this one runs (see RunLock); the checks below hold only under it.
        using var runLock = RunLock.Acquire(o.RunDir);
        AtomicFile.RemoveStale(o.RunDir);
        if (!o.Resume && Directory.Exists(ckptDir))
            throw WaveGradException.About($"{o.RunDir}: already holds a checkpoint; set Resume to continue it or choose another " +
                "OutputDir", "Resume", "OutputDir");
        if (o.Resume && !Directory.Exists(ckptDir)) throw new WaveGradException($"{ckptDir}: no checkpoint to resume");
        NativeTuning.DisableNnpack();
        if (o.Device.type == DeviceType.CPU)
        {
            NativeTuning.DisableOneDnn();   // its float32 conv gradients are wrong here
            NativeTuning.ReuseFreedMemory();
        }

        var rng = new Generator((ulong)o.Seed);
        if (o.Device.type != DeviceType.CPU) net.to(o.Device);
        // bf16: the module's parameters are replaced by bf16 ones, so the optimizer and the EMA are built after
        // the cast and their fp32 copies are seeded from the weights as they were before it.
        Dictionary<string, Tensor>? fp32 = null;
        if (o.Bf16)
        {
            fp32 = net.named_parameters().ToDictionary(p => p.name, p => p.parameter.detach().clone());
            net.to(ScalarType.BFloat16);
        }
        var opt = new AdamW(net, o.LearningRate, o.WeightDecay);
        var ema = new Ema(net, o.EmaDecay);
        if (fp32 is not null)
            using (no_grad())
                foreach (var (k, v) in fp32) { opt.Master[k].copy_(v); ema.Shadow[k].copy_(v); }
        if (o.EmaStart is not null) ema.Start(o.EmaStart, "EmaStart");
        long step = 0, nonFiniteTotal = 0;
        double previousWall = 0, previousCpu = 0, lastValidation = double.NaN;
        var log = new TrainingProgress(o.Steps, 0, o.LogEvery, o.Log);
        if (o.Resume)
        {
            var state = TrainingCheckpoint.Load(ckptDir, net, opt, ema, rng, o.Network);
            step = state.Step; nonFiniteTotal = state.NonFiniteSkipped; previousWall = state.WallSeconds; previousCpu = state.CpuSeconds;
            log.Message($"resumed at step {step}");
        }
        if (describe.Length > 0) log.Message(describe);
        log = new TrainingProgress(o.Steps, step, o.LogEvery, o.Log);   // rates from here, not from data loading
        var wall = Stopwatch.StartNew();
        var cpuAtStart = Process.GetCurrentProcess().TotalProcessorTime;
        int nonFiniteInARow = 0;
        net.train();
        void Save()
        {
            double cpu = previousCpu + (Process.GetCurrentProcess().TotalProcessorTime - cpuAtStart).TotalSeconds;
            var snap = new TrainingSnapshot(step, ema, opt, previousWall + wall.Elapsed.TotalSeconds, nonFiniteTotal, lastValidation, cpu);
            TrainingCheckpoint.Save(ckptDir, snap, rng, o.Network);
            o.SaveBundle?.Invoke(snap);
        }
        try
        {
            while (step < o.Steps)
            {
                if (wall.Elapsed.TotalMinutes >= o.MaxMinutes) { log.Message($"stopping at step {step}: the time limit of {o.MaxMinutes} min is " +
                    "reached"); break; }
                ct.ThrowIfCancellationRequested();
                opt.LearningRate = o.LearningRate * (o.LearningRateSchedule?.Invoke(step) ?? 1.0);
                double loss;
                using (var scope = NewDisposeScope())
                {
                    var lossT = objective.Loss(rng);
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
                            throw WaveGradException.About($"training stopped: {nonFiniteInARow} non-finite losses or gradients in a row at step {step + 1}; " +
                                "lower the LearningRate or check the data", "LearningRate");
                    }
                    opt.ZeroGrad();
                }
                step++;
                o.OnStep?.Invoke(step, loss);
                string extra = nonFiniteTotal > 0 ? $"  skipped {nonFiniteTotal} non-finite" : "";
                if (o.Validate is { } v && o.ValidateEvery > 0 && step % o.ValidateEvery == 0)
                {
                    lastValidation = v.Score(ema);
                    extra += $"  {v.Label} {lastValidation:F3}";
                }
                log.Report(step, loss, objective.SamplesPerStep, extra);
                if (step % o.CheckpointEvery == 0 && step < o.Steps) Save();
            }
        }
        finally
        {
            // A checkpoint at exit, also when cancelled (Ctrl+C) or stopped by an error mid-run.
            if (step > 0) Save();
        }
        log.Message($"saved {o.RunDir} at step {step} ({(previousWall + wall.Elapsed.TotalSeconds) / 60:F1} min of training in all)");
        return step;
    }
}

/// <summary>
/// Training progress: a line every <c>every</c> steps with step, loss, steps/s, samples/s and ETA. On a
/// terminal the line is redrawn in place; when output is redirected it prints plain lines.
/// </summary>
public sealed class TrainingProgress(long totalSteps, long firstStep, int every, TextWriter? output = null)
{
    readonly TextWriter w = output ?? Console.Out;
    readonly Stopwatch clock = Stopwatch.StartNew();
    readonly bool interactive = output is null && !Console.IsOutputRedirected;
    double lossSum; int lossCount; long samples;

    /// <summary>Records one step; prints at the interval and at the last step.</summary>
    public void Report(long step, double loss, long samplesThisStep, string extra = "")
    {
        if (double.IsFinite(loss)) { lossSum += loss; lossCount++; }
        samples += samplesThisStep;
        if (step % every != 0 && step != totalSteps) return;
        double secs = Math.Max(clock.Elapsed.TotalSeconds, 1e-9);
        double stepsPerSec = (step - firstStep) / secs;
        double eta = stepsPerSec > 0 ? (totalSteps - step) / stepsPerSec : double.NaN;
        string line = $"step {step}/{totalSteps}  loss {(lossCount > 0 ? lossSum / lossCount : double.NaN):F4}  {stepsPerSec:F2} steps/s  " +
            $"{samples / secs:F0} samples/s  ETA {Format(eta)}{extra}";
        if (interactive) w.Write("\r" + line.PadRight(Console.WindowWidth > 0 ? Math.Min(Console.WindowWidth - 1, 160) : 100));
        else w.WriteLine(line);
        if (interactive && step == totalSteps) w.WriteLine();
        lossSum = 0; lossCount = 0;
    }

    /// <summary>Prints a message on its own line.</summary>
    public void Message(string text)
    {
        if (interactive) w.WriteLine();
        w.WriteLine(text);
    }

    /// <summary>Hours (any number: a long run's ETA passes a day), minutes and seconds; "?" when unknown.</summary>
    public static string Format(double seconds)
    {
        if (!double.IsFinite(seconds) || seconds < 0 || seconds > 1e9) return "?";
        var t = TimeSpan.FromSeconds(Math.Round(seconds));
        return $"{(long)t.TotalHours}:{t.Minutes:00}:{t.Seconds:00}";
    }
}

/// <summary>
/// A training run's checkpoint folder: raw (master) weights, EMA weights, optimizer moments, the generator's state
/// and a <c>state.json</c> with the step, the counters, the network's description and each file's SHA-256. Written
/// as a whole or not at all; on load every field is checked against its range and every file against its checksum
/// before anything is restored, and non-finite weights are refused.
/// </summary>
public static class TrainingCheckpoint
{
    /// <summary>The largest step count a checkpoint may claim.</summary>
    public const long MaxSteps = 1_000_000_000;
    static readonly string[] Files = ["model.safetensors", "ema.safetensors", "optimizer.safetensors", "rng.safetensors"];

    /// <summary>The counters <see cref="Load"/> restores.</summary>
    public sealed record State(long Step, long NonFiniteSkipped, double WallSeconds, double CpuSeconds, JsonObject Json);

    /// <summary>Writes the checkpoint folder atomically.</summary>
    public static void Save(string dir, TrainingSnapshot s, Generator rng, JsonNode network)
    {
        AtomicFile.WriteFolder(dir, marker: "state.json", fill: tmp =>
        {
            TensorFiles.Save(Path.Combine(tmp, Files[0]), s.Optimizer.Master);
            TensorFiles.Save(Path.Combine(tmp, Files[1]), s.Ema.Shadow);
            TensorFiles.Save(Path.Combine(tmp, Files[2]), s.Optimizer.StateDict());
            TensorFiles.Save(Path.Combine(tmp, Files[3]), new Dictionary<string, Tensor> { ["state"] = rng.get_state() });
            var sums = new JsonObject();
            foreach (var f in Files) sums[f] = Sha256(Path.Combine(tmp, f));
            var state = new JsonObject
            {
                ["step"] = s.Step, ["optimizer_step"] = s.Optimizer.Step, ["ema_updates"] = s.Ema.Updates,
                ["non_finite_skipped"] = s.NonFiniteSkipped, ["wall_seconds"] = s.WallSeconds, ["cpu_seconds"] = s.CpuSeconds,
                ["network"] = network.DeepClone(), ["sha256"] = sums,
            };
            File.WriteAllText(Path.Combine(tmp, "state.json"), state.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        });
    }

    /// <summary>
    /// Restores weights, optimizer, EMA and generator from a checkpoint folder. A checkpoint of another network, a
    /// counter out of range, a checksum that does not match or a non-finite weight is one
    /// <see cref="WaveGradException"/> that names the file, and nothing is restored.
    /// </summary>
    public static State Load(string dir, nn.Module net, AdamW opt, Ema ema, Generator rng, JsonNode network)
    {
        string statePath = Path.Combine(dir, "state.json");
        if (!File.Exists(statePath)) throw new WaveGradException($"{statePath}: missing; the checkpoint is incomplete");
        var st = InputFile.ReadJsonObject(statePath, "checkpoint state");
        long step = Field(st, "step", statePath, 0, MaxSteps);
        long optStep = Field(st, "optimizer_step", statePath, 0, step);
        long emaUpdates = Field(st, "ema_updates", statePath, 0, step + Ema.WarmStartUpdates);
        long nonFinite = st.ContainsKey("non_finite_skipped") ? Field(st, "non_finite_skipped", statePath, 0, step) : 0;
        double Seconds(string name) => st[name] is JsonValue v && v.TryGetValue(out double x) && x >= 0 && double.IsFinite(x) ? x : 0;
        double wallSeconds = Seconds("wall_seconds"), cpuSeconds = Seconds("cpu_seconds");   // 0 in checkpoints from before it was kept
        if (st["network"] is JsonNode n && n.ToJsonString() != network.ToJsonString())
            throw WaveGradException.About($"{statePath}: the checkpoint's network differs from the one asked for (its size, preset or " +
                "objective)", "Size", "Preset");
        if (st["sha256"] is JsonObject sums)
            foreach (var f in Files)
                if (sums[f]?.GetValueKind() != JsonValueKind.String || Sha256(Path.Combine(dir, f)) != sums[f]!.GetValue<string>())
                    throw new WaveGradException($"{Path.Combine(dir, f)}: checksum does not match state.json (the file is damaged)");
        var weights = LoadFinite(Path.Combine(dir, Files[0]));
        var emaT = LoadFinite(Path.Combine(dir, Files[1]));
        var optT = LoadFinite(Path.Combine(dir, Files[2]));
        var rngT = TensorFiles.Load(Path.Combine(dir, Files[3]));
        if (!rngT.TryGetValue("state", out var rs) || rs.dtype != ScalarType.Byte || !rs.shape.SequenceEqual(rng.get_state().shape))
            throw new WaveGradException($"{Path.Combine(dir, Files[3])}: not a generator state of this kind");
        TensorFiles.LoadInto(net, weights, Path.Combine(dir, Files[0]));
        opt.LoadStateDict(optT, Path.Combine(dir, Files[2]));
        opt.Step = optStep;
        ema.Start(emaT, Path.Combine(dir, Files[1]));
        ema.Updates = emaUpdates;
        rng.set_state(rs);
        return new State(step, nonFinite, wallSeconds, cpuSeconds, st);
    }

    static long Field(JsonObject st, string name, string source, long min, long max)
    {
        if (st[name] is not JsonValue v || !v.TryGetValue(out long x))
            throw new WaveGradException($"{source}: '{name}' is missing or not an integer");
        if (x < min || x > max) throw new WaveGradException($"{source}: '{name}' is {x}, outside {min}–{max}");
        return x;
    }

    static Dictionary<string, Tensor> LoadFinite(string path)
    {
        var d = TensorFiles.Load(path);
        foreach (var (k, t) in d)
            if (t.is_floating_point() && !isfinite(t).all().item<bool>())
                throw new WaveGradException($"{path}: '{Text.Escape(k)}' holds NaN or infinite values; the checkpoint is damaged");
        return d;
    }

    /// <summary>The file's SHA-256, read only once it is known to be a regular file (a pipe in its place would block forever).</summary>
    static string Sha256(string path)
    {
        using var f = InputFile.Open(path, "checkpoint file");
        return Convert.ToHexStringLower(SHA256.HashData(f));
    }
}
