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
    /// <inheritdoc/>
    public string Name => SpeechFrontend.Available() ?? "none";

    /// <inheritdoc/>
    public Tensor Mel(string sentence, MelConfig mel, CancellationToken ct)
    {
        ct.ThrowIfCancellationRequested();
        var audio = SpeechFrontend.Render(sentence, mel.SampleRate);
        using var spec = new MelSpectrogram(mel);
        return spec.Compute(tensor(audio));
    }
}

/// <summary>Where a <see cref="TextToSpeech.Speak"/> call is.</summary>
/// <param name="Sentence">0-based sentence being rendered.</param>
/// <param name="Sentences">Sentences in the text.</param>
/// <param name="SecondsOfAudio">Audio yielded so far.</param>
public readonly record struct SpeechProgress(int Sentence, int Sentences, double SecondsOfAudio);

/// <summary>How <see cref="TextToSpeech"/> speaks.</summary>
public sealed record SpeechOptions
{
    /// <summary>How each sentence's mel is rendered (schedule, seed, start, post-filter, chunk size).</summary>
    public SynthesisOptions Synthesis { get; init; } = new();
    /// <summary>Silence between sentences, in seconds.</summary>
    public double PauseSeconds { get; init; } = 0.25;
    /// <summary>Told after every chunk.</summary>
    public IProgress<SpeechProgress>? Progress { get; init; }
}

/// <summary>
/// Text to speech with a <see cref="Vocoder"/>: the text is split into sentences, each turned into a mel by the frontend
/// and rendered by the vocoder's streaming API, with a pause between sentences. Audio is yielded chunk by chunk as it
/// is made, so a player can start after the first chunk.
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
        var sentences = Sentences(text);
        if (sentences.Count == 0) throw WaveGradException.About("the Text has no words", "Text");
        return SpeakSentences(sentences, options ?? new SpeechOptions(), ct);
    }

    IEnumerable<float[]> SpeakSentences(IReadOnlyList<string> sentences, SpeechOptions o, CancellationToken ct)
    {
        if (!(o.PauseSeconds >= 0 && o.PauseSeconds <= 10)) throw WaveGradException.About($"PauseSeconds {o.PauseSeconds}: must be in [0, 10]", "PauseSeconds");
        var pause = new float[(int)(o.PauseSeconds * Vocoder.SampleRate)];
        double seconds = 0;
        for (int i = 0; i < sentences.Count; i++)
        {
            Tensor mel;
            using (var scope = NewDisposeScope()) mel = Frontend.Mel(sentences[i], Vocoder.Voice.Mel, ct).MoveToOuterDisposeScope();
            using (mel)
                foreach (var chunk in Vocoder.SynthesizeStreaming(mel, o.Synthesis, ct))
                {
                    seconds += chunk.Length / (double)Vocoder.SampleRate;
                    o.Progress?.Report(new SpeechProgress(i, sentences.Count, seconds));
                    yield return chunk;
                }
            if (i + 1 < sentences.Count && pause.Length > 0)
            {
                seconds += o.PauseSeconds;
                yield return (float[])pause.Clone();
            }
        }
    }
}
