using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using WaveGradSharp.Audio;
using TorchSharp;
using TorchSharp.Modules;
using WaveGradSharp.Diffusion;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;
using F = TorchSharp.torch.nn.functional;
using WaveGradSharp.Core;

namespace WaveGradSharp.Vocoder;

/// <summary>Order of the UBlock dilations.</summary>
public enum DilationOrder
{
    /// <summary>The paper's Appendix A: 1,2,4,8 in the first three UBlocks, 1,2,1,2 in the last two.</summary>
    Paper,
    /// <summary>lmnt-com/wavegrad (and ivanvovk): 1,2,1,2 in the first two, 1,2,4,8 in the last three.</summary>
    Lmnt,
}

/// <summary>
/// Shape of a WaveGrad network. Channel lists follow the data path: <see cref="DownChannels"/> from the waveform
/// (the first is the 5-tap input conv), <see cref="UpChannels"/> from the mel. <see cref="UpFactors"/> multiply to
/// the hop length.
/// </summary>
public sealed record WaveGradConfig
{
    /// <summary>Mel bands of the conditioning input.</summary>
    [JsonPropertyName("n_mels")] public int NMels { get; init; } = 128;
    /// <summary>Upsampling factor of each UBlock, mel rate to audio rate (product = hop).</summary>
    [JsonPropertyName("up_factors")] public int[] UpFactors { get; init; } = [5, 5, 3, 2, 2];
    /// <summary>Output channels of first_conv (mel → hidden).</summary>
    [JsonPropertyName("first_channels")] public int FirstChannels { get; init; } = 768;
    /// <summary>UBlock output channels.</summary>
    [JsonPropertyName("up_channels")] public int[] UpChannels { get; init; } = [512, 512, 256, 128, 128];
    /// <summary>Channels after the input conv and after each DBlock.</summary>
    [JsonPropertyName("down_channels")] public int[] DownChannels { get; init; } = [32, 128, 128, 256, 512];
    /// <summary>Dilation order of the UBlocks.</summary>
    [JsonPropertyName("dilations")] public DilationOrder Dilations { get; init; } = DilationOrder.Paper;
    /// <summary>Scale of √ᾱ inside the sinusoidal encoding: the paper uses 5000, lmnt-com/wavegrad 1.</summary>
    [JsonPropertyName("noise_scale")] public double NoiseEncodingScale { get; init; } = 5000;
    /// <summary>Interpolation used to up- and downsample: "nearest" (lmnt) or "linear" (ivanvovk).</summary>
    [JsonPropertyName("interpolation")] public string Interpolation { get; init; } = "nearest";

    /// <summary>The four convolutions' dilations in each UBlock, in <see cref="Dilations"/>' order.</summary>
    [JsonIgnore] public int[][] UBlockDilations => Dilations == DilationOrder.Paper
        ? [[1, 2, 4, 8], [1, 2, 4, 8], [1, 2, 4, 8], [1, 2, 1, 2], [1, 2, 1, 2]]
        : [[1, 2, 1, 2], [1, 2, 1, 2], [1, 2, 4, 8], [1, 2, 4, 8], [1, 2, 4, 8]];

    /// <summary>Hop length implied by the factors.</summary>
    [JsonIgnore] public int Hop => UpFactors.Aggregate(1, (a, b) => a * b);

    /// <summary>The sizes: <c>small</c> (half the base channels, for CPUs), <c>base</c> (the paper's, 15.9 M parameters with 128 mels), <c>large</c>
    /// (1.5× base channels).</summary>
    public static IReadOnlyList<string> SizeNames { get; } = ["small", "base", "large"];

    /// <summary>A named size for a hop length and mel count.</summary>
    public static WaveGradConfig Create(string size, int hop, int nMels, DilationOrder dilations = DilationOrder.Paper, double noiseScale = 5000)
    {
        double w = size switch
        {
            "small" => 0.5,
            "base" => 1.0,
            "large" => 1.5,
            _ => throw new WaveGradException($"unknown model size '{size}'; known: {string.Join(", ", SizeNames)}"),
        };
        int C(int c) => (int)Math.Round(c * w);
        return new WaveGradConfig
        {
            NMels = nMels,
            UpFactors = FactorsForHop(hop),
            FirstChannels = C(768),
            UpChannels = [C(512), C(512), C(256), C(128), C(128)],
            DownChannels = [C(32), C(128), C(128), C(256), C(512)],
            Dilations = dilations,
            NoiseEncodingScale = noiseScale,
        };
    }

