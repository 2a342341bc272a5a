using System.Text.Json.Nodes;
using TorchSharp;
using WaveGradSharp.Audio;
using WaveGradSharp.Core;
using WaveGradSharp.Diffusion;
using static TorchSharp.torch;

namespace WaveGradSharp.Vocoder;

/// <summary>One render of a batch of mel pieces, as <see cref="Vocoder"/> asks for it.</summary>
/// <param name="Options">The caller's settings (a model reads what applies to it: a diffusion model its schedule and seed).</param>
/// <param name="SampleOffset">Absolute sample position of the pieces' first sample, so that noise can be tied to positions
/// and a streamed piece sees the same noise as a one-shot render.</param>
/// <param name="Estimate">The mels' Griffin-Lim waveforms [B, F·hop] when the model asked for them (<see cref="IVocoderModel.UsesEstimate"/>):
/// a start or a consistency target; else null.</param>
/// <param name="Cancellation">Checked between network evaluations.</param>
/// <param name="Continuation">One per streamed render, passed with each of its pieces in turn: what a piece's conditioning continues
/// from the piece before it (<see cref="PhaseContinuation"/>); null for a render in one piece.</param>
public sealed record RenderRequest(SynthesisOptions Options, long SampleOffset, Tensor? Estimate, CancellationToken Cancellation,
    PhaseContinuation? Continuation = null);

/// <summary>
/// The vocoder seam, mel in and waveform out: what <see cref="Vocoder"/> runs under its checks, batching, streaming,
/// Griffin-Lim start and post-filter. <see cref="DiffusionVocoderModel"/> (a denoising network, a noise prior and a
/// sampler) is one implementation; another vocoder (a GAN, an ONNX Runtime network) implements this and registers
/// an <see cref="IVocoderArchitecture"/>.
/// </summary>
public interface IVocoderModel : IDisposable
{
    /// <summary>Where the model runs; mels are moved there.</summary>
    Device Device { get; }

    /// <summary>Whether a <see cref="RenderRequest.Estimate"/> waveform is used with these options (so the caller makes one only then).</summary>
    bool UsesEstimate(SynthesisOptions options);

    /// <summary>Model evaluations of one render with these options (for progress).</summary>
    int Evaluations(SynthesisOptions options);

    /// <summary>Renders mels [B, n_mels, F] to B waveforms of F·hop float32 samples.</summary>
    float[][] Render(Tensor mels, RenderRequest request);
}

/// <summary>A kind of vocoder a voice's card can name (its <c>architecture</c>).</summary>
public interface IVocoderArchitecture
{
    /// <summary>The name in the card.</summary>
    string Name { get; }

    /// <summary>Checks the card's network config against the voice's mel preset and against the limits of what the
    /// architecture supports, before any weights are read or memory allocated; throws naming the file.</summary>
    void Validate(Voice voice);

    /// <summary>The model with the voice's weights on a device, computing in <paramref name="dtype"/> (float32 or bfloat16).
    /// <paramref name="weights"/> gives them when called: they are read on another thread meanwhile, so a network built before
    /// it is called is built while the file is read.</summary>
    IVocoderModel Create(Voice voice, Func<IReadOnlyDictionary<string, Tensor>> weights, Device device, ScalarType dtype);

    /// <summary>Multiply-adds of one network evaluation per output sample, as the network is written (what <c>wavegrad bench</c>
    /// sets against the machine's matmul peak); NaN when unknown.</summary>
    double MultiplyAddsPerSample(Voice voice) => double.NaN;

    /// <summary>The type the network computes in when <paramref name="requested"/> is asked for (a kind may support float32 only).</summary>
    ScalarType ComputeType(ScalarType requested) => requested;

    /// <summary>The piece size its voices render long mels in on the CPU (<see cref="SynthesisOptions.CpuPieceFrames"/>, which
    /// <see cref="Voice.RenderDefaults"/> sets from it); null: that option's default, which suits audio-rate networks.</summary>
    int? CpuPieceFrames => null;
}

