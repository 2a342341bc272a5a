using TorchSharp;
using WaveGradSharp.Audio;
using WaveGradSharp.Diffusion;
using static TorchSharp.torch;
using WaveGradSharp.Core;

namespace WaveGradSharp.Vocoder;

/// <summary>Where the vocoder's sampler starts.</summary>
public enum SamplerStart
{
    /// <summary>WaveGrad's start: pure noise at the top of the schedule; every step runs.</summary>
    Noise,
    /// <summary>
    /// The mel's Griffin-Lim waveform, noised by the forward process to the noisiest step whose noise std is at most
    /// <see cref="SynthesisOptions.StartNoise"/> (step 0 if every step is noisier); the noisier steps are skipped.
    /// The network keeps Griffin-Lim's envelope and timing and replaces its smeared harmonics and phase.
    /// </summary>
    GriffinLim,
}

/// <summary>
/// Griffin-Lim consistency steps in the first reverse steps (a wrapper on the denoiser, so any sampler gets them): the
/// denoiser's estimate x̂₀ is replaced at the first <see cref="Levels"/> noise levels of the walk. <see cref="ConsistencyMode.Project"/>
/// projects x̂₀ onto the mel's magnitude by <see cref="Iterations"/> fast Griffin-Lim iterations from x̂₀'s own phase (GLA-Grad,
/// Liu et al. 2024, which projects the intermediate waveform itself); <see cref="ConsistencyMode.Substitute"/> puts the mel's
/// Griffin-Lim waveform in its place (GLA-Grad++, Baoueb et al. 2025).
/// </summary>
public sealed record ConsistencySteps
{
    /// <summary>None, project or substitute (none in a new record; a render's default is <see cref="Default"/>).</summary>
    public ConsistencyMode Mode { get; init; }
    /// <summary>How many of the walk's first noise levels get the step.</summary>
    public int Levels { get; init; } = 1;
    /// <summary>Griffin-Lim iterations of each projection.</summary>
    public int Iterations { get; init; } = 16;
    /// <summary>Fast Griffin-Lim's momentum in the projection, in [0, 1).</summary>
    public double Momentum { get; init; } = 0.99;

    /// <summary>No consistency steps.</summary>
    public static ConsistencySteps None { get; } = new();

    /// <summary>
    /// The default: x̂₀ projected at the walk's first 3 levels, 64 iterations each. Chosen on the held-out speakers with
    /// <c>slt-22k</c> (README, "Samplers, starts and consistency steps"): with the start from noise and 8 post-filter passes it
    /// was the one setting tried whose spectral convergence, voicing, F0 and periodicity all beat Griffin-Lim's.
    /// </summary>
    public static ConsistencySteps Default { get; } = new() { Mode = ConsistencyMode.Project, Levels = 3, Iterations = 64 };

    /// <summary>How a setting is written (what <see cref="Parse"/> reads): <c>none</c>, <c>project:LEVELS:ITERATIONS</c> or
    /// <c>substitute:LEVELS</c>.</summary>
    public override string ToString() => Mode switch
    {
        ConsistencyMode.Project => $"project:{Levels}:{Iterations}",
        ConsistencyMode.Substitute => $"substitute:{Levels}",
        _ => "none",
    };

    /// <summary>Reads <c>none</c>, <c>project[:LEVELS[:ITERATIONS]]</c> or <c>substitute[:LEVELS]</c>; an error names
    /// <paramref name="what"/> (a flag or a card field).</summary>
    public static ConsistencySteps Parse(string spec, string what)
    {
        var parts = spec.Split(':');
        string said = $"{what} '{Text.Escape(spec, 40)}'";
        ConsistencyMode mode = parts[0] switch
        {
            "none" => ConsistencyMode.None,
            "project" => ConsistencyMode.Project,
            "substitute" => ConsistencyMode.Substitute,
            _ => throw new WaveGradException($"{said}: the mode must be none, project or substitute"),
        };
        int Part(int i, int fallback) => parts.Length <= i ? fallback
            : int.TryParse(parts[i], out int v) && v >= 1 ? v
            : throw new WaveGradException($"{said}: '{Text.Escape(parts[i], 20)}' is not a whole number of at least 1");
        if (parts.Length > (mode == ConsistencyMode.Project ? 3 : mode == ConsistencyMode.Substitute ? 2 : 1))
            throw new WaveGradException($"{said}: too many fields");
        var d = new ConsistencySteps();
        return d with { Mode = mode, Levels = Part(1, d.Levels), Iterations = Part(2, d.Iterations) };
    }
}

