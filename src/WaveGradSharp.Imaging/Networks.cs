using System.Text.Json.Serialization;
using TorchSharp;
using TorchSharp.Modules;
using WaveGradSharp.Diffusion;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;
using F = TorchSharp.torch.nn.functional;
using WaveGradSharp.Core;

namespace WaveGradSharp.Imaging;

/// <summary>What an image network is trained to output.</summary>
public enum ImageObjective
{
    /// <summary>ε-prediction with L_simple (DDPM).</summary>
    Epsilon,
    /// <summary>ε-prediction plus a learned variance head, trained with L_simple + λ·L_vlb (improved DDPM).</summary>
    Hybrid,
    /// <summary>Denoising score matching over geometric σ levels (NCSN): the network's output divided by σ is the score.</summary>
    Score,
}

/// <summary>
/// Shape of a <see cref="UNet"/>. Levels run from full resolution down: level i has
/// <see cref="BaseChannels"/>·<see cref="Multipliers"/>[i] channels and halves the resolution before the next.
/// </summary>
public sealed record UNetConfig
{
    /// <summary>Image side in pixels (square; must halve evenly once per extra level).</summary>
    [JsonPropertyName("image_size")] public int ImageSize { get; init; } = 28;
    /// <summary>Image channels: 1 grayscale, 3 RGB.</summary>
    [JsonPropertyName("channels")] public int Channels { get; init; } = 1;
    /// <summary>Channels at full resolution.</summary>
    [JsonPropertyName("base_channels")] public int BaseChannels { get; init; } = 32;
    /// <summary>Channel multiplier per level.</summary>
    [JsonPropertyName("multipliers")] public int[] Multipliers { get; init; } = [1, 2, 2];
    /// <summary>Residual blocks per level on the way down (the way up has one more, as in DDPM).</summary>
    [JsonPropertyName("res_blocks")] public int ResBlocks { get; init; } = 1;
    /// <summary>Resolutions (side in pixels) with self-attention after each residual block.</summary>
    [JsonPropertyName("attention_resolutions")] public int[] AttentionResolutions { get; init; } = [7];
    /// <summary>Classes for conditioning (0: unconditional). Class index <see cref="Classes"/> is the null class.</summary>
    [JsonPropertyName("classes")] public int Classes { get; init; } = 10;
    /// <summary>What the network predicts.</summary>
    [JsonPropertyName("objective")] public ImageObjective Objective { get; init; } = ImageObjective.Epsilon;
    /// <summary>Dropout inside residual blocks.</summary>
    [JsonPropertyName("dropout")] public double Dropout { get; init; } = 0.1;

    /// <summary>A variance head doubles the output channels (improved DDPM).</summary>
    [JsonIgnore] public bool LearnSigma => Objective == ImageObjective.Hybrid;

    /// <summary>
    /// Named sizes: <c>tiny</c> (tests; 16·[1, 2] channels, no attention), <c>small</c> (MNIST on 2 CPU cores:
    /// 16·[1, 2, 4] channels, attention at 7×7; 0.69 M parameters, 73 M multiply-adds per 28×28 image), <c>base</c>
    /// (64·[1, 2, 2], two blocks per level, attention at 14×14 and 7×7).
    /// </summary>
    public static UNetConfig Named(string size, int imageSize = 28, int channels = 1, int classes = 10, ImageObjective objective = ImageObjective.Epsilon)
    {
        var c = new UNetConfig { ImageSize = imageSize, Channels = channels, Classes = classes, Objective = objective };
        return size switch
        {
            "tiny" => c with { BaseChannels = 16, Multipliers = [1, 2], AttentionResolutions = [], Dropout = 0 },
            "small" => c with { BaseChannels = 16, Multipliers = [1, 2, 4], AttentionResolutions = [imageSize / 4], Dropout = 0 },
            "base" => c with { BaseChannels = 64, Multipliers = [1, 2, 2], ResBlocks = 2, AttentionResolutions = [imageSize / 2, imageSize / 4] },
            _ => throw new WaveGradException($"unknown image network size '{size}'; known: tiny, small, base"),
        };
    }

    /// <summary>The most parameters an image network may have, by the estimate of <see cref="Checked"/>.</summary>
    public const long MaxParameters = 200_000_000;