    /// <summary>Upsampling factors for a hop: 300 → 5,5,3,2,2; 256 → 4,4,4,2,2; 200 → 5,5,2,2,2; 240 → 5,4,3,2,2.</summary>
    public static int[] FactorsForHop(int hop) => hop switch
    {
        300 => [5, 5, 3, 2, 2],
        256 => [4, 4, 4, 2, 2],
        240 => [5, 4, 3, 2, 2],
        200 => [5, 5, 2, 2, 2],
        _ => throw new WaveGradException($"hop {hop} is not supported; supported: 300 (5·5·3·2·2), 256 (4·4·4·2·2), " +
            "240 (5·4·3·2·2), 200 (5·5·2·2·2)"),
    };

    /// <summary>The most parameters a WaveGrad voice may have (<c>large</c> has 36 M with 128 mels): a card asking for more
    /// is refused before anything is allocated.</summary>
    public const long MaxParameters = 100_000_000;
    /// <summary>The most channels of any layer.</summary>
    public const int MaxChannels = 4096;

    /// <summary>How the card writes a config (enums in kebab case).</summary>
    public static readonly JsonSerializerOptions JsonOptions = new()
    {
        WriteIndented = true,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.KebabCaseLower, allowIntegerValues: false) },
    };

    /// <summary>A WaveGrad voice's config.</summary>
    public static WaveGradConfig Of(Voice voice) => FromCard(voice.Network, voice.Mel, voice.Bundle.ManifestPath);

    /// <summary>The config in a voice card's <c>network</c> field, checked against the voice's mel preset.</summary>
    public static WaveGradConfig FromCard(JsonObject network, MelConfig mel, string source)
    {
        WaveGradConfig? cfg;
        try { cfg = network.Deserialize<WaveGradConfig>(JsonOptions); }
        catch (JsonException e) { throw new WaveGradException($"{source}: malformed network ({Text.Escape(Text.FirstLine(e.Message))})"); }
        return (cfg ?? throw new WaveGradException($"{source}: no network")).Check(mel, source);
    }

    /// <summary>Checks internal consistency, the limits (<see cref="MaxChannels"/>, <see cref="MaxParameters"/>) and, given a
    /// mel preset, its band count and hop; throws a <see cref="WaveGradException"/> naming the field.</summary>
    public WaveGradConfig Check(MelConfig? mel = null, string source = "config")
    {
        if (UpFactors is not { Length: 5 } || UpChannels is not { Length: 5 } || DownChannels is not { Length: 5 })
            throw new WaveGradException($"{source}: up_factors, up_channels and down_channels must each have 5 entries");
        if (NMels < 1 || NMels > 1024) throw new WaveGradException($"{source}: n_mels {NMels} must be between 1 and 1024");
        if (Interpolation is not ("nearest" or "linear")) throw new WaveGradException($"{source}: interpolation must be 'nearest' or 'linear'");
        if (UpFactors.Any(f => f < 1 || f > 16)) throw new WaveGradException($"{source}: up_factors must be between 1 and 16");
        foreach (var (field, c) in new[] { ("first_channels", new[] { FirstChannels }), ("up_channels", UpChannels), ("down_channels", DownChannels) })
            if (c.Any(x => x < 1 || x > MaxChannels)) throw new WaveGradException($"{source}: {field} must be between 1 and {MaxChannels}");
        if (!(NoiseEncodingScale > 0 && NoiseEncodingScale <= 1e6)) throw new WaveGradException($"{source}: noise_scale {NoiseEncodingScale} must be in " +
            "(0, 1e6]");
        long p = ParameterCount();
        if (p > MaxParameters) throw new WaveGradException($"{source}: the network would have {p:N0} parameters, more than the {MaxParameters:N0} supported");
        if (mel is not null && NMels != mel.NMels) throw new WaveGradException($"{source}: network has {NMels} mel bands but preset '{mel.Name}' has " +
            $"{mel.NMels}");
        if (mel is not null && Hop != mel.Hop) throw new WaveGradException($"{source}: network upsamples by {Hop} but preset '{mel.Name}' has hop {mel.Hop}");
        return this;
    }

    /// <summary>The network's parameter count, from the config alone (what <see cref="WaveGradNet"/> allocates).</summary>
    public long ParameterCount()
    {
        static long Conv(long i, long o, long k) => i * o * k + o;
        long[] dc = [.. DownChannels.Select(c => (long)c)], uc = [.. UpChannels.Select(c => (long)c)];
        long n = Conv(1, dc[0], 5) + Conv(NMels, FirstChannels, 3) + Conv(uc[4], 1, 3);
        for (int i = 0; i < 4; i++) n += Conv(dc[i], dc[i + 1], 1) + Conv(dc[i], dc[i + 1], 3) + 2 * Conv(dc[i + 1], dc[i + 1], 3);
        for (int i = 0; i < 5; i++) n += Conv(dc[i], dc[i], 3) + Conv(dc[i], 2 * uc[4 - i], 3);
        long inCh = FirstChannels;
        for (int i = 0; i < 5; i++) { n += Conv(inCh, uc[i], 1) + Conv(inCh, uc[i], 3) + 3 * Conv(uc[i], uc[i], 3); inCh = uc[i]; }
        return n;
    }
}