/// <summary>What a consistency step puts in place of the denoiser's x̂₀ (see <see cref="ConsistencySteps"/>).</summary>
public enum ConsistencyMode
{
    /// <summary>Nothing: the denoiser's own estimate.</summary>
    None,
    /// <summary>x̂₀ projected onto the mel's magnitude from its own phase (GLA-Grad).</summary>
    Project,
    /// <summary>The mel's Griffin-Lim waveform (GLA-Grad++).</summary>
    Substitute,
}

/// <summary>How a waveform is rendered.</summary>
public sealed record SynthesisOptions
{
    /// <summary>The sampler and its noise levels; null: the voice's default (see <see cref="Voice.DefaultSampler"/>, <see cref="Voice.Sampler"/>).</summary>
    public ISampler? Sampler { get; init; }
    /// <summary>Griffin-Lim consistency steps in the first reverse steps (<see cref="ConsistencySteps.Default"/>).</summary>
    public ConsistencySteps Consistency { get; init; } = ConsistencySteps.Default;
    /// <summary>Seed of the noise. The same seed gives the same bits on the CPU.</summary>
    public long Seed { get; init; } = 1234;
    /// <summary>Told after every network evaluation.</summary>
    public IProgress<SamplerStep>? Progress { get; init; }
    /// <summary>
    /// Called on the rendering thread after every network evaluation with the sampler's x_t and the estimate x̂₀ it stepped
    /// with (the first mel of a batch, raw: before the post-filter): how "watch it denoise" shows noise becoming speech. Each
    /// call copies both off the device; null (the default) costs nothing.
    /// </summary>
    public Action<DenoisingEstimate>? Estimates { get; init; }
    /// <summary>Mel frames each streamed chunk yields.</summary>
    public int ChunkFrames { get; init; } = 64;
    /// <summary>
    /// Mel frames of a stream's first chunk, when set: the second chunk is as long, then chunks double up to
    /// <see cref="ChunkFrames"/>. A short first chunk comes soon; longer ones waste less on context. Doubling at once made
    /// the second chunk (a new piece length, whose first evaluation costs about twice a later one) come after the first had
    /// played; one of the same length is ready in time more often. The Griffin-Lim start's first window is then short too (see
    /// <see cref="GriffinLimStream"/>), so the start differs from a one-shot render's after about the first chunk.
    /// </summary>
    public int? FirstChunkFrames { get; init; }
    /// <summary>Extra mel frames rendered on each side of a streamed chunk and thrown away (the network's context).</summary>
    public int ContextFrames { get; init; } = 16;
    /// <summary>
    /// On the CPU, one-shot renders longer than 1.5 times this many frames run in pieces of this size (with
    /// <see cref="ContextFrames"/> of context, as streaming does): small activations stay in cache. 0 renders in one pass.
    /// A voice's <see cref="Voice.RenderDefaults"/> set the size its kind of network runs best at
    /// (<see cref="IVocoderArchitecture.CpuPieceFrames"/>); speak's streamed chunks grow up to it.
    /// </summary>
    public int CpuPieceFrames { get; init; } = 256;
    /// <summary>On a GPU, the piece size of long renders (so that memory does not grow with the input). 0 renders in one pass.</summary>
    public int GpuPieceFrames { get; init; } = 4096;
    /// <summary>
    /// Passes of <see cref="MelPostFilter"/> over the rendered audio: each pulls the band levels of the render onto
    /// the input mel, keeping the network's harmonics and phase, which removes the residual noise floor in pauses.
    /// 0 returns the network's output as the sampler made it. Streamed chunks carry at least the filter's reach
    /// (<see cref="MelPostFilter.ReachFrames"/>: 16 frames at 4 passes) of context.
    /// </summary>
    public int PostFilterPasses { get; init; } = DefaultPostFilterPasses;
    /// <summary>The post-filter's momentum β in [0, 1) (<see cref="MelPostFilter.Apply"/>): 0 runs its passes as plain fixed-point
    /// steps; more carries each pass on along its step, so that the same passes come closer to the mel.</summary>
    public double PostFilterMomentum { get; init; }

