using TorchSharp;
using TorchSharp.Modules;
using WaveGradSharp.Core;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;
using F = TorchSharp.torch.nn.functional;

namespace WaveGradSharp.Vocoder;

/// <summary>
/// An adversarial critic of a vocoder's waveform estimates: HiFi-GAN's multi-period discriminator (Kong et al. 2020) at a
/// quarter to a sixteenth of its layers' widths and one layer shallower, so that it trains beside the network on two CPU
/// cores. Each period p folds the waveform into p columns, [B, 1, T/p, p], and convolves down the columns only, so it
/// compares each sample with the samples p, 2p, … later: the pitch-period regularity and the harmonics that a regression
/// onto x₀ averages away where the mel cannot tell their phase. Least-squares losses (Mao et al. 2017), and feature
/// matching: the L1 distance between the critic's inner maps of the estimate and of the clean crop. The critic learns with
/// its own Adam, in the network's step, from estimates detached from the network.
/// </summary>
public sealed class WaveformCritic : Module
{
    /// <summary>The folding periods (HiFi-GAN's primes: no two share the multiples they compare).</summary>
    public static readonly int[] Periods = [2, 3, 5, 7, 11];
    static readonly int[] Channels = [1, 8, 32, 64, 64];
    /// <summary>The critic's learning rate (HiFi-GAN's).</summary>
    public const double LearningRate = 2e-4;
    /// <summary>Weight of feature matching beside the least-squares term in the network's loss (HiFi-GAN's).</summary>
    public const double FeatureMatchingWeight = 2;
    /// <summary>What the critic multiplies waveforms by: 1/σ_data of speech (0.1), so that its first layer sees unit variance.
    /// Unscaled, the layers' initial biases were several times the signal's contribution and the critic told nothing apart
    /// (tried: its loss sat at 0.5 a period).</summary>
    const double InputScale = 10;

    readonly ModuleList<ModuleList<Conv2d>> stacks = new();
    readonly Core.AdamW optimizer;

    /// <summary>A critic with libtorch's default initialisation (from its global generator), on <paramref name="device"/> (default
    /// the CPU) with its optimizer's state beside it.</summary>
    public WaveformCritic(Device? device = null) : base("WaveformCritic")
    {
        foreach (var _ in Periods)
        {
            var convs = new ModuleList<Conv2d>();
            for (int i = 0; i + 1 < Channels.Length; i++)
            {
                long stride = i + 2 < Channels.Length ? 3 : 1;   // the last inner layer keeps its resolution, as HiFi-GAN's does
                convs.Add(Conv2d(Channels[i], Channels[i + 1], (5, 1), stride: (stride, 1), padding: (2, 0)));
            }
            convs.Add(Conv2d(Channels[^1], 1, (3, 1), padding: (1, 0)));
            stacks.Add(convs);
        }
        RegisterComponents();
        if (device is not null) this.to(device);
        optimizer = new Core.AdamW(this, LearningRate);
    }

    /// <summary>Every period's maps of waveforms [B, T]: the inner layers' activations, then the scores [B, 1, ·, p].</summary>
    List<Tensor[]> Maps(Tensor audio)
    {
        var all = new List<Tensor[]>();
        var column = audio.unsqueeze(1) * InputScale;                                      // [B, 1, T]
        for (int k = 0; k < Periods.Length; k++)
        {
            int p = Periods[k];
            long pad = (p - audio.shape[1] % p) % p;
            var x = (pad > 0 ? F.pad(column, [0, pad], PaddingModes.Reflect) : column).view(audio.shape[0], 1, -1, p);
            var maps = new Tensor[stacks[k].Count];
            for (int i = 0; i < maps.Length; i++)
            {
                x = stacks[k][i].call(x);
                if (i + 1 < maps.Length) x = F.leaky_relu(x, 0.1);
                maps[i] = x;
            }
            all.Add(maps);
        }
        return all;
    }

    /// <summary>One step of the critic on clean crops and the network's estimates of them, [B, T] each (detached here):
    /// Σ_p mean((D_p(x₀) − 1)²) + mean(D_p(x̂₀)²). Returns that loss before the step; a non-finite loss or gradient is not
    /// stepped on (the trainer skips such a step of the network likewise).</summary>
    public double Learn(Tensor clean, Tensor estimate)
    {
        using var scope = NewDisposeScope();
        optimizer.ZeroGrad();
        var real = Maps(clean);
        var fake = Maps(estimate.detach());
        var loss = zeros([], device: clean.device);
        for (int k = 0; k < Periods.Length; k++)
        {
            var r = real[k][^1] - 1;
            var f = fake[k][^1];
            loss = loss + (r * r).mean() + (f * f).mean();   // x·x, not square(): see AdamW
        }
        loss.backward();
        double value = loss.item<float>(), norm = optimizer.ClipGradNorm(1.0);
        if (double.IsFinite(value) && double.IsFinite(norm)) optimizer.StepOnce();
        optimizer.ZeroGrad();
        return value;
    }

    /// <summary>The network's loss on its estimates [B, T] (with their graph): Σ_p mean((D_p(x̂₀) − 1)²) plus
    /// <see cref="FeatureMatchingWeight"/> × the mean L1 distance of every inner map of x̂₀ from the clean crop's. The critic's own
    /// weights take no gradient from it.</summary>
    public Tensor NetworkLoss(Tensor clean, Tensor estimate)
    {
        var weights = parameters().ToList();
        foreach (var w in weights) w.requires_grad = false;
        try
        {
            List<Tensor[]> real;
            using (no_grad()) real = Maps(clean);
            var fake = Maps(estimate);
            var loss = zeros([], device: clean.device);
            for (int k = 0; k < Periods.Length; k++)
            {
                var f = fake[k][^1] - 1;
                loss = loss + (f * f).mean();
                for (int i = 0; i + 1 < fake[k].Length; i++) loss = loss + FeatureMatchingWeight * (fake[k][i] - real[k][i]).abs().mean();
            }
            return loss;
        }
        finally
        {
            foreach (var w in weights) w.requires_grad = true;
        }
    }

    /// <summary>The critic's weights and its optimizer's state (moments, master weights, step count), for a checkpoint.</summary>
    public Dictionary<string, Tensor> State()
    {
        var d = new Dictionary<string, Tensor>();
        foreach (var (name, t) in state_dict()) d["critic." + name] = t;
        foreach (var (name, t) in optimizer.StateDict()) d["adam." + name] = t;
        d["adam_step"] = tensor(optimizer.Step);
        return d;
    }

    /// <summary>Restores <see cref="State"/>; <paramref name="source"/> names the file in errors.</summary>
    public void Load(IReadOnlyDictionary<string, Tensor> state, string source)
    {
        var own = state.Where(kv => kv.Key.StartsWith("critic.", StringComparison.Ordinal)).ToDictionary(kv => kv.Key["critic.".Length..], kv => kv.Value);
        TensorFiles.LoadInto(this, own, source);
        optimizer.LoadStateDict(state.Where(kv => kv.Key.StartsWith("adam.", StringComparison.Ordinal))
            .ToDictionary(kv => kv.Key["adam.".Length..], kv => kv.Value), source);
        optimizer.Step = state.TryGetValue("adam_step", out var step) ? step.item<long>()
            : throw new WaveGradException($"{source}: the critic's state lacks 'adam_step'");
    }
}