/// <summary>
/// The WaveGrad network (Chen et al. 2021): DBlocks encode the noisy waveform into FiLM modulations at five
/// resolutions; UBlocks upsample the mel and are modulated by them; the output is the predicted noise ε.
/// Parameter names and shapes match lmnt-com/wavegrad's state dict, so its checkpoints load.
/// Shapes: audio [B, T], mel [B, n_mels, T/hop], noise level √ᾱ [B]; output [B, T].
/// </summary>
public sealed class WaveGradNet : Module<Tensor, Tensor, Tensor, Tensor>
{
    /// <summary>The network's shape.</summary>
    public WaveGradConfig Config { get; }

    readonly ModuleList<Module> downsample;
    readonly ModuleList<FiLM> film;
    readonly ModuleList<UBlock> upsample;
    readonly Conv1d first_conv;
    readonly Conv1d last_conv;

    /// <summary>Builds the network with lmnt-com/wavegrad's initialisation (orthogonal convs, Xavier FiLM, zero biases),
    /// drawn from <paramref name="init"/> (default: a generator seeded with 0, so the same config gives the same weights).</summary>
    public WaveGradNet(WaveGradConfig config, Generator? init = null) : this(config, init ?? new Generator(0), initialize: true) { }

    /// <summary>Without <paramref name="initialize"/> the convolutions keep libtorch's default initialisation: for a network whose
    /// weights are loaded next (the orthogonal initialisation's QR decompositions cost more than reading the weights).</summary>
    WaveGradNet(WaveGradConfig config, Generator? g, bool initialize) : base("WaveGrad")
    {
        if (!initialize) g = null;
        Config = config.Check();
        var mode = config.Interpolation == "linear" ? InterpolationMode.Linear : InterpolationMode.Nearest;
        var up = config.UpFactors;
        // DBlocks undo the upsampling of UBlocks 4, 3, 2, 1 (the first UBlock has no FiLM partner below it).
        int[] downFactors = [up[4], up[3], up[2], up[1]];
        var dc = config.DownChannels;
        downsample = new ModuleList<Module>(Conv(g, 1, dc[0], 5, padding: 2));
        for (int i = 0; i < 4; i++) downsample.Add(new DBlock(g, dc[i], dc[i + 1], downFactors[i], mode));
        // FiLM i modulates resolution i (0 = audio rate) into the channels of the UBlock that produces it.
        var uc = config.UpChannels;
        film = new ModuleList<FiLM>();
        for (int i = 0; i < 5; i++) film.Add(new FiLM(g, dc[i], uc[4 - i], config.NoiseEncodingScale));
        var dil = config.UBlockDilations;
        upsample = new ModuleList<UBlock>();
        int inCh = config.FirstChannels;
        for (int i = 0; i < 5; i++) { upsample.Add(new UBlock(g, inCh, uc[i], up[i], dil[i], mode)); inCh = uc[i]; }
        first_conv = Conv(g, config.NMels, config.FirstChannels, 3, padding: 1);
        last_conv = Conv(g, uc[4], 1, 3, padding: 1);
        RegisterComponents();
    }

    /// <summary>A WaveGrad voice's network with its weights (or another weights file of the bundle), on the CPU, in eval mode.</summary>
    public static WaveGradNet Load(Voice voice, string weightsFile = "model.safetensors") => Load(voice, voice.Bundle.LoadWeights(weightsFile));