    /// <summary>The default number of post-filter passes: 8, measured with the default consistency steps on the held-out speakers
    /// (4 passes: spectral convergence 0.2313, 8 passes: 0.2255; Griffin-Lim 0.2536).</summary>
    public const int DefaultPostFilterPasses = 8;
    /// <summary>Where the sampler starts (see <see cref="SamplerStart"/>). The default is noise: with the default consistency steps
    /// the Griffin-Lim start scored worse on the held-out speakers (README, "Samplers, starts and consistency steps").</summary>
    public SamplerStart Start { get; init; } = DefaultStart;
    /// <summary>The default <see cref="Start"/>.</summary>
    public const SamplerStart DefaultStart = SamplerStart.Noise;
    /// <summary>
    /// With <see cref="SamplerStart.GriffinLim"/>: the largest noise std √(1−ᾱ) the sampler starts at, in (0, 1] (see
    /// <see cref="SampleStart"/>). At the default 0.65, WG-6 runs its last 5 steps and WG-50 its last 33.
    /// </summary>
    public double StartNoise { get; init; } = DefaultStartNoise;
    /// <summary>The default <see cref="StartNoise"/> (measured on <c>slt-22k</c>: see its card).</summary>
    public const double DefaultStartNoise = 0.65;
    /// <summary>Griffin-Lim iterations of the start waveform (the waveform is noised before the sampler sees it).</summary>
    public int StartIterations { get; init; } = DefaultStartIterations;
    /// <summary>The default <see cref="StartIterations"/>: enough from the phase gradients (<see cref="StartPhase"/>); a random
    /// start wants 64 (<c>slt-22k</c>'s card says so).</summary>
    public const int DefaultStartIterations = 8;
    /// <summary>The phase the Griffin-Lim start's iterations begin from. The magnitude's own phase gradients
    /// (<see cref="GriffinLim.PhaseFromGradients"/>) leave less for the iterations to do than a random phase, so far fewer serve
    /// (README, "The Griffin-Lim start").</summary>
    public PhaseStart StartPhase { get; init; } = PhaseStart.PhaseGradient;
    /// <summary>
    /// The defaults for a listener waiting on the first sound (<c>speak</c>, <c>wavegrad serve</c>): the Griffin-Lim start, no
    /// consistency steps, 4 post-filter passes (the defaults before the consistency steps). A streamed chunk is short, and the
    /// default's 3 × 64 Griffin-Lim iterations cost about as much on a 48-frame chunk as on a long one: with them a short
    /// sentence's first byte from <c>serve</c> came after 1.4–1.6 s on 2 cores, against 0.65–0.7 s without.
    /// </summary>
    public static SynthesisOptions LowLatency { get; } = new()
    {
        Start = SamplerStart.GriffinLim, Consistency = ConsistencySteps.None, PostFilterPasses = MelPostFilter.DefaultPasses,
    };
    /// <summary>A <see cref="StartPhase"/> by the name the CLI and cards use ("gradient" or "random"); null for any other.</summary>
    public static PhaseStart? ParseStartPhase(string name) => name switch
    {
        "gradient" => PhaseStart.PhaseGradient,
        "random" => PhaseStart.Random,
        _ => null,
    };
    /// <summary>The name <see cref="ParseStartPhase"/> reads.</summary>
    public static string StartPhaseName(PhaseStart p) => p == PhaseStart.PhaseGradient ? "gradient" : "random";
    /// <summary>Griffin-Lim iterations of the baseline (<c>wavegrad griffinlim</c>'s default and the evaluations' reference).</summary>
    public const int BaselineGriffinLimIterations = 64;
}