    /// <summary>Checks the configuration against what the network supports, before anything is allocated; throws a
    /// one-line error naming <paramref name="source"/>.</summary>
    public UNetConfig Checked(string source = "network")
    {
        if (ImageSize is < 4 or > 1024 || Channels is < 1 or > 4 || BaseChannels is < 8 or > 1024 || Multipliers is not { Length: >= 1 and <= 6 }
            || Multipliers.Any(m => m is < 1 or > 16) || ResBlocks is < 1 or > 8 || Classes is < 0 or > 100_000 || !(Dropout >= 0 && Dropout < 1)
            || AttentionResolutions is null)
            throw new WaveGradException($"{source}: invalid image network configuration (image_size 4–1024, channels 1–4, base_channels 8–1024, " +
                "1–6 multipliers of 1–16, res_blocks 1–8, classes 0–100000, dropout in [0, 1))");
        if (ImageSize % (1 << (Multipliers.Length - 1)) != 0)
            throw new WaveGradException($"{source}: image size {ImageSize} cannot be halved {Multipliers.Length - 1} times evenly; " +
                $"choose a size divisible by {1 << (Multipliers.Length - 1)}");
        if (BaseChannels * Multipliers.Min() % 8 != 0) throw new WaveGradException($"{source}: channels must be multiples of 8 (GroupNorm groups)");
        // Each level holds about (2·res_blocks + 1) residual blocks of two 3×3 convs at its width, plus attention.
        long estimate = Multipliers.Sum(m => (2L * ResBlocks + 1) * 18L * BaseChannels * m * BaseChannels * m + 4L * BaseChannels * m * BaseChannels * m);
        if (estimate > MaxParameters) throw new WaveGradException($"{source}: the network would have about {estimate:N0} parameters, more than " +
            $"{MaxParameters:N0}");
        return this;
    }
}

static class Init
{
    /// <summary>
    /// Sets every GroupNorm to the identity (weight 1, bias 0). TorchSharp 0.107's GroupNorm leaves its affine
    /// parameters uninitialised (seen as NaN on this machine), so every module with norms calls this.
    /// </summary>
    public static void GroupNorms(Module module)
    {
        using var _ = no_grad();
        foreach (var (_, m) in module.named_modules())
            if (m is GroupNorm g) { g.weight!.fill_(1); g.bias!.zero_(); }
    }
}

/// <summary>Sinusoidal embedding of a continuous noise level, the transformer position encoding applied to 100·ln σ.</summary>
static class NoiseEmbedding
{
    public static Tensor Of(Tensor lnSigma, int dim)
    {
        int half = dim / 2;
        var freqs = exp(arange(half, dtype: lnSigma.dtype, device: lnSigma.device) * (-Math.Log(10000.0) / Math.Max(half - 1, 1)));
        var args = (lnSigma * 100).unsqueeze(1) * freqs.unsqueeze(0);
        return cat([sin(args), cos(args)], 1);
    }
}

/// <summary>GroupNorm → SiLU → conv, the noise embedding added, GroupNorm → SiLU → dropout → conv, plus a skip.</summary>
sealed class ResBlock : Module<Tensor, Tensor, Tensor>
{
    readonly GroupNorm norm1, norm2;
    readonly Conv2d conv1, conv2;
    readonly Linear emb;
    readonly Dropout drop;
    readonly Module<Tensor, Tensor>? skip;

    public ResBlock(int cin, int cout, int embDim, double dropout) : base("ResBlock")
    {
        norm1 = GroupNorm(Math.Min(8, cin / 4), cin);
        conv1 = Conv2d(cin, cout, 3, padding: 1);
        emb = Linear(embDim, cout);
        norm2 = GroupNorm(8, cout);
        drop = Dropout(dropout);
        conv2 = Conv2d(cout, cout, 3, padding: 1);
        if (cin != cout) skip = Conv2d(cin, cout, 1);
        using (no_grad()) { conv2.weight!.zero_(); conv2.bias!.zero_(); }   // each block starts as the identity
        RegisterComponents();
    }

    public override Tensor forward(Tensor x, Tensor e)
    {
        using var scope = NewDisposeScope();
        var h = conv1.call(F.silu(norm1.call(x)));
        h = h + emb.call(F.silu(e)).unsqueeze(-1).unsqueeze(-1);
        h = conv2.call(drop.call(F.silu(norm2.call(h))));
        return ((skip?.call(x) ?? x) + h).MoveToOuterDisposeScope();
    }
}

/// <summary>Single-head self-attention over the pixels of a feature map, with a residual connection.</summary>
sealed class Attention : Module<Tensor, Tensor>
{
    readonly GroupNorm norm;
    readonly Conv2d qkv, proj;