/// <summary>A fresh or card-described network of a diffusion vocoder kind, ready to train.</summary>
/// <param name="Network">The module: (x_t [B, T], mel [B, n_mels, T/hop], √ᾱ [B]) → the kind's prediction [B, T].</param>
/// <param name="Card">Its config as the voice card's <c>network</c> field stores it.</param>
/// <param name="Parameters">Its parameter count.</param>
/// <param name="SigmaData">σ_data of its preconditioning, for an x̂₀ loss weighted as <see cref="Preconditioning.LossWeight"/>; null for ε.</param>
/// <param name="ZeroWhenGrown">The tensors that, set to zero, make a layer the network has grown since a voice add nothing (see
/// <see cref="TensorFiles.Grown"/>); null: none.</param>
public sealed record TrainableNetwork(nn.Module<Tensor, Tensor, Tensor, Tensor> Network, JsonNode Card, long Parameters, double? SigmaData,
    Func<string, bool>? ZeroWhenGrown = null);

/// <summary>
/// A vocoder kind whose model is a mel-conditioned denoising network under <see cref="DiffusionVocoderModel"/>: what
/// <c>wavegrad train vocoder --architecture</c> trains through the one trainer and objective (<see cref="DiffusionVocoderObjective"/>).
/// </summary>
public interface IDiffusionVocoderArchitecture : IVocoderArchitecture
{
    /// <summary>What the network predicts: ε (trained with WaveGrad's L1/L2 on ε) or x̂₀ (preconditioned, weighted squared error).</summary>
    Prediction Predicts { get; }

    /// <summary>The sizes <see cref="NewNetwork"/> takes.</summary>
    IReadOnlyList<string> SizeNames { get; }

    /// <summary>A freshly initialised network of a named size (the options may refine it), its weights drawn from <paramref name="init"/>.</summary>
    TrainableNetwork NewNetwork(string size, MelConfig mel, VocoderTrainingOptions options, Generator init);

    /// <summary>The network a card's <c>network</c> field describes (weights to be loaded next); <paramref name="source"/> names the card.</summary>
    TrainableNetwork LoadNetwork(JsonObject card, MelConfig mel, string source);
}

/// <summary>The vocoder architectures by the name a card gives.</summary>
public static class VocoderArchitectures
{
    /// <summary>WaveGrad's name (<see cref="WaveGradNet"/>).</summary>
    public const string WaveGrad = "wavegrad";
    /// <summary>The frame-rate STFT denoiser's name (<see cref="StftDenoiser"/>).</summary>
    public const string Stft = "stft";
    /// <summary>The architecture of voices whose card names none.</summary>
    public const string Default = WaveGrad;

    static readonly Dictionary<string, IVocoderArchitecture> known = new()
    {
        [Default] = new WaveGradArchitecture(), [StftArchitecture.Name] = new StftArchitecture(),
    };

    /// <summary>The names of the registered architectures.</summary>
    public static IReadOnlyList<string> Names { get { lock (known) return known.Keys.Order(StringComparer.Ordinal).ToList(); } }

    /// <summary>Adds an architecture (a plug-in vocoder).</summary>
    public static void Register(IVocoderArchitecture architecture) { lock (known) known[architecture.Name] = architecture; }

    /// <summary>The architecture called <paramref name="name"/>; <paramref name="source"/> names the card in errors.</summary>
    public static IVocoderArchitecture Get(string name, string source)
    {
        lock (known)
            return known.TryGetValue(name, out var a) ? a
                : throw new WaveGradException($"{source}: unknown architecture '{Text.Escape(name)}' (known: {string.Join(", ", known.Keys)})");
    }