/// <summary>
/// Mel in, waveform out, for a <see cref="Voice"/>: checks the mel, renders it with the voice's model (the seam
/// <see cref="IVocoderModel"/>, picked by the card's architecture) in one pass, in a batch or streamed in pieces,
/// makes the Griffin-Lim start waveform when the model uses one, and runs the post-filter. Calls from several
/// threads are safe: they take turns on the one model (for parallel rendering, load one <see cref="Vocoder"/> per thread).
/// </summary>
public sealed class Vocoder : IDisposable
{
    /// <summary>The voice being rendered.</summary>
    public Voice Voice { get; }
    /// <summary>The model that renders it.</summary>
    public IVocoderModel Model { get; }
    /// <summary>Where the model runs.</summary>
    public Device Device => Model.Device;
    /// <summary>Output sample rate (Hz).</summary>
    public int SampleRate => Voice.SampleRate;
    /// <summary>Audio samples per mel frame.</summary>
    public int Hop => Voice.Mel.Hop;

    /// <summary>Wraps a model already loaded with a voice's weights.</summary>
    public Vocoder(Voice voice, IVocoderModel model)
    {
        Voice = voice; Model = model;
        NativeTuning.DisableNnpack();
        if (model.Device.type == DeviceType.CPU) NativeTuning.ReuseFreedMemory();
    }

    /// <summary>Loads a voice by name (see <see cref="Voice.Library"/>) or folder path onto a device (default: the CPU).
    /// <paramref name="weightsFile"/> picks another weights file of the bundle (a training run's <c>model-raw.safetensors</c>);
    /// <paramref name="dtype"/> the element type the network computes in (null: bfloat16 where the hardware has it natively,
    /// see <see cref="Devices.InferenceType"/>).</summary>
    public static Vocoder Load(string voiceNameOrPath, Device? device = null, string weightsFile = "model.safetensors", ScalarType? dtype = null) =>
        Load(Voice.Load(voiceNameOrPath), device, weightsFile, dtype);

    /// <summary>A loaded voice's vocoder (as <see cref="Load(string, Device?, string, ScalarType?)"/>).</summary>
    public static Vocoder Load(Voice voice, Device? device = null, string weightsFile = "model.safetensors", ScalarType? dtype = null)
    {
        if (!File.Exists(Path.Combine(voice.Directory, weightsFile)))
            throw new WaveGradException($"{Path.Combine(voice.Directory, weightsFile)}: missing (only training runs keep raw weights)");
        return new Vocoder(voice, VocoderArchitectures.Create(voice, device, weightsFile, dtype));
    }

    /// <summary>
    /// A mel [n_mels, F] made with the voice's settings but <paramref name="framing"/>, moved to the voice's framing (see
    /// <see cref="MelConfig.Reframe"/>): a HiFi-GAN-framed mel from an acoustic model gives a centred voice F + 1 frames,
    /// whose render's first F·hop samples are the utterance. Returned as it is when the framings agree.
    /// </summary>
    public Tensor AdaptMel(Tensor mel, MelFraming framing)
    {
        var from = Voice.Mel with { Framing = framing, MagnitudeEpsilon = framing == MelFraming.HifiGan ? 1e-9 : 0 };
        return from.Reframe(mel, Voice.Mel.Framing).Mel;
    }

    /// <summary>Checks a mel [n_mels, frames] against the voice: band count, finiteness, length.</summary>
    public void CheckMel(Tensor mel, string source = "mel")
    {
        if (mel.dim() != 2) throw new WaveGradException($"{source}: expected a mel of shape [n_mels, frames], got [{string.Join(", ", mel.shape)}]");
        if (mel.shape[0] != Voice.Mel.NMels)
            throw new WaveGradException($"{source}: mel has {mel.shape[0]} bands but voice '{Voice.Name}' expects {Voice.Mel.NMels} (preset {Voice.Mel.Name})");
        if (mel.shape[1] < 1) throw new WaveGradException($"{source}: mel has no frames");
        Voice.Mel.CheckLogMel(mel, source);
    }

    /// <summary>
    /// The mels of a file a user gives (<see cref="MelFile.Load(string, bool)"/>: [n_mels, frames], or [B, n_mels, frames] a
    /// batch), each checked as <see cref="CheckMel"/> does after the band count (whose message hints at a file stored
    /// frames-first): what <c>wavegrad vocode</c> and the server's <c>/v1/vocode</c> accept. <paramref name="source"/> names the file.
    /// </summary>
    public IReadOnlyList<Tensor> CheckInputMels(Tensor mel, string source)
    {
        var mels = mel.dim() == 3 ? Enumerable.Range(0, (int)mel.shape[0]).Select(i => mel[i]).ToList() : [mel];
        foreach (var m in mels) { MelFile.CheckNMels(m, Voice.Mel.NMels, source); CheckMel(m, source); }
        return mels;
    }

