using TorchSharp;
using WaveGradSharp.Core;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace WaveGradSharp.Vocoder;

/// <summary>
/// <see cref="WaveGradNet"/>'s forward pass for CPU inference, the same function computed as matrix products over
/// time-major activations [T, C]. A k-tap convolution is k products of a shifted view of its input with one tap's
/// [C_in, C_out] matrix, accumulated into the output (zero padding is the rows a shifted view leaves out); libtorch's
/// bf16 and small-channel convolutions run at a fraction of the speed of its matrix products on the same shapes. Nearest
/// upsampling is never materialised: a UBlock's first convolution reads the low-rate input once per output phase
/// (polyphase: with factor f, phases 1…f−2 see one input sample through all three taps, so the sum of the taps
/// is one matrix), and its 1×1 branch is added to the upsampled sum by broadcasting. Weights are copied once, in the
/// chosen element type; the network they came from can be freed. Nearest-interpolation networks only (every shipped
/// voice); <see cref="Supports"/> says which.
/// </summary>
public sealed class WaveGradInference : nn.Module<Tensor, Tensor, Tensor, Tensor>
{
    readonly WaveGradConfig config;
    readonly ScalarType type;
    readonly TapConv input;
    readonly (TapConv Residual, TapConv[] Convs)[] dblocks;
    readonly (TapConv In, TapConv Shift, TapConv Scale)[] films;
    readonly TapConv first;
    readonly (TapConv Block1, PolyphaseConv Up, TapConv Block2, TapConv Block3a, TapConv Block3b)[] ublocks;
    readonly Tensor outTaps, outBias;   // float32: the predicted noise is the sampler's input
    readonly Meter meter = new();
    readonly System.Diagnostics.Stopwatch clock = new();
    Dictionary<string, (double Seconds, double Macs)>? profile;   // while Profile runs
    double macsAtLap;

    /// <summary>Whether a network can run here: nearest interpolation (the linear kind runs as <see cref="WaveGradNet"/>).</summary>
    public static bool Supports(WaveGradConfig config) => config.Interpolation == "nearest";

    /// <summary>The network's weights, copied in <paramref name="type"/> (float32 or bfloat16), in which every layer computes but
    /// the output conv (float32).</summary>
    public WaveGradInference(WaveGradNet net, ScalarType type) : base("WaveGradInference")
    {
        config = net.Config;
        if (!Supports(config)) throw new WaveGradException($"WaveGradInference: interpolation '{config.Interpolation}' is not supported");
        this.type = type;
        NativeTuning.ReuseFreedMemory();
        var sd = net.state_dict();
        TapConv Conv(string name, int dilation = 1) => new(sd[name + ".weight"], sd[name + ".bias"], dilation, type, meter);
        input = Conv("downsample.0");
        dblocks = [.. Enumerable.Range(1, 4).Select(i => (Conv($"downsample.{i}.residual_dense"),
            new[] { Conv($"downsample.{i}.conv.0", 1), Conv($"downsample.{i}.conv.1", 2), Conv($"downsample.{i}.conv.2", 4) }))];
        films = [.. Enumerable.Range(0, 5).Select(i =>
        {
            // FiLM's output conv gives (shift, scale) stacked along channels: two convs here, so that each comes out contiguous.
            var (w, b) = (sd[$"film.{i}.output_conv.weight"], sd[$"film.{i}.output_conv.bias"]);
            int c = (int)w.shape[0] / 2;
            return (Conv($"film.{i}.input_conv"), new TapConv(w[..c], b[..c], 1, type, meter), new TapConv(w[c..], b[c..], 1, type, meter));
        })];
        first = Conv("first_conv");
        var dil = config.UBlockDilations;
        if (dil.Any(d => d[0] != 1)) throw new WaveGradException("WaveGradInference: a UBlock's first convolution must have dilation 1");
        ublocks = [.. Enumerable.Range(0, 5).Select(i => (Conv($"upsample.{i}.block1"),
            new PolyphaseConv(sd[$"upsample.{i}.block2.0.weight"], sd[$"upsample.{i}.block2.0.bias"], config.UpFactors[i], type, meter),
            Conv($"upsample.{i}.block2.1", dil[i][1]), Conv($"upsample.{i}.block3.0", dil[i][2]), Conv($"upsample.{i}.block3.1", dil[i][3])))];
        using (no_grad())
        {
            using var scope = NewDisposeScope();
            outTaps = sd["last_conv.weight"][0].to_type(ScalarType.Float32).contiguous().clone().DetachFromDisposeScope();   // [C, 3]
            outBias = sd["last_conv.bias"].to_type(ScalarType.Float32).clone().DetachFromDisposeScope();
        }
    }

