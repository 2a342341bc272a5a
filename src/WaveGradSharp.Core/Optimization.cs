using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace WaveGradSharp.Core;

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

    /// <summary>Updates counted for an average started from another run's average, which is already warm.</summary>
    public const long WarmStartUpdates = 10_000;

    /// <summary>Starts the average at named tensors (another run's average, or a checkpoint's): every parameter
    /// must be there with its shape; <paramref name="source"/> names them in errors.</summary>
    public void Start(IReadOnlyDictionary<string, Tensor> tensors, string source)
    {
        using var _ = no_grad();
        foreach (var (k, v) in Shadow)
        {
            if (!tensors.TryGetValue(k, out var t)) throw new WaveGradException($"{source}: lacks '{k}'");
            if (!t.shape.SequenceEqual(v.shape))
                throw new WaveGradException($"{source}: '{k}' is [{string.Join(", ", t.shape)}], the network needs [{string.Join(", ", v.shape)}]");
            v.copy_(t);
        }
        Updates = WarmStartUpdates;
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
                if (!t.shape.SequenceEqual(target[n].shape)) throw new WaveGradException($"{source}: optimizer state '{prefix + n}' has shape " +
                    $"[{string.Join(", ", t.shape)}], expected [{string.Join(", ", target[n].shape)}]");
                target[n].copy_(t);
            }
            p.copy_(Master[n]);
        }
    }
}