    /// <summary>
    /// Renders a mel a user gave (one of <see cref="CheckInputMels"/>'s), made in <paramref name="framing"/>: moved to the voice's
    /// framing (<see cref="AdaptMel"/>), rendered in pieces (<see cref="SynthesizePieces"/>: memory stays flat) or, with
    /// <paramref name="stream"/>, in chunks as soon as each is ready (<see cref="SynthesizeStreaming"/>), and cut to the utterance,
    /// the input's frames × hop samples (a reframed mel renders a hop more or less).
    /// </summary>
    public IEnumerable<float[]> SynthesizeInput(Tensor mel, MelFraming framing, SynthesisOptions? options = null, bool stream = false,
        CancellationToken ct = default)
    {
        long left = mel.shape[1] * Hop;
        var adapted = AdaptMel(mel, framing);
        foreach (var piece in stream ? SynthesizeStreaming(adapted, options, ct) : SynthesizePieces(adapted, options, ct))
        {
            int n = (int)Math.Min(piece.Length, left);
            if (n == 0) yield break;
            left -= n;
            yield return n == piece.Length ? piece : piece[..n];
        }
    }

    /// <summary>Renders a mel [n_mels, frames] (the voice's preset) to float32 samples at <see cref="SampleRate"/>, frames·hop long.
    /// Null <paramref name="options"/> (here and in the other renders) are the voice's defaults, <see cref="Voice.RenderDefaults"/>:
    /// change one with <c>voice.RenderDefaults() with { Seed = 7 }</c>.</summary>
    public float[] Synthesize(Tensor mel, SynthesisOptions? options = null, CancellationToken ct = default)
    {
        var pieces = SynthesizePieces(mel, options, ct).ToList();
        return pieces.Count == 1 ? pieces[0] : pieces.SelectMany(p => p).ToArray();
    }

    /// <summary>
    /// <see cref="Synthesize(Tensor, SynthesisOptions?, CancellationToken)"/>'s audio, yielded as it is made: one piece for a
    /// short mel, else pieces of <see cref="SynthesisOptions.CpuPieceFrames"/> (or <see cref="SynthesisOptions.GpuPieceFrames"/>)
    /// frames, so that a caller writing them out keeps memory flat however long the mel.
    /// </summary>
    public IEnumerable<float[]> SynthesizePieces(Tensor mel, SynthesisOptions? options = null, CancellationToken ct = default)
    {
        CheckMel(mel);
        var o = Checked(options);
        int piece = PieceFrames(o);
        if (piece > 0 && mel.shape[1] > piece * 3 / 2) return SynthesizeStreaming(mel, o with { ChunkFrames = piece, FirstChunkFrames = null }, ct);
        using var scope = NewDisposeScope();
        var start = EstimateWaveforms([mel], o);
        return [PostFilter(Model.Render(mel.unsqueeze(0), new RenderRequest(o, 0, start is null ? null : stack(start.Select(w => tensor(w))), ct))[0], mel, o)];
    }

    int PieceFrames(SynthesisOptions o) => Device.type == DeviceType.CPU ? o.CpuPieceFrames : o.GpuPieceFrames;

    /// <summary>Renders several mels at once (padded to the longest, then cut back); item i is frames_i·hop samples.</summary>
    public float[][] Synthesize(IReadOnlyList<Tensor> mels, SynthesisOptions? options = null, CancellationToken ct = default)
    {
        if (mels.Count == 0) return [];
        for (int i = 0; i < mels.Count; i++) CheckMel(mels[i], $"mel {i}");
        var o = Checked(options);
        if (PieceFrames(o) > 0 && mels.Max(m => m.shape[1]) > PieceFrames(o) * 3 / 2)
            return mels.Select(m => Synthesize(m, o, ct)).ToArray();
        long maxF = mels.Max(m => m.shape[1]);
        using var scope = NewDisposeScope();
        // Pad with the mel's quietest value so the padding reads as silence.
        var padded = mels.Select(m => nn.functional.pad(m, [0, maxF - m.shape[1]], value: m.min().item<float>())).ToArray();
        // Each mel's own Griffin-Lim waveform, padded with silence: the same start as a single render.
        var start = EstimateWaveforms(mels, o)?.Select(w => tensor(w.Concat(new float[maxF * Hop - w.Length]).ToArray())).ToArray();
        var outs = Model.Render(stack(padded), new RenderRequest(o, 0, start is null ? null : stack(start), ct));
        return outs.Select((a, i) => PostFilter(a[..(int)(mels[i].shape[1] * Hop)], mels[i], o)).ToArray();
    }