    /// <summary>Predicted noise ε [B, T] for audio [B, T] (T a multiple of the hop), mel [B, n_mels, T/hop] and √ᾱ [B]; float32.</summary>
    public override Tensor forward(Tensor audio, Tensor mel, Tensor noiseLevel)
    {
        long batch = audio.shape[0];
        if (mel.shape[^1] * config.Hop != audio.shape[^1])
            throw new WaveGradException($"WaveGradInference: audio of {audio.shape[^1]} samples does not match {mel.shape[^1]} mel frames of hop {config.Hop}");
        if (mel.shape[0] != batch || noiseLevel.numel() is var n && n != 1 && n != batch)
            throw new WaveGradException($"WaveGradInference: {batch} waveforms, {mel.shape[0]} mels and {noiseLevel.numel()} noise levels");
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var level = noiseLevel.to_type(ScalarType.Float32).cpu().reshape(-1).expand(batch);
        var rows = new Tensor[audio.shape[0]];
        for (int b = 0; b < rows.Length; b++) rows[b] = One(audio[b], mel[b], level[b].item<float>());
        return stack(rows).MoveToOuterDisposeScope();
    }

    /// <summary>One item: audio [T], mel [n_mels, F] → ε [T].</summary>
    Tensor One(Tensor audio, Tensor mel, float level)
    {
        // The waveform path: FiLM i modulates the activations at resolution i (0 = audio rate).
        var x = input.Apply(audio.to_type(type).unsqueeze(1));
        Lap("input conv");
        var mods = new (Tensor Shift, Tensor Scale)[5];
        for (int i = 0; i < 5; i++)
        {
            if (i > 0)
            {
                var (residual, convs) = dblocks[i - 1];
                int f = config.UpFactors[5 - i];   // DBlock i undoes UBlock 5 − i's upsampling
                var down = x.view(x.shape[0] / f, f, x.shape[1])[.., 0];   // nearest subsampling: every f-th row, a view
                var h = down;
                foreach (var c in convs) h = c.Apply(LeakyRelu(h));
                x = h.add_(residual.Apply(down));
                Lap($"dblock {i}");
            }
            var (fin, shift, scale) = films[i];
            var g = LeakyRelu(fin.Apply(x), inPlace: true);
            g.add_(FiLM.Encoding(tensor(new[] { level }), (int)x.shape[1], config.NoiseEncodingScale).to_type(type));
            mods[i] = (shift.Apply(g), scale.Apply(g));
            Lap($"film {i}");
        }
        // The mel path.
        var y = first.Apply(mel.to_type(type).t());
        Lap("first conv");
        for (int i = 0; i < 5; i++)
        {
            var (block1, up, block2, block3a, block3b) = ublocks[i];
            var (shift, scale) = mods[4 - i];
            long t = y.shape[0];
            int f = config.UpFactors[i];
            var b2 = block2.Apply(UBlock.Modulated(up.Apply(LeakyRelu(y)), shift, scale, inPlace: true));
            b2.view(t, f, b2.shape[1]).add_(block1.Apply(y).unsqueeze(1));   // + block1(y), upsampled by broadcasting
            var b3 = block3a.Apply(UBlock.Modulated(b2, shift, scale, inPlace: true));
            b3 = block3b.Apply(UBlock.Modulated(b3, shift, scale, inPlace: true));
            y = b2.add_(b3);
            Lap($"ublock {i}");
        }
        // The output conv (C → 1, three taps) in float32.
        var z = y.to_type(ScalarType.Float32).matmul(outTaps);   // [T, 3]: each tap's contribution at its input sample
        var eps = z[.., 1] + outBias;
        eps[1..].add_(z[..^1, 0]);
        eps[..^1].add_(z[1.., 2]);
        meter.Macs += (double)y.shape[0] * y.shape[1] * 3;
        Lap("output conv");
        return eps.to_type(audio.dtype);
    }