    public Attention(int ch) : base("Attention")
    {
        norm = GroupNorm(8, ch);
        qkv = Conv2d(ch, 3 * ch, 1);
        proj = Conv2d(ch, ch, 1);
        using (no_grad()) { proj.weight!.zero_(); proj.bias!.zero_(); }
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        long b = x.shape[0], c = x.shape[1], h = x.shape[2], w = x.shape[3];
        var qkvT = qkv.call(norm.call(x)).reshape(b, 3, c, h * w);
        var q = qkvT[.., 0].transpose(1, 2);          // [B, HW, C]
        var k = qkvT[.., 1];                           // [B, C, HW]
        var v = qkvT[.., 2].transpose(1, 2);          // [B, HW, C]
        var a = softmax(bmm(q, k) / Math.Sqrt(c), -1);
        var o = bmm(a, v).transpose(1, 2).reshape(b, c, h, w);
        return (x + proj.call(o)).MoveToOuterDisposeScope();
    }
}

/// <summary>
/// A DDPM-style UNet for small images: sinusoidal embedding of the noise level ln σ (so one network serves
/// timestep and σ samplers alike), an optional class embedding with a null class for classifier-free guidance,
/// residual blocks with GroupNorm and SiLU, self-attention at the chosen resolutions, skip connections by
/// concatenation, and an optional learned-variance head. Input: x [B, C, H, W], ln σ [B], class [B] (int64; the
/// null class = <see cref="UNetConfig.Classes"/>). Output: [B, C or 2C, H, W].
/// </summary>
public sealed class UNet : Module<Tensor, Tensor, Tensor, Tensor>
{
    /// <summary>The configuration it was built from.</summary>
    public UNetConfig Config { get; }
    readonly int embDim;
    readonly Sequential embed;
    readonly Embedding? classEmbed;
    readonly Conv2d convIn, convOut;
    readonly GroupNorm normOut;
    readonly ModuleList<Module> down = new(), up = new();
    readonly ResBlock mid1, mid2;
    readonly Attention midAttn;
    // Describes the flat module lists: (kind, index) in the order forward walks them.
    readonly List<char> downKinds = [], upKinds = [];

    /// <summary>Builds the network with freshly initialised weights (seeded by <paramref name="rng"/> when given).</summary>
    public UNet(UNetConfig config, Generator? rng = null) : base("UNet")
    {
        Config = config.Checked();
        int ch0 = config.BaseChannels;
        embDim = 4 * ch0;
        embed = Sequential(Linear(ch0, embDim), SiLU(), Linear(embDim, embDim));
        if (config.Classes > 0) classEmbed = Embedding(config.Classes + 1, embDim);
        convIn = Conv2d(config.Channels, ch0, 3, padding: 1);

        var skips = new Stack<int>();
        skips.Push(ch0);
        int ch = ch0, res = config.ImageSize;
        for (int level = 0; level < config.Multipliers.Length; level++)
        {
            int cout = ch0 * config.Multipliers[level];
            for (int r = 0; r < config.ResBlocks; r++)
            {
                down.Add(new ResBlock(ch, cout, embDim, config.Dropout)); downKinds.Add('r');
                ch = cout;
                if (config.AttentionResolutions.Contains(res)) { down.Add(new Attention(ch)); downKinds.Add('a'); }
                skips.Push(ch);
            }
            if (level < config.Multipliers.Length - 1)
            {
                down.Add(Conv2d(ch, ch, 3, stride: 2, padding: 1)); downKinds.Add('d');
                skips.Push(ch);
                res /= 2;
            }
        }
        mid1 = new ResBlock(ch, ch, embDim, config.Dropout);
        midAttn = new Attention(ch);
        mid2 = new ResBlock(ch, ch, embDim, config.Dropout);
        for (int level = config.Multipliers.Length - 1; level >= 0; level--)
        {
            int cout = ch0 * config.Multipliers[level];
            for (int r = 0; r <= config.ResBlocks; r++)
            {
                up.Add(new ResBlock(ch + skips.Pop(), cout, embDim, config.Dropout)); upKinds.Add('r');
                ch = cout;
                if (config.AttentionResolutions.Contains(res)) { up.Add(new Attention(ch)); upKinds.Add('a'); }
            }
            if (level > 0)
            {
                up.Add(Conv2d(ch, ch, 3, padding: 1)); upKinds.Add('u');
                res *= 2;
            }
        }
        normOut = GroupNorm(8, ch);
        convOut = Conv2d(ch, config.LearnSigma ? 2 * config.Channels : config.Channels, 3, padding: 1);
        using (no_grad()) { convOut.weight!.zero_(); convOut.bias!.zero_(); }
        RegisterComponents();
        Init.GroupNorms(this);
        if (rng is not null) Reinitialise(rng);
    }