    /// <summary>
    /// Renders a mel chunk by chunk and yields audio as it is ready: each chunk is rendered with
    /// <see cref="SynthesisOptions.ContextFrames"/> of mel context on both sides and the same position-tied noise as
    /// a one-shot render, and neighbouring chunks are cross-faded over one hop. Memory stays flat in the input length: the
    /// Griffin-Lim start's waveform is made in windows as the chunks reach them (<see cref="GriffinLimStream"/>).
    /// </summary>
    public IEnumerable<float[]> SynthesizeStreaming(Tensor mel, SynthesisOptions? options = null, CancellationToken ct = default)
    {
        CheckMel(mel);
        var o = Checked(options);
        if (o.ChunkFrames < 1 || o.ContextFrames < 1 || o.FirstChunkFrames < 1)
            throw WaveGradException.About("streaming needs ChunkFrames, FirstChunkFrames and ContextFrames ≥ 1", "ChunkFrames", "FirstChunkFrames",
                "ContextFrames");
        int context = Math.Max(o.ContextFrames, MelPostFilter.ReachFrames(Voice.Mel, o.PostFilterPasses));
        long frames = mel.shape[1];
        int fade = Hop;
        // One Griffin-Lim waveform for the whole mel, cut into the pieces (pieces started from separately made Griffin-Lim
        // waveforms disagree in phase where they are cross-faded), made window by window as the pieces reach it.
        ct.ThrowIfCancellationRequested();
        bool start = Model.UsesEstimate(o), tooShort = frames < GriffinLim.MinFrames(Voice.Mel);
        long size = Math.Min(o.FirstChunkFrames ?? o.ChunkFrames, o.ChunkFrames);
        // A short first chunk gets a short first Griffin-Lim window: just long enough that its samples are final.
        int firstWindow = size < o.ChunkFrames ? GriffinLimStream.FirstWindowFor(size + context) : GriffinLimStream.WindowFrames;
        var gl = start && !tooShort
            ? new GriffinLimStream(mel.to(Device), Voice.Mel, o.StartIterations, firstWindowFrames: firstWindow, start: o.StartPhase)
            : null;
        float[]? tail = null;
        var heap = new NativeHeapWatch();
        using var continuation = new PhaseContinuation();
        // A short first chunk is followed by one more of its size, then chunks double (see FirstChunkFrames).
        long firstSize = size;
        for (long s = 0; s < frames; s += size, size = s < 2 * firstSize ? firstSize : Math.Min(2 * size, o.ChunkFrames))
        {
            ct.ThrowIfCancellationRequested();
            long e = Math.Min(s + size, frames);
            long a = Math.Max(0, s - context), b = Math.Min(frames, e + context);
            float[] audio;
            using (var scope = NewDisposeScope())
            {
                var piece = mel[.., (int)a..(int)b];
                var guess = !start ? null : gl is null ? zeros(1, (b - a) * Hop) : tensor(gl.Read(a * Hop, b * Hop)).unsqueeze(0);
                audio = PostFilter(Model.Render(piece.unsqueeze(0), new RenderRequest(o, a * Hop, guess, ct, continuation))[0], piece, o);
            }
            heap.Check();   // else the native heap's fragments make peak memory grow with the mel's length
            int from = (int)((s - a) * Hop), to = (int)((e - a) * Hop);
            bool last = e == frames;
            var chunk = audio[from..to];
            if (tail != null)
                for (int i = 0; i < fade && i < chunk.Length; i++)
                {
                    float w = (i + 0.5f) / fade;
                    chunk[i] = tail[i] * (1 - w) + chunk[i] * w;
                }
            tail = last ? null : audio[to..Math.Min(to + fade, audio.Length)];
            yield return chunk;
        }
    }