    /// <summary>A WaveGrad voice's network with the given weights, on the CPU, in eval mode.</summary>
    public static WaveGradNet Load(Voice voice, IReadOnlyDictionary<string, Tensor> weights)
    {
        var net = new WaveGradNet(WaveGradConfig.Of(voice), null, initialize: false);
        TensorFiles.LoadInto(net, weights, voice.WeightsPath);
        net.eval();
        return net;
    }

    /// <summary>
    /// Zeroes the output convolution, so that a fresh network predicts ε̂ = 0 (L1 loss 0.8) instead of the ±7 that
    /// lmnt's orthogonal initialisation gives on ln-mel inputs (L1 loss 6–8); training then spends no early steps
    /// shrinking the output. Gradients still reach every layer from the second step on.
    /// </summary>
    internal void ZeroOutputLayer()
    {
        using var _ = no_grad();
        last_conv.weight!.zero_();
        last_conv.bias!.zero_();
    }

    internal static Conv1d Conv(Generator? g, long inCh, long outCh, long k, long padding = 0, long dilation = 1, bool orthogonal = true)
    {
        var c = nn.Conv1d(inCh, outCh, k, padding: padding, dilation: dilation);
        if (g is null) return c;
        using (no_grad())
        {
            c.weight!.copy_(orthogonal ? Orthogonal(c.weight!.shape, g) : XavierUniform(c.weight!.shape, g));
            init.zeros_(c.bias!);
        }
        return c;
    }

    /// <summary>A (semi-)orthogonal matrix of [out, in·k] reshaped to the weight's shape (as nn.init.orthogonal_).</summary>
    static Tensor Orthogonal(long[] shape, Generator g)
    {
        using var scope = NewDisposeScope();
        long rows = shape[0], cols = shape.Skip(1).Aggregate(1L, (a, b) => a * b);
        var a = randn([Math.Max(rows, cols), Math.Min(rows, cols)], generator: g);
        var (q, r) = linalg.qr(a);
        q = q * r.diagonal().sign().unsqueeze(0);
        if (rows < cols) q = q.t();
        return q.reshape(shape).contiguous().MoveToOuterDisposeScope();
    }

    /// <summary>Uniform in ±√(6/(fan_in + fan_out)) (as nn.init.xavier_uniform_).</summary>
    static Tensor XavierUniform(long[] shape, Generator g)
    {
        long k = shape.Skip(2).Aggregate(1L, (a, b) => a * b);
        double bound = Math.Sqrt(6.0 / (shape[0] * k + shape[1] * k));
        return (rand(shape, generator: g) * 2 - 1) * bound;
    }

