using System.Text.Json;
using System.Text.Json.Nodes;
using System.Diagnostics;
using TorchSharp;
using TorchSharp.Modules;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace WaveGradSharp.Diffusion;

/// <summary>
/// Exponential moving average of a module's parameters with a warm-up: decay_n = min(max, (1 + n)/(10 + n)).
/// Without the warm-up the average stays dominated by the random initial weights for thousands of steps.
/// </summary>
public sealed class Ema
{
    readonly (string Name, Parameter Param)[] source;
    /// <summary>The averaged tensors (fp32), by parameter name.</summary>
    public Dictionary<string, Tensor> Shadow { get; }
    /// <summary>Largest decay.</summary>
    public double MaxDecay { get; }
    /// <summary>Updates so far.</summary>
    public long Updates { get; set; }

    /// <summary>Starts the average at the module's current weights.</summary>
    public Ema(nn.Module module, double maxDecay = 0.9999)
    {
        MaxDecay = maxDecay;
        source = module.named_parameters().Select(p => (p.name, p.parameter)).ToArray();
        using (no_grad())
            Shadow = source.ToDictionary(p => p.Name, p => p.Param.detach().to_type(ScalarType.Float32).clone());
    }

    /// <summary>The decay used at the next update.</summary>
    public double Decay => Math.Min(MaxDecay, (1.0 + Updates) / (10.0 + Updates));

    /// <summary>shadow ← d·shadow + (1 − d)·param.</summary>
    public void Update()
    {
        double d = Decay;
        using (no_grad())
            foreach (var (name, p) in source)
                Shadow[name].mul_(d).add_(p.detach().to_type(ScalarType.Float32), alpha: 1 - d);
        Updates++;
    }
}

/// <summary>
/// Adam / AdamW whose whole state (fp32 master weights, moments, step) is plain tensors, so a checkpoint
/// restores it exactly. With bf16 model weights it keeps fp32 master copies and writes rounded values back.
/// </summary>
public sealed class AdamW
{
    readonly (string Name, Parameter Param)[] ps;
    /// <summary>First moments, second moments and fp32 master weights, by parameter name.</summary>
    public Dictionary<string, Tensor> M { get; } = new();
    /// <summary>Second moments by parameter name.</summary>
    public Dictionary<string, Tensor> V { get; } = new();
    /// <summary>fp32 master weights by parameter name.</summary>
    public Dictionary<string, Tensor> Master { get; } = new();
    /// <summary>Learning rate.</summary>
    public double LearningRate { get; set; }
    /// <summary>Adam β₁, β₂, ε and decoupled weight decay.</summary>
    public double Beta1 { get; } = 0.9;
    /// <summary>Adam β₂.</summary>
    public double Beta2 { get; } = 0.999;
    /// <summary>Adam ε.</summary>
    public double Eps { get; } = 1e-8;
    /// <summary>Decoupled weight decay (AdamW).</summary>
    public double WeightDecay { get; }
    /// <summary>Optimizer steps taken.</summary>
    public long Step { get; set; }

    /// <summary>Adam over the module's parameters.</summary>
    public AdamW(nn.Module module, double learningRate, double weightDecay = 0)
    {
        ps = module.named_parameters().Select(p => (p.name, p.parameter)).ToArray();
        LearningRate = learningRate; WeightDecay = weightDecay;
        using (no_grad())
            foreach (var (n, p) in ps)
            {
                Master[n] = p.detach().to_type(ScalarType.Float32).clone();
                M[n] = zeros_like(Master[n]);
                V[n] = zeros_like(Master[n]);
            }
    }

    /// <summary>Global L2 norm of the gradients; scales them down to <paramref name="maxNorm"/> when larger. Returns the norm before clipping.</summary>
    public double ClipGradNorm(double maxNorm)
    {
        using var scope = NewDisposeScope();
        var grads = ps.Where(p => p.Param.grad is not null).Select(p => SumOfSquares(p.Param.grad!.to_type(ScalarType.Float32))).ToArray();
        if (grads.Length == 0) return 0;
        double norm = Math.Sqrt(stack(grads).sum().item<float>());
        if (norm > maxNorm && double.IsFinite(norm))
            using (no_grad())
                foreach (var (_, p) in ps) p.grad?.mul_(maxNorm / (norm + 1e-6));
        return norm;
    }

    // x·x rather than x.square(): TorchSharp's square() is pow(2) with a Scalar temporary that nothing keeps alive
    // during the native call, and a garbage collection at that moment crashed a long run ("INTERNAL ASSERT FAILED
    // at Scalar.h"). The library avoids square() and pow(scalar) everywhere for that reason.
    static Tensor SumOfSquares(Tensor g) => (g * g).sum();