    /// <summary>Builds a voice's model from its weights file (<c>model.safetensors</c>, or a run's <c>model-raw.safetensors</c>), computing
    /// in <paramref name="dtype"/>; null: <see cref="Devices.InferenceType"/>'s choice (bfloat16 on CUDA and on CPUs with bf16
    /// instructions, else float32).</summary>
    public static IVocoderModel Create(Voice voice, Device? device = null, string weightsFile = "model.safetensors", ScalarType? dtype = null)
    {
        using var scope = NewDisposeScope();
        var d = device ?? CPU;
        var architecture = Get(voice.Architecture, voice.Bundle.ManifestPath);
        var type = dtype ?? Devices.InferenceType("auto", d);
        // The file is read on a worker while the architecture builds its network: the two cost about the same.
        var reading = Task.Run(() => voice.Bundle.LoadWeights(weightsFile));
        try { return architecture.Create(voice, () => reading.GetAwaiter().GetResult(), d, type); }
        finally
        {
            // Tensors made on the worker are in no dispose scope of this thread: freed here once copied into the network (the
            // worker's own failure, when the architecture failed before asking, gives way to the architecture's).
            try { foreach (var t in reading.GetAwaiter().GetResult().Values) t.Dispose(); }
            catch (Exception) when (!reading.IsCompletedSuccessfully) { }
        }
    }
}

/// <summary>WaveGrad (Chen et al. 2021): <see cref="WaveGradNet"/> as a <see cref="DiffusionVocoderModel"/>.</summary>
sealed class WaveGradArchitecture : IDiffusionVocoderArchitecture
{
    public const string Name = VocoderArchitectures.WaveGrad;
    string IVocoderArchitecture.Name => Name;

    public void Validate(Voice voice) => WaveGradConfig.Of(voice);

    public IVocoderModel Create(Voice voice, Func<IReadOnlyDictionary<string, Tensor>> weights, Device device, ScalarType dtype)
    {
        if (dtype is not (ScalarType.Float32 or ScalarType.BFloat16))
            throw WaveGradException.About($"Precision {dtype}: WaveGrad runs in float32 or bfloat16", "Precision");
        var net = WaveGradNet.Load(voice, weights());
        nn.Module<Tensor, Tensor, Tensor, Tensor> model = net;
        if (device.type == DeviceType.CPU && WaveGradInference.Supports(net.Config))
        {
            // On the CPU the same function runs as matrix products (WaveGradInference), the whole network in the one type.
            try { model = new WaveGradInference(net, dtype); }
            finally { net.Dispose(); }
        }
        else
        {
            if (device.type != DeviceType.CPU) net.to(device);
            if (dtype == ScalarType.BFloat16) net.UseBf16UpsamplingPath();
        }
        return new DiffusionVocoderModel(model, voice.Mel, voice.Prior, voice.DefaultSampler, device);
    }

    public double MultiplyAddsPerSample(Voice voice)
    {
        using var net = new WaveGradNet(WaveGradConfig.Of(voice));
        return net.MacsPerSample();
    }

    public Prediction Predicts => Prediction.Epsilon;

    public IReadOnlyList<string> SizeNames => WaveGradConfig.SizeNames;

    public TrainableNetwork NewNetwork(string size, MelConfig mel, VocoderTrainingOptions o, Generator init)
    {
        var cfg = (o.Network ?? WaveGradConfig.Create(size, mel.Hop, mel.NMels, o.Dilations, o.NoiseScale)).Check(mel, "network");
        var net = new WaveGradNet(cfg, init);
        net.ZeroOutputLayer();   // a fresh run starts from ε̂ = 0 (see ZeroOutputLayer)
        return new TrainableNetwork(net, ToCard(cfg), net.ParameterCount, null);
    }

    public TrainableNetwork LoadNetwork(JsonObject card, MelConfig mel, string source)
    {
        var cfg = WaveGradConfig.FromCard(card, mel, source);
        var net = new WaveGradNet(cfg);
        return new TrainableNetwork(net, ToCard(cfg), net.ParameterCount, null);
    }

    /// <summary>The card's network field for a config.</summary>
    public static JsonNode ToCard(WaveGradConfig cfg) => System.Text.Json.JsonSerializer.SerializeToNode(cfg, WaveGradConfig.JsonOptions)!;
}