    /// <summary>Predicted noise ε for audio [B, T], mel [B, n_mels, T/hop] and noise level √ᾱ [B].</summary>
    public override Tensor forward(Tensor audio, Tensor mel, Tensor noiseLevel)
    {
        using var scope = NewDisposeScope();
        // Each path computes in its own weights' type (see UseBf16UpsamplingPath); the output comes back in the audio's.
        var x = audio.unsqueeze(1).to_type(film[0].DType);
        var mods = new List<(Tensor Shift, Tensor Scale)>(5);
        for (int i = 0; i < 5; i++)
        {
            x = downsample[i] is DBlock d ? d.call(x) : ((Conv1d)downsample[i]).call(x);
            mods.Add(film[i].call(x, noiseLevel));
        }
        var up = first_conv.weight!.dtype;
        x = first_conv.call(mel.to_type(up));
        for (int i = 0; i < 5; i++) x = upsample[i].call(x, mods[4 - i].Shift.to_type(up), mods[4 - i].Scale.to_type(up));
        x = x.to_type(last_conv.weight!.dtype);
        var y = is_grad_enabled() ? last_conv.call(x) : OneChannelConv(last_conv, x);
        return y.squeeze(1).to_type(audio.dtype).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The output conv (C channels → 1, three taps, padding 1) as three matrix–vector products over shifted views, for
    /// inference: libtorch's convolution with a single output channel runs at about 1 GFLOP/s on the CPU, the products at
    /// memory speed.
    /// </summary>
    static Tensor OneChannelConv(Conv1d conv, Tensor x)
    {
        var w = conv.weight!;
        var y = matmul(w[.., .., 1], x).add_(conv.bias!.reshape(1, 1, 1));
        y[.., .., 1..].add_(matmul(w[.., .., 0], x[.., .., ..^1]));
        y[.., .., ..^1].add_(matmul(w[.., .., 2], x[.., .., 1..]));
        return y;
    }

    /// <summary>
    /// Inference in bfloat16 where it pays: the mel's upsampling path (first conv and UBlocks: wide layers) in bf16, the
    /// waveform's downsampling path and FiLM (few channels at the audio rate, where oneDNN's bf16 kernels are slower than its
    /// float32 ones) and the output conv in float32.
    /// </summary>
    public void UseBf16UpsamplingPath()
    {
        first_conv.to(ScalarType.BFloat16);
        upsample.to(ScalarType.BFloat16);
    }

    /// <summary>Number of trainable parameters.</summary>
    public long ParameterCount => parameters().Sum(p => p.numel());

    /// <summary>Multiply-adds of a 1-D convolution that produced <paramref name="output"/> [B, C_out, T].</summary>
    static double ConvMacs(Conv1d conv, Tensor output) =>
        (double)output.shape[0] * output.shape[1] * output.shape[2] * conv.weight!.shape[1] * conv.weight!.shape[2];

    /// <summary>Multiply-adds of one evaluation per output sample (its convolutions, counted by running 64 frames through it).</summary>
    public double MacsPerSample()
    {
        double macs = 0;
        var hooks = new List<Action>();
        foreach (var (_, m) in named_modules())
            if (m is Conv1d c)
            {
                var h = c.register_forward_hook((mod, _, o) =>
                {
                    macs += ConvMacs((Conv1d)mod, o);
                    return o;
                });
                hooks.Add(h.remove);
            }
        const int frames = 64;
        using (no_grad())
        using (var scope = NewDisposeScope())
        {
            var p = parameters().First();
            forward(zeros([1, frames * Config.Hop], p.dtype, p.device), zeros([1, Config.NMels, frames], p.dtype, p.device), full([1], 0.5f, device: p.device));
        }
        foreach (var remove in hooks) remove();
        return macs / (frames * Config.Hop);
    }
}

/// <summary>Downsampling block: interpolate down, then three dilated convs (1, 2, 4), plus a 1×1 residual.</summary>
sealed class DBlock : Module<Tensor, Tensor>
{
    readonly Conv1d residual_dense;
    readonly ModuleList<Conv1d> conv;
    readonly int factor;
    readonly InterpolationMode mode;

    public DBlock(Generator? g, int inCh, int hidden, int factor, InterpolationMode mode) : base("DBlock")
    {
        this.factor = factor; this.mode = mode;
        residual_dense = WaveGradNet.Conv(g, inCh, hidden, 1);
        conv = new ModuleList<Conv1d>(
            WaveGradNet.Conv(g, inCh, hidden, 3, padding: 1, dilation: 1),
            WaveGradNet.Conv(g, hidden, hidden, 3, padding: 2, dilation: 2),
            WaveGradNet.Conv(g, hidden, hidden, 3, padding: 4, dilation: 4));
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        long size = x.shape[^1] / factor;
        var down = UBlock.Resample(x, size, mode);
        // A 1×1 conv commutes with nearest-neighbour subsampling: the residual runs on the kept samples only.
        var residual = mode == InterpolationMode.Nearest ? residual_dense.call(down) : UBlock.Resample(residual_dense.call(x), size, mode);
        x = down;
        foreach (var c in conv) x = c.call(F.leaky_relu(x, 0.2));
        return x + residual;
    }
}

/// <summary>FiLM: turns DBlock features and the noise level into a (shift, scale) pair for a UBlock.</summary>
sealed class FiLM : Module<Tensor, Tensor, (Tensor, Tensor)>
{
    readonly Conv1d input_conv;
    readonly Conv1d output_conv;
    readonly int channels;
    readonly double encodingScale;

    /// <summary>The element type the block computes in.</summary>
    public ScalarType DType => input_conv.weight!.dtype;

    public FiLM(Generator? g, int inCh, int outCh, double encodingScale) : base("FiLM")
    {
        channels = inCh; this.encodingScale = encodingScale;
        input_conv = WaveGradNet.Conv(g, inCh, inCh, 3, padding: 1, orthogonal: false);
        output_conv = WaveGradNet.Conv(g, inCh, outCh * 2, 3, padding: 1, orthogonal: false);
        RegisterComponents();
    }