    /// <summary>
    /// Where one evaluation's time goes, stage by stage (the input conv, each DBlock and FiLM, the first conv, each UBlock, the
    /// output conv: each with the element-wise work inside it) and the multiply-adds each stage computes: seconds and
    /// multiply-adds per evaluation, over <paramref name="repeats"/> evaluations after one warm-up.
    /// </summary>
    public IReadOnlyList<(string Stage, double Seconds, double Macs)> Profile(Tensor audio, Tensor mel, Tensor noiseLevel, int repeats = 5)
    {
        forward(audio, mel, noiseLevel).Dispose();
        var stages = profile = [];
        try
        {
            for (int i = 0; i < repeats; i++)
            {
                macsAtLap = meter.Macs;
                clock.Restart();
                forward(audio, mel, noiseLevel).Dispose();
            }
        }
        finally { profile = null; }
        return [.. stages.Select(kv => (kv.Key, kv.Value.Seconds / repeats, kv.Value.Macs / repeats))];
    }

    /// <summary>Adds the time and multiply-adds since the last lap to <paramref name="stage"/>, while profiling.</summary>
    void Lap(string stage)
    {
        if (profile is null) return;
        var (seconds, macs) = profile.GetValueOrDefault(stage);
        profile[stage] = (seconds + clock.Elapsed.TotalSeconds, macs + meter.Macs - macsAtLap);
        macsAtLap = meter.Macs;
        clock.Restart();
    }

    /// <summary>Multiply-adds the engine's products have computed (for <see cref="Profile"/>).</summary>
    sealed class Meter { public double Macs; }

    static Tensor LeakyRelu(Tensor x, bool inPlace = false) => F.leaky_relu(x, 0.2, inplace: inPlace);

