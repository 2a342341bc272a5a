using WaveGradSharp.Audio;
using WaveGradSharp.Core;
using static TorchSharp.torch;

namespace WaveGradSharp.Vocoder;

/// <summary>
/// The stage before the vocoder: text in, a log-mel out. A neural acoustic model, espeak-ng, or (the built-in
/// <see cref="SpeechProgramFrontend"/>) an installed speech program whose rendering is turned back into a mel.
/// </summary>
public interface ITextFrontend
{
    /// <summary>What the frontend is, for messages ("festival", "espeak-ng", a model's name).</summary>
    string Name { get; }

    /// <summary>The log-mel [n_mels, frames] of one sentence in <paramref name="mel"/>'s settings (the voice's preset).</summary>
    Tensor Mel(string sentence, MelConfig mel, CancellationToken ct);
}

/// <summary>
/// The built-in frontend: festival (with its slt HTS voice when installed) or else espeak-ng renders the sentence, and
/// the voice's own mel frontend analyses the rendering.
/// </summary>
public sealed class SpeechProgramFrontend : ITextFrontend
{
    readonly System.Collections.Concurrent.ConcurrentDictionary<string, Task<(float[] Samples, int SampleRate)>> started = new();

    /// <inheritdoc/>
    public string Name => SpeechFrontend.Available() ?? "none";

    /// <summary>Starts the speech program on <paramref name="sentence"/> now (a worker thread waits for it); <see cref="Mel"/> for
    /// the same sentence takes its result. The program needs no voice, so <c>speak</c> starts it before loading libtorch and
    /// the voice: call this before them (see <see cref="SpeechFrontend.Start"/>).</summary>
    public void Prefetch(string sentence)
    {
        lock (started) if (!started.ContainsKey(sentence)) started[sentence] = SpeechFrontend.Start(sentence);
    }

    /// <inheritdoc/>
    public Tensor Mel(string sentence, MelConfig mel, CancellationToken ct)
    {
        ct.ThrowIfCancellationRequested();
        var (samples, rate) = started.TryRemove(sentence, out var t) ? t.GetAwaiter().GetResult() : SpeechFrontend.Render(sentence);
        var audio = Wav.Resample(samples, rate, mel.SampleRate);
        using var spec = new MelSpectrogram(mel);
        return spec.Compute(tensor(audio));
    }
}

/// <summary>Where a <c>TextToSpeech.Speak</c> call is.</summary>
/// <param name="Sentence">0-based sentence being rendered.</param>
/// <param name="Sentences">Sentences in the text.</param>
/// <param name="SecondsOfAudio">Audio yielded so far.</param>
public readonly record struct SpeechProgress(int Sentence, int Sentences, double SecondsOfAudio);

/// <summary>How <see cref="TextToSpeech"/> speaks.</summary>
public sealed record SpeechOptions
{
    /// <summary>How each sentence's mel is rendered (schedule, seed, start, post-filter, chunk size); null: the voice's render for a
    /// listener, <see cref="ForListening(Voice)"/>, as <c>speak</c> and <c>serve</c> render.</summary>
    public SynthesisOptions? Synthesis { get; init; }
    /// <summary>Silence between sentences, in seconds.</summary>
    public double PauseSeconds { get; init; } = 0.25;
    /// <summary>Told after every chunk.</summary>
    public IProgress<SpeechProgress>? Progress { get; init; }

    /// <summary>
    /// <paramref name="synthesis"/> chunked for a listener waiting on the first sound (<c>speak --play</c>, <c>wavegrad serve</c>): a short
    /// first chunk (24 frames), one more of its length, then chunks doubling to a CPU piece's length. A chunk's cost is mostly its
    /// context (the post-filter's reach on both sides), so a shorter first chunk saves little more; the 0.28 s this one plays
    /// outlasts the next chunk's render.
    /// </summary>
    public static SynthesisOptions ForListening(SynthesisOptions synthesis) =>
        synthesis with { FirstChunkFrames = 24, ChunkFrames = synthesis.CpuPieceFrames };

    /// <summary>A voice's render for a listener: its defaults over the low-latency settings (<see cref="SynthesisOptions.LowLatency"/>),
    /// chunked by <see cref="ForListening(SynthesisOptions)"/>.</summary>
    public static SynthesisOptions ForListening(Voice voice) => ForListening(voice.RenderDefaults(SynthesisOptions.LowLatency));
}

/// <summary>
/// A text's sentences on their way through the frontend, one sentence ahead of the vocoder: sentence i + 1's mel is made
/// on a worker thread while sentence i is rendered (from <see cref="Prefetch"/>, which <see cref="TextToSpeech"/> calls once
/// sentence i's first chunk is rendered), and the first one from the moment this starts (a caller can start it before loading the
/// vocoder, since the frontend's speech program runs as long as loading the network takes).
/// </summary>
public sealed class SentenceMels : IDisposable
{
    readonly ITextFrontend frontend;
    readonly MelConfig mel;
    readonly CancellationToken ct;
    readonly Task<Tensor>?[] pending;

    /// <summary>The sentences, in order.</summary>
    public IReadOnlyList<string> Sentences { get; }
    /// <summary>The mel settings the mels are made in.</summary>
    public MelConfig Mel => mel;

    SentenceMels(IReadOnlyList<string> sentences, ITextFrontend frontend, MelConfig mel, CancellationToken ct)
    {
        Sentences = sentences; this.frontend = frontend; this.mel = mel; this.ct = ct;
        pending = new Task<Tensor>?[sentences.Count];
    }