    /// <summary>Transformer-style sinusoidal encoding of the (scaled) noise level: [B, channels].</summary>
    internal static Tensor Encoding(Tensor level, int dim, double scale)
    {
        int count = dim / 2;
        var step = arange(count, dtype: level.dtype, device: level.device) / count;
        var e = (level * scale).unsqueeze(1) * (-Math.Log(1e4) * step.unsqueeze(0)).exp();
        return cat([e.sin(), e.cos()], -1);
    }

    public override (Tensor, Tensor) forward(Tensor x, Tensor level)
    {
        x = F.leaky_relu(input_conv.call(x), 0.2);
        // The encoding is computed in fp32 (bf16 cannot tell √ᾱ = 0.999 from 1, and ×5000 magnifies the error).
        x = x + Encoding(level.to_type(ScalarType.Float32), channels, encodingScale).to_type(x.dtype).unsqueeze(-1);
        var parts = output_conv.call(x).chunk(2, 1);
        return (parts[0], parts[1]);
    }
}

/// <summary>Upsampling block: interpolate up, dilated convs modulated three times by FiLM's (shift, scale).</summary>
sealed class UBlock : Module<Tensor, Tensor, Tensor, Tensor>
{
    readonly Conv1d block1;
    readonly ModuleList<Conv1d> block2;
    readonly ModuleList<Conv1d> block3;
    readonly int factor;
    readonly InterpolationMode mode;

    public UBlock(Generator? g, int inCh, int hidden, int factor, int[] d, InterpolationMode mode) : base("UBlock")
    {
        this.factor = factor; this.mode = mode;
        block1 = WaveGradNet.Conv(g, inCh, hidden, 1);
        block2 = new ModuleList<Conv1d>(
            WaveGradNet.Conv(g, inCh, hidden, 3, padding: d[0], dilation: d[0]),
            WaveGradNet.Conv(g, hidden, hidden, 3, padding: d[1], dilation: d[1]));
        block3 = new ModuleList<Conv1d>(
            WaveGradNet.Conv(g, hidden, hidden, 3, padding: d[2], dilation: d[2]),
            WaveGradNet.Conv(g, hidden, hidden, 3, padding: d[3], dilation: d[3]));
        RegisterComponents();
    }

    public override Tensor forward(Tensor x, Tensor shift, Tensor scale)
    {
        long size = x.shape[^1] * factor;
        // A 1×1 conv commutes with nearest-neighbour upsampling: block1 runs at the input rate, factor times fewer samples.
        var b1 = mode == InterpolationMode.Nearest ? Resample(block1.call(x), size, mode) : block1.call(Resample(x, size, mode));
        var b2 = block2[0].call(Resample(F.leaky_relu(x, 0.2), size, mode));
        // Without autograd the sums and activations reuse their fresh operands' memory: at the audio rate every new
        // tensor is megabytes, and allocating (and faulting in) one per operation costs as much as the arithmetic.
        bool inPlace = !is_grad_enabled();
        b2 = block2[1].call(Modulated(b2, shift, scale, inPlace));
        x = inPlace ? b1.add_(b2) : b1 + b2;
        var b3 = block3[0].call(Modulated(x, shift, scale, inPlace));
        b3 = block3[1].call(Modulated(b3, shift, scale, inPlace));
        return inPlace ? x.add_(b3) : x + b3;
    }

    /// <summary>leaky_relu(shift + scale·x), FiLM's modulation, in one fused multiply-add (the activation in place when allowed).</summary>
    internal static Tensor Modulated(Tensor x, Tensor shift, Tensor scale, bool inPlace)
    {
        var m = addcmul(shift, scale, x, One);
        return inPlace ? F.leaky_relu(m, 0.2, inplace: true) : F.leaky_relu(m, 0.2);
    }

    static readonly Scalar One = 1.0;   // kept alive: a temporary Scalar could be finalized during the native call

    /// <summary>Up- or downsamples along time to <paramref name="size"/> samples.</summary>
    internal static Tensor Resample(Tensor x, long size, InterpolationMode mode) =>
        F.interpolate(x, size: [size], mode: mode, align_corners: mode == InterpolationMode.Linear ? false : null);
}