    /// <inheritdoc/>
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            var convs = new List<IDisposable> { input, first };
            foreach (var (r, c) in dblocks) { convs.Add(r); convs.AddRange(c); }
            foreach (var (a, b, c) in films) convs.AddRange([a, b, c]);
            foreach (var u in ublocks) convs.AddRange([u.Block1, u.Up, u.Block2, u.Block3a, u.Block3b]);
            foreach (var c in convs) c.Dispose();
            outTaps.Dispose(); outBias.Dispose();
        }
        base.Dispose(disposing);
    }

    /// <summary>
    /// A convolution with zero padding that keeps the length, over time-major [T, C_in] → [T, C_out]: the centre tap's
    /// product with the bias, then each other tap's product accumulated into the rows it reaches. A one-channel input
    /// (the waveform) takes one product with its k shifted copies side by side instead.
    /// </summary>
    sealed class TapConv : IDisposable
    {
        readonly Tensor taps;   // [k, C_in, C_out]
        readonly Tensor bias;
        readonly int dilation;
        readonly Meter meter;

        public TapConv(Tensor weight, Tensor bias, int dilation, ScalarType type, Meter meter)
        {
            this.meter = meter;
            using var _ = no_grad();
            using var scope = NewDisposeScope();
            taps = weight.permute(2, 1, 0).to_type(type).contiguous().DetachFromDisposeScope();
            this.bias = bias.to_type(type).clone().DetachFromDisposeScope();
            this.dilation = dilation;
        }

        public Tensor Apply(Tensor x)
        {
            long k = taps.shape[0], centre = k / 2, t = x.shape[0];
            meter.Macs += (double)t * k * taps.shape[1] * taps.shape[2];
            if (taps.shape[1] == 1)
            {
                var padded = F.pad(x[.., 0], [centre * dilation, centre * dilation]);
                var windows = padded.unfold(0, (k - 1) * dilation + 1, 1)[.., TensorIndex.Slice(null, null, dilation)];   // [T, k]
                return addmm(bias, windows.contiguous(), taps[.., 0], 1, 1);
            }
            var y = addmm(bias, x, taps[centre], 1, 1);
            for (long j = 0; j < k; j++)
            {
                long s = (j - centre) * dilation;   // output row r reads input row r + s
                if (j == centre || Math.Abs(s) >= t) continue;
                var into = y.narrow(0, Math.Max(0, -s), t - Math.Abs(s));
                into.addmm_(x.narrow(0, Math.Max(0, s), t - Math.Abs(s)), taps[j]);
            }
            return y;
        }

        public void Dispose() { taps.Dispose(); bias.Dispose(); }
    }

    /// <summary>
    /// A three-tap, dilation-1 convolution of the nearest-upsampled input (factor f), computed at the input rate: output
    /// row f·n + r is Σ_k w_k·x[⌊(f·n + r + k − 1)/f⌋], so phase 0 reads x[n−1] through w₀ and x[n] through w₁ + w₂, phase
    /// f−1 reads x[n] through w₀ + w₁ and x[n+1] through w₂, and the phases between read x[n] through w₀ + w₁ + w₂. One
    /// product with the phases' centre matrices side by side gives [T, f·C_out], the [f·T, C_out] output in place; two
    /// more add the neighbours. Multiply-adds per input sample: (f + 2)·C_in·C_out instead of 3f·C_in·C_out.
    /// </summary>
    sealed class PolyphaseConv : IDisposable
    {
        readonly Tensor centre;   // [C_in, f·C_out]
        readonly Tensor before, after;   // [C_in, C_out]: w₀ (phase 0, from x[n−1]) and w₂ (phase f−1, from x[n+1])
        readonly Tensor bias;   // [f·C_out]
        readonly int factor;
        readonly Meter meter;

        public PolyphaseConv(Tensor weight, Tensor bias, int factor, ScalarType type, Meter meter)
        {
            this.meter = meter;
            using var _ = no_grad();
            using var scope = NewDisposeScope();
            if (weight.shape[2] != 3) throw new WaveGradException("PolyphaseConv: a three-tap convolution is expected");
            var w = weight.permute(2, 1, 0);   // [3, C_in, C_out]
            var phases = Enumerable.Range(0, factor).Select(r =>
                factor == 1 ? w[1] : r == 0 ? w[1] + w[2] : r == factor - 1 ? w[0] + w[1] : w[0] + w[1] + w[2]).ToArray();
            centre = cat(phases, 1).to_type(type).contiguous().DetachFromDisposeScope();
            before = w[0].to_type(type).contiguous().DetachFromDisposeScope();
            after = w[2].to_type(type).contiguous().DetachFromDisposeScope();
            this.bias = bias.repeat(factor).to_type(type).DetachFromDisposeScope();
            this.factor = factor;
        }

        /// <summary>x [T, C_in] at the input rate → [f·T, C_out].</summary>
        public Tensor Apply(Tensor x)
        {
            long t = x.shape[0], c = before.shape[1];
            meter.Macs += (double)t * centre.shape[0] * (factor + 2) * c;
            var y = addmm(bias, x, centre, 1, 1);   // [T, f·C_out]
            if (t > 1)
            {
                y.narrow(0, 1, t - 1).narrow(1, 0, c).addmm_(x.narrow(0, 0, t - 1), before);
                y.narrow(0, 0, t - 1).narrow(1, (factor - 1) * c, c).addmm_(x.narrow(0, 1, t - 1), after);
            }
            return y.view(t * factor, c);
        }

        public void Dispose() { centre.Dispose(); before.Dispose(); after.Dispose(); bias.Dispose(); }
    }
}