    /// <summary>One update from the current gradients.</summary>
    public void StepOnce()
    {
        Step++;
        double bc1 = 1 - Math.Pow(Beta1, Step), bc2 = 1 - Math.Pow(Beta2, Step);
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        foreach (var (n, p) in ps)
        {
            if (p.grad is null) continue;
            var g = p.grad.to_type(ScalarType.Float32);
            var w = Master[n];
            if (WeightDecay > 0) w.mul_(1 - LearningRate * WeightDecay);
            M[n].mul_(Beta1).add_(g, alpha: 1 - Beta1);
            V[n].mul_(Beta2).addcmul_(g, g, value: 1 - Beta2);
            var denom = (V[n] / bc2).sqrt_().add_(Eps);
            w.addcdiv_(M[n], denom, value: -LearningRate / bc1);
            p.copy_(w);
        }
    }

    /// <summary>Clears the gradients.</summary>
    public void ZeroGrad()
    {
        foreach (var (_, p) in ps) if (p.grad is not null) { p.grad.Dispose(); p.grad = null; }
    }

    /// <summary>State as named tensors for a checkpoint.</summary>
    public Dictionary<string, Tensor> StateDict()
    {
        var d = new Dictionary<string, Tensor>();
        foreach (var (n, _) in ps) { d["m." + n] = M[n]; d["v." + n] = V[n]; d["master." + n] = Master[n]; }
        return d;
    }

    /// <summary>Restores the state written by <see cref="StateDict"/>; <paramref name="source"/> names the file in errors.</summary>
    public void LoadStateDict(IReadOnlyDictionary<string, Tensor> d, string source)
    {
        using var _ = no_grad();
        foreach (var (n, p) in ps)
        {
            foreach (var (prefix, target) in new[] { ("m.", M), ("v.", V), ("master.", Master) })
            {
                if (!d.TryGetValue(prefix + n, out var t)) throw new WaveGradException($"{source}: optimizer state lacks '{prefix + n}'");
                if (!t.shape.SequenceEqual(target[n].shape)) throw new WaveGradException($"{source}: optimizer state '{prefix + n}' has shape [{string.Join(", ", t.shape)}], expected [{string.Join(", ", target[n].shape)}]");
                target[n].copy_(t);
            }
            p.copy_(Master[n]);
        }
    }
}

/// <summary>Named-tensor files (safetensors) and module state, with clear errors.</summary>
public static class TensorFiles
{
    /// <summary>Writes named tensors as safetensors, atomically. <paramref name="half"/> stores floating tensors as fp16.</summary>
    public static void Save(string path, IReadOnlyDictionary<string, Tensor> tensors, bool half = false)
    {
        using var scope = NewDisposeScope();
        var d = tensors.ToDictionary(kv => kv.Key, kv =>
        {
            var t = kv.Value.detach().cpu();
            return half && t.is_floating_point() ? t.to_type(ScalarType.Float16) : t.contiguous();
        });
        AtomicFile.Write(path, tmp => Safetensors.SaveStateDict(tmp, d));
    }

    /// <summary>Reads a safetensors file; a missing or malformed file is a <see cref="WaveGradException"/> naming it.</summary>
    public static Dictionary<string, Tensor> Load(string path)
    {
        if (!File.Exists(path)) throw new WaveGradException($"{path}: no such file");
        var len = new FileInfo(path).Length;
        if (len < 8) throw new WaveGradException($"{path}: not a safetensors file (only {len} bytes)");
        using (var fs = File.OpenRead(path))
        {
            var hdr = new byte[8];
            fs.ReadExactly(hdr);
            ulong n = BitConverter.ToUInt64(hdr);
            if (n == 0 || n > (ulong)(len - 8) || n > 100_000_000)
                throw new WaveGradException($"{path}: not a safetensors file (header length {n} does not fit the {len}-byte file)");
        }
        try { return Safetensors.LoadStateDict(path); }
        catch (Exception e) when (e is not WaveGradException)
        {
            throw new WaveGradException($"{path}: corrupt safetensors file ({e.Message.Split('\n')[0]})", e);
        }
    }