    /// <summary>Re-draws every non-zero-initialised weight from the generator (PyTorch's default uniform fan-in rule), so a seed fixes the network.</summary>
    void Reinitialise(Generator rng)
    {
        using var _ = no_grad();
        foreach (var (name, p) in named_parameters())
        {
            if (p.abs().max().item<float>() == 0 || name.Contains("norm")) continue;   // zero-initialised outputs and GroupNorm affine stay
            if (name.StartsWith("classEmbed")) { p.copy_(randn(p.shape, generator: rng)); continue; }
            long fanIn = p.dim() > 1 ? p.shape.Skip(1).Aggregate(1L, (a, b) => a * b) : 0;
            if (p.dim() == 1)
            {
                // A bias: same bound as its weight, from the sibling weight's fan-in.
                var w = named_parameters().First(q => q.name == name[..^"bias".Length] + "weight").parameter;
                fanIn = w.shape.Skip(1).Aggregate(1L, (a, b) => a * b);
            }
            double bound = 1.0 / Math.Sqrt(Math.Max(fanIn, 1));
            p.copy_((rand(p.shape, generator: rng) * 2 - 1) * bound);
        }
    }

    /// <summary>Number of parameters.</summary>
    public long ParameterCount => parameters().Sum(p => p.numel());

    /// <inheritdoc/>
    public override Tensor forward(Tensor x, Tensor lnSigma, Tensor classes)
    {
        using var scope = NewDisposeScope();
        var e = embed.call(NoiseEmbedding.Of(lnSigma, Config.BaseChannels));
        if (classEmbed is not null) e = e + classEmbed.call(classes.clamp(0, Config.Classes));
        var h = convIn.call(x);
        var skips = new Stack<Tensor>();
        skips.Push(h);
        for (int i = 0; i < down.Count; i++)
        {
            switch (downKinds[i])
            {
                case 'r': h = ((ResBlock)down[i]).call(h, e); skips.Push(h); break;
                case 'a': h = ((Attention)down[i]).call(h); skips.Pop(); skips.Push(h); break;
                default: h = ((Conv2d)down[i]).call(h); skips.Push(h); break;
            }
        }
        h = mid2.call(midAttn.call(mid1.call(h, e)), e);
        for (int i = 0; i < up.Count; i++)
        {
            switch (upKinds[i])
            {
                case 'r': h = ((ResBlock)up[i]).call(cat([h, skips.Pop()], 1), e); break;
                case 'a': h = ((Attention)up[i]).call(h); break;
                default: h = ((Conv2d)up[i]).call(F.interpolate(h, scale_factor: [2.0, 2.0], mode: InterpolationMode.Nearest)); break;
            }
        }
        return convOut.call(F.silu(normOut.call(h))).MoveToOuterDisposeScope();
    }

    /// <summary>Multiply–accumulate operations of one forward pass for one image (convolutions, linear layers and attention products).</summary>
    public long MacsPerImage()
    {
        long macs = 0;
        var hooks = new List<Action>();
        void Count(Module m, Tensor output)
        {
            switch (m)
            {
                case Conv2d c:
                    macs += output.shape[1] * output.shape[2] * output.shape[3] * c.weight!.shape[1] * c.weight.shape[2] * c.weight.shape[3];
                    break;
                case Linear l:
                    macs += l.weight!.shape[0] * l.weight.shape[1];
                    break;
                case Attention:
                    long ch = output.shape[1], hw = output.shape[2] * output.shape[3];
                    macs += 2 * hw * hw * ch;
                    break;
            }
        }
        foreach (var (_, m) in named_modules())
            if (m is Conv2d c) { var hr = c.register_forward_hook((mod, i, o) => { Count(mod, o); return o; }); hooks.Add(hr.remove); }
            else if (m is Linear l) { var hr = l.register_forward_hook((mod, i, o) => { Count(mod, o); return o; }); hooks.Add(hr.remove); }
            else if (m is Attention a) { var hr = a.register_forward_hook((mod, i, o) => { Count(mod, o); return o; }); hooks.Add(hr.remove); }
        using (no_grad())
        using (var scope = NewDisposeScope())
        {
            var p = parameters().First();
            forward(zeros([1, Config.Channels, Config.ImageSize, Config.ImageSize], device: p.device), zeros([1], device: p.device),
                zeros([1], ScalarType.Int64, device: p.device));
        }
        foreach (var remove in hooks) remove();
        return macs;
    }
}