    /// <summary>
    /// Renders a second of a synthetic voiced mel (a 150 Hz tone with its harmonics) as <paramref name="options"/> asks, streamed,
    /// and discards it, so that the next render on this thread does not pay the first-call costs: compiling the methods a render
    /// runs, libtorch's and the transforms' set-up, and the thread's own native heap and thread team. A server calls it before it
    /// takes requests.
    /// </summary>
    public void WarmUp(SynthesisOptions? options = null)
    {
        using var scope = NewDisposeScope();
        var t = arange(SampleRate, dtype: ScalarType.Float32) / SampleRate;
        var tone = zeros_like(t);
        for (int h = 1; h <= 10; h++) tone.add_((t * (2 * Math.PI * 150 * h)).sin() * (0.3 / h));
        using var analysis = new MelSpectrogram(Voice.Mel);
        foreach (var _ in SynthesizeStreaming(analysis.Compute(tone), options)) { }
    }

    /// <summary>The options checked; null: the voice's defaults (<see cref="Voice.RenderDefaults"/>).</summary>
    SynthesisOptions Checked(SynthesisOptions? options)
    {
        var o = options ?? Voice.RenderDefaults();
        if (o.PostFilterPasses < 0) throw WaveGradException.About($"PostFilterPasses {o.PostFilterPasses}: must be 0 or more", "PostFilterPasses");
        if (!(o.PostFilterMomentum >= 0 && o.PostFilterMomentum < 1))
            throw WaveGradException.About($"PostFilterMomentum {o.PostFilterMomentum}: must be in [0, 1)", "PostFilterMomentum");
        if (!(o.StartNoise > 0 && o.StartNoise <= 1)) throw WaveGradException.About($"StartNoise {o.StartNoise}: must be in (0, 1]", "StartNoise");
        if (o.StartIterations < 1) throw WaveGradException.About($"StartIterations {o.StartIterations}: must be at least 1", "StartIterations");
        if (o.CpuPieceFrames < 16) throw WaveGradException.About($"CpuPieceFrames {o.CpuPieceFrames}: must be at least 16", "CpuPieceFrames");
        var c = o.Consistency;
        if (c.Levels < 1 || c.Iterations < 1 || !(c.Momentum >= 0 && c.Momentum < 1))
            throw WaveGradException.About($"Consistency: Levels {c.Levels} and Iterations {c.Iterations} must be at least 1, Momentum {c.Momentum} in [0, 1)",
                "Consistency");
        return o;
    }

    /// <summary>The post-filter, clipped to [−1, 1] as the sampler's output is.</summary>
    float[] PostFilter(float[] audio, Tensor mel, SynthesisOptions o)
    {
        if (o.PostFilterPasses == 0) return audio;
        var y = MelPostFilter.Apply(audio, mel, Voice.Mel, o.PostFilterPasses, o.PostFilterMomentum);
        for (int i = 0; i < y.Length; i++) y[i] = Math.Clamp(y[i], -1f, 1f);
        return y;
    }

    /// <summary>When the model uses a waveform estimate (a Griffin-Lim start or consistency target), each mel's Griffin-Lim waveform,
    /// F·hop samples (mels too short for Griffin-Lim get silence); otherwise null.</summary>
    float[][]? EstimateWaveforms(IReadOnlyList<Tensor> mels, SynthesisOptions o)
    {
        if (!Model.UsesEstimate(o)) return null;
        return mels.Select(mel =>
        {
            var w = new float[mel.shape[1] * Hop];
            if (mel.shape[1] >= GriffinLim.MinFrames(Voice.Mel))
            {
                using var scope = NewDisposeScope();
                var g = GriffinLim.FromMel(mel.to(Device), Voice.Mel, o.StartIterations, start: o.StartPhase);
                g.AsSpan(0, Math.Min(g.Length, w.Length)).CopyTo(w);
            }
            return w;
        }).ToArray();
    }

    /// <summary>Frees the model.</summary>
    public void Dispose() => Model.Dispose();
}