    /// <summary>The module's parameters and buffers by name.</summary>
    public static Dictionary<string, Tensor> StateOf(nn.Module module) => module.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value);

    /// <summary>
    /// Copies named tensors into a module; every key must be present with the same shape, and no key may be
    /// left over. Differences are listed (up to six) in one error that names <paramref name="source"/>.
    /// </summary>
    public static void LoadInto(nn.Module module, IReadOnlyDictionary<string, Tensor> tensors, string source)
    {
        var own = module.state_dict();
        var problems = new List<string>();
        foreach (var (name, t) in own)
        {
            if (!tensors.TryGetValue(name, out var v)) problems.Add($"missing '{name}' [{string.Join(", ", t.shape)}]");
            else if (!v.shape.SequenceEqual(t.shape)) problems.Add($"'{name}' is [{string.Join(", ", v.shape)}], the network needs [{string.Join(", ", t.shape)}]");
        }
        foreach (var name in tensors.Keys.Where(k => !own.ContainsKey(k))) problems.Add($"unexpected '{name}'");
        if (problems.Count > 0)
            throw new WaveGradException($"{source}: weights do not match the network config ({problems.Count} difference(s): {string.Join("; ", problems.Take(6))}{(problems.Count > 6 ? "; …" : "")})");
        using var _ = no_grad();
        foreach (var (name, t) in own) t.copy_(tensors[name].to_type(t.dtype).to(t.device));
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
        string line = $"step {step}/{totalSteps}  loss {(lossCount > 0 ? lossSum / lossCount : double.NaN):F4}  {stepsPerSec:F2} steps/s  {samples / secs:F0} samples/s  ETA {Format(eta)}{extra}";
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

    static string Format(double seconds) => double.IsFinite(seconds) ? TimeSpan.FromSeconds(Math.Round(seconds)).ToString(@"h\:mm\:ss") : "?";
}

/// <summary>
/// A training run's checkpoint folder: raw (master) weights, EMA weights, optimizer moments, the generator's state
/// and a <c>state.json</c> with the step, counters and whatever the trainer adds. Written as a whole or not at all.
/// </summary>
public static class TrainingCheckpoint
{
    /// <summary>Writes the checkpoint folder atomically; <paramref name="state"/> gets step, optimizer_step and ema_updates added.</summary>
    public static void Save(string dir, AdamW opt, Ema ema, Generator rng, long step, JsonObject state)
    {
        AtomicFile.WriteFolder(dir, marker: "state.json", fill: tmp =>
        {
            TensorFiles.Save(Path.Combine(tmp, "model.safetensors"), opt.Master);
            TensorFiles.Save(Path.Combine(tmp, "ema.safetensors"), ema.Shadow);
            TensorFiles.Save(Path.Combine(tmp, "optimizer.safetensors"), opt.StateDict());
            TensorFiles.Save(Path.Combine(tmp, "rng.safetensors"), new Dictionary<string, Tensor> { ["state"] = rng.get_state() });
            var s = (JsonObject)state.DeepClone();
            s["step"] = step; s["optimizer_step"] = opt.Step; s["ema_updates"] = ema.Updates;
            File.WriteAllText(Path.Combine(tmp, "state.json"), s.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        });
    }

    /// <summary>
    /// Restores weights, optimizer, EMA and generator from a checkpoint folder and returns its state.json.
    /// Every missing or malformed part is one <see cref="WaveGradException"/> that names the file.
    /// </summary>
    public static JsonObject Load(string dir, nn.Module net, AdamW opt, Ema ema, Generator rng)
    {
        string statePath = Path.Combine(dir, "state.json");
        if (!File.Exists(statePath)) throw new WaveGradException($"{statePath}: missing; the checkpoint is incomplete");
        try
        {
            var state = JsonNode.Parse(File.ReadAllText(statePath))!.AsObject();
            TensorFiles.LoadInto(net, TensorFiles.Load(Path.Combine(dir, "model.safetensors")), Path.Combine(dir, "model.safetensors"));
            opt.LoadStateDict(TensorFiles.Load(Path.Combine(dir, "optimizer.safetensors")), Path.Combine(dir, "optimizer.safetensors"));
            opt.Step = state["optimizer_step"]!.GetValue<long>();
            var emaT = TensorFiles.Load(Path.Combine(dir, "ema.safetensors"));
            foreach (var (k, v) in ema.Shadow)
            {
                if (!emaT.TryGetValue(k, out var t)) throw new WaveGradException($"{Path.Combine(dir, "ema.safetensors")}: lacks '{k}'");
                v.copy_(t);
            }
            ema.Updates = state["ema_updates"]!.GetValue<long>();
            rng.set_state(TensorFiles.Load(Path.Combine(dir, "rng.safetensors"))["state"]);
            _ = state["step"]!.GetValue<long>();
            return state;
        }
        catch (Exception e) when (e is NullReferenceException or KeyNotFoundException or InvalidOperationException or JsonException or FormatException)
        {
            throw new WaveGradException($"{dir}: incomplete or malformed checkpoint ({e.Message.Split('\n')[0]})", e);
        }
    }
}