    /// <summary>Splits <paramref name="text"/> into sentences and starts the first one's mel; text without words is an error.</summary>
    public static SentenceMels Start(string text, ITextFrontend frontend, MelConfig mel, CancellationToken ct = default)
    {
        var sentences = TextToSpeech.Sentences(text);
        if (sentences.Count == 0) throw WaveGradException.About("the Text has no words", "Text");
        var m = new SentenceMels(sentences, frontend, mel, ct);
        m.Begin(0);
        return m;
    }

    void Begin(int i)
    {
        if (i >= pending.Length || pending[i] is not null) return;
        string sentence = Sentences[i];
        pending[i] = Task.Run(() =>
        {
            using var scope = NewDisposeScope();
            return frontend.Mel(sentence, mel, ct).MoveToOuterDisposeScope();   // no outer scope on a worker: the caller owns it
        });
    }

    /// <summary>Sentence <paramref name="i"/>'s log-mel [n_mels, frames] (waiting for it; the caller disposes it). The frontend's
    /// own error is rethrown as it was.</summary>
    public Tensor Take(int i)
    {
        Begin(i);
        var task = pending[i]!;
        pending[i] = null;
        return task.GetAwaiter().GetResult();
    }

    /// <summary>Starts sentence <paramref name="i"/>'s mel now, if it exists and has not been started; <see cref="Take"/> starts it
    /// otherwise.</summary>
    public void Prefetch(int i) => Begin(i);

    /// <summary>Waits for mels still being made and frees them.</summary>
    public void Dispose()
    {
        for (int i = 0; i < pending.Length; i++)
        {
            if (pending[i] is not { } t) continue;
            pending[i] = null;
            try { t.GetAwaiter().GetResult().Dispose(); } catch (Exception) { /* nobody asked for this sentence */ }
        }
    }
}

/// <summary>
/// Text to speech with a <see cref="Vocoder"/>: the text is split into sentences, each turned into a mel by the frontend
/// (one sentence ahead: <see cref="SentenceMels"/>) and rendered by the vocoder's streaming API, with a pause between
/// sentences. Audio is yielded chunk by chunk as it is made, so a player can start after the first chunk.
/// </summary>
public sealed class TextToSpeech(Vocoder vocoder, ITextFrontend? frontend = null)
{
    /// <summary>The vocoder that renders.</summary>
    public Vocoder Vocoder { get; } = vocoder;
    /// <summary>The frontend that makes mels.</summary>
    public ITextFrontend Frontend { get; } = frontend ?? new SpeechProgramFrontend();

    /// <summary>Splits text into sentences (at . ! ? ; followed by space), dropping empty pieces.</summary>
    public static IReadOnlyList<string> Sentences(string text) => SpeechFrontend.Sentences(text);

    /// <summary>Speaks <paramref name="text"/>: float32 chunks at <see cref="Vocoder.SampleRate"/>, the first as soon as it is
    /// rendered. Text without words is an error. Cancellation is checked between chunks and network evaluations.</summary>
    public IEnumerable<float[]> Speak(string text, SpeechOptions? options = null, CancellationToken ct = default)
    {
        Check(options);
        return Speak(SentenceMels.Start(text, Frontend, Vocoder.Voice.Mel, ct), options, ct);
    }

    /// <summary>Speaks sentences whose mels are already on their way (<see cref="SentenceMels.Start"/>, in this vocoder's mel
    /// settings); disposes them when done.</summary>
    public IEnumerable<float[]> Speak(SentenceMels mels, SpeechOptions? options = null, CancellationToken ct = default)
    {
        try
        {
            if (mels.Mel != Vocoder.Voice.Mel)
                throw new WaveGradException($"the sentences' mels are in '{mels.Mel.Name}', the voice's in '{Vocoder.Voice.Mel.Name}'");
            return SpeakSentences(mels, Check(options), ct);
        }
        catch { mels.Dispose(); throw; }
    }

    static SpeechOptions Check(SpeechOptions? options)
    {
        var o = options ?? new SpeechOptions();
        if (!(o.PauseSeconds >= 0 && o.PauseSeconds <= 10)) throw WaveGradException.About($"PauseSeconds {o.PauseSeconds}: must be in [0, 10]", "PauseSeconds");
        return o;
    }

    IEnumerable<float[]> SpeakSentences(SentenceMels mels, SpeechOptions o, CancellationToken ct)
    {
        using var _ = mels;
        var pause = new float[(int)(o.PauseSeconds * Vocoder.SampleRate)];
        double seconds = 0;
        int count = mels.Sentences.Count;
        var synthesis = o.Synthesis ?? SpeechOptions.ForListening(Vocoder.Voice);
        for (int i = 0; i < count; i++)
        {
            using (var mel = mels.Take(i))
                foreach (var chunk in Vocoder.SynthesizeStreaming(mel, synthesis, ct))
                {
                    seconds += chunk.Length / (double)Vocoder.SampleRate;
                    o.Progress?.Report(new SpeechProgress(i, count, seconds));
                    // The next sentence's speech program starts once this sentence's first chunk is rendered: started with the
                    // render, it took a core from the first chunk (the render's two threads wait for each other). Before the
                    // chunk is handed on, since a player may hold on to it; the program itself starts on a worker.
                    mels.Prefetch(i + 1);
                    yield return chunk;
                }
            if (i + 1 < count && pause.Length > 0)
            {
                seconds += o.PauseSeconds;
                yield return (float[])pause.Clone();
            }
        }
    }
}