/// <summary>
/// A small CNN digit classifier (three stages of two 3×3 convs with 16/32/64 channels, global average pool, a
/// 128-feature layer, then the classes).
/// Noise-aware when <see cref="ClassifierConfig.NoiseAware"/>: every stage is shifted by an embedding of ln σ, so it
/// classifies x_t across the diffusion's noise levels (for classifier guidance). Its 128 penultimate features
/// serve as the feature space of the Fréchet distance.
/// </summary>
public sealed class DigitClassifier : Module<Tensor, Tensor, Tensor>
{
    /// <summary>Its configuration.</summary>
    public ClassifierConfig Config { get; }
    readonly ModuleList<Conv2d> convs = new();
    readonly ModuleList<GroupNorm> norms = new();
    readonly ModuleList<Linear> shifts = new();
    readonly Sequential? embed;
    readonly Linear feature, head;
    readonly Dropout drop = Dropout(0.3);

    /// <summary>Builds it (seeded by <paramref name="seed"/>).</summary>
    public DigitClassifier(ClassifierConfig config, long seed = 1) : base("DigitClassifier")
    {
        Config = config.Checked();
        torch.manual_seed(seed);
        int[] ch = [16, 16, 32, 32, 64, 64];
        int cin = config.Channels;
        for (int i = 0; i < ch.Length; i++)
        {
            convs.Add(Conv2d(cin, ch[i], 3, padding: 1));
            norms.Add(GroupNorm(8, ch[i]));
            if (config.NoiseAware) shifts.Add(Linear(128, ch[i]));
            cin = ch[i];
        }
        if (config.NoiseAware) embed = Sequential(Linear(64, 128), SiLU(), Linear(128, 128));
        feature = Linear(64, 128);
        head = Linear(128, config.Classes);
        RegisterComponents();
        Init.GroupNorms(this);
    }

    /// <summary>Penultimate features [B, 128] of images x [B, C, H, W] at noise levels ln σ [B] (ignored unless noise-aware).</summary>
    public Tensor Features(Tensor x, Tensor lnSigma)
    {
        using var scope = NewDisposeScope();
        Tensor? e = embed?.call(NoiseEmbedding.Of(lnSigma, 64));
        var h = x;
        for (int i = 0; i < convs.Count; i++)
        {
            h = norms[i].call(convs[i].call(h));
            if (e is not null) h = h + shifts[i].call(e).unsqueeze(-1).unsqueeze(-1);
            h = F.silu(h);
            if (i % 2 == 1 && i < convs.Count - 1) h = F.avg_pool2d(h, 2, ceil_mode: true);
        }
        h = h.mean([2, 3]);
        return F.silu(feature.call(h)).MoveToOuterDisposeScope();
    }

    /// <summary>Class logits [B, classes].</summary>
    public override Tensor forward(Tensor x, Tensor lnSigma) => head.call(drop.call(Features(x, lnSigma)));
}

/// <summary>Shape of a <see cref="DigitClassifier"/>.</summary>
public sealed record ClassifierConfig
{
    /// <summary>Image channels.</summary>
    [JsonPropertyName("channels")] public int Channels { get; init; } = 1;
    /// <summary>Number of classes.</summary>
    [JsonPropertyName("classes")] public int Classes { get; init; } = 10;
    /// <summary>Conditioned on the noise level (for classifier guidance) or not (a judge of clean images).</summary>
    [JsonPropertyName("noise_aware")] public bool NoiseAware { get; init; }
    /// <summary>Image side the classifier was trained on.</summary>
    [JsonPropertyName("image_size")] public int ImageSize { get; init; } = 28;

    /// <summary>Checks the configuration against what the classifier supports; throws a one-line error naming <paramref name="source"/>.</summary>
    public ClassifierConfig Checked(string source = "network") =>
        Channels is < 1 or > 4 || Classes is < 1 or > 100_000 || ImageSize is < 8 or > 1024
            ? throw new WaveGradException($"{source}: invalid classifier configuration (channels 1–4, classes 1–100000, image_size 8–1024)")
            : this;
}
