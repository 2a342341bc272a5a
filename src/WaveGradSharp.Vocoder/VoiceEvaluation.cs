using WaveGradSharp.Audio;
using WaveGradSharp.Core;
using WaveGradSharp.Diffusion;
using static TorchSharp.torch;

namespace WaveGradSharp.Vocoder;

/// <summary>One way of rendering a mel that an evaluation scores.</summary>
/// <param name="Name">Label in the table ("griffin-lim", "pghi", "shipped", "plain", "raw", or a bound: "true-magnitude", "true-phase",
/// "voiced-phase", "mel-voiced-phase").</param>
/// <param name="Description">What the row renders, in a few words (the CLI's help lists them).</param>
/// <param name="Options">Vocoder settings; null renders with <paramref name="Baseline"/> instead.</param>
/// <param name="Baseline">A render without the network, from the clip's log-mel [n_mels, frames] and its waveform (the bounds
/// read the waveform; Griffin-Lim does not).</param>
public sealed record EvaluationSetting(string Name, string Description, SynthesisOptions? Options,
    Func<Tensor, float[], MelConfig, float[]>? Baseline = null)
{
    /// <summary>Griffin-Lim (64 iterations) from a random phase and from the magnitude's phase gradients; <paramref name="shipped"/>
    /// as given (by default the shipped settings); the same without consistency steps ("plain": the network from noise and the
    /// post-filter); the network alone (from noise, no post-filter, no consistency steps), all with its sampler; then two bounds
    /// that no vocoder is asked to beat, which split Griffin-Lim's error in two: "true-magnitude", the clip's own STFT magnitude
    /// with Griffin-Lim's phase (what phase retrieval alone costs), and "true-phase", Griffin-Lim's magnitude from the mel with
    /// the clip's own phase (what the mel's magnitude alone costs). Two more bounds keep the clip's own phase only in and around
    /// the frames it voices and retrieve the rest by Griffin-Lim (<see cref="GriffinLim.WithVoicedPhaseOf"/>), with the clip's own
    /// magnitude ("voiced-phase") or the mel's ("mel-voiced-phase"): what the periodicity error over every frame charges a render
    /// that is right on voiced speech but draws its own noise in the other frames.</summary>
    public static IReadOnlyList<EvaluationSetting> Standard(SynthesisOptions shipped)
    {
        var o = shipped;
        const int iterations = SynthesisOptions.BaselineGriffinLimIterations;
        float[] Own(Tensor mel, float[] wave, MelConfig cfg) => GriffinLim.FromMagnitude(GriffinLim.Analyse(wave, mel.shape[1], cfg).abs(), cfg, iterations);
        return
        [
            new("griffin-lim", "Griffin-Lim from a random phase", null, (m, _, mel) => GriffinLim.FromMel(m, mel, iterations)),
            new("pghi", "Griffin-Lim from the phase gradients", null,
                (m, _, mel) => GriffinLim.FromMel(m, mel, iterations, start: PhaseStart.PhaseGradient)),
            new("shipped", "the render flags", o),
            new("plain", "from noise, no consistency steps", o with { Start = SamplerStart.Noise, Consistency = ConsistencySteps.None }),
            new("raw", "the network alone: also no post-filter",
                o with { Start = SamplerStart.Noise, PostFilterPasses = 0, Consistency = ConsistencySteps.None }),
            new("true-magnitude", "bound: the clip's own magnitude, Griffin-Lim's phase", null, Own),
            new("true-phase", "bound: the mel's magnitude, the clip's own phase", null,
                (m, wave, mel) => GriffinLim.WithPhaseOf(GriffinLim.Magnitude(m, mel), wave, mel)),
            new("voiced-phase", "bound: the clip's own magnitude; its own phase in and around voiced frames, Griffin-Lim's elsewhere", null,
                (m, wave, mel) => GriffinLim.WithVoicedPhaseOf(GriffinLim.Analyse(wave, m.shape[1], mel).abs(), wave, mel, iterations)),
            new("mel-voiced-phase", "bound: the mel's magnitude; the clip's own phase in and around voiced frames, Griffin-Lim's elsewhere", null,
                (m, wave, mel) => GriffinLim.WithVoicedPhaseOf(GriffinLim.Magnitude(m, mel), wave, mel, iterations)),
        ];
    }

    /// <summary>The <see cref="Standard"/> settings named in a comma-separated list, in the list's order (to score the network
    /// alone without paying for the others); an unknown or repeated name throws naming <c>--settings</c>.</summary>
    public static IReadOnlyList<EvaluationSetting> Select(SynthesisOptions shipped, string names)
    {
        var all = Standard(shipped).ToDictionary(s => s.Name);
        var picked = new List<EvaluationSetting>();
        foreach (var name in names.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            if (!all.TryGetValue(name, out var s))
                throw WaveGradException.About($"--settings: unknown row '{Text.Escape(name, 40)}' (known: {string.Join(", ", all.Keys)})", "Settings");
            if (picked.Contains(s)) throw WaveGradException.About($"--settings: '{name}' is named twice", "Settings");
            picked.Add(s);
        }
        return picked.Count > 0 ? picked : throw WaveGradException.About("--settings: names no row", "Settings");
    }
}

/// <summary>The mean scores of one speaker (or of all, "mean") under one setting: spectra, then pitch (<see cref="PitchScores"/>).</summary>
public sealed record EvaluationRow(string Speaker, string Setting, int Clips, double LogMelL1, double SpectralConvergence,
    double LogMagnitude, double MrStft, double Mcd, double VoicingF1, double F0RmseCents, double PeriodicityRmse, double VoicedPeriodicityRmse);

/// <summary>
/// Scores a voice per speaker on clips it resynthesises from their own mels, against the clips: for a folder of speaker
/// corpora (scripts/build-multispeaker.sh) each speaker's validation clips, or, with <c>heldOut</c>, the first clips of
/// speakers never trained on. Rows per speaker and setting, then the mean over speakers (each speaker weighs the same).
/// </summary>
public static class VoiceEvaluation
{
    /// <summary>Renders and scores; clips are cut to <paramref name="maxSeconds"/>. <paramref name="progress"/> hears one line per clip;
    /// <paramref name="rendered"/> gets each clip's audio as (speaker, clip, setting, samples): the reference as setting "reference",
    /// then each setting's render, as it was scored.</summary>
    public static IReadOnlyList<EvaluationRow> Run(Vocoder vocoder, string dataDir, IReadOnlyList<EvaluationSetting> settings, int clipsPerSpeaker = 3,
        double maxSeconds = 4, bool heldOut = false, Action<string>? progress = null, CancellationToken ct = default,
        Action<string, string, string, float[]>? rendered = null)
    {
        if (clipsPerSpeaker < 1 || !(maxSeconds > 0)) throw WaveGradException.About("ClipsPerSpeaker must be at least 1 and MaxSeconds " +
            "positive", "ClipsPerSpeaker", "MaxSeconds");
        var mel = vocoder.Voice.Mel;
        var data = VocoderDataset.Load(dataDir, mel, 1, validationOnly: !heldOut, perSpeaker: clipsPerSpeaker);
        var clips = (heldOut ? data.Train.Concat(data.Validation) : data.Validation).GroupBy(u => u.Speaker).ToList();
        if (clips.Count == 0) throw new WaveGradException($"{dataDir}: no clips to score (a held-out folder needs heldOut; a seen one a val.txt)");
        long maxFrames = (long)(maxSeconds * mel.SampleRate / mel.Hop);
        var rows = new List<EvaluationRow>();
        using var spec = new MelSpectrogram(mel);
        foreach (var speaker in clips)
        {
            var scores = settings.ToDictionary(s => s.Name, _ => new List<AudioMetrics>());
            foreach (var clip in speaker.Take(clipsPerSpeaker))
            {
                ct.ThrowIfCancellationRequested();
                using var scope = NewDisposeScope();
                long frames = Math.Min(clip.Frames, maxFrames);
                var m = clip.Mel[.., ..(int)frames];
                var reference = clip.Audio[..(int)(frames * mel.Hop)].data<float>().ToArray();
                rendered?.Invoke(speaker.Key, clip.Name, "reference", reference);
                foreach (var s in settings)
                {
                    var audio = s.Options is null ? s.Baseline!(m, reference, mel) : vocoder.Synthesize(m, s.Options, ct);
                    rendered?.Invoke(speaker.Key, clip.Name, s.Name, audio);
                    scores[s.Name].Add(Metrics.Compute(reference, audio, mel.SampleRate, mel));
                }
                progress?.Invoke($"{speaker.Key} {clip.Name}: " + string.Join(", ", settings.Select(s => $"{s.Name} SC " +
                    $"{scores[s.Name][^1].SpectralConvergence:F3} F0 {scores[s.Name][^1].Pitch.F0RmseCents:F0}c")));
            }
            foreach (var s in settings) rows.Add(Mean(speaker.Key, s.Name, scores[s.Name]));
        }
        foreach (var s in settings)
        {
            var per = rows.Where(r => r.Setting == s.Name).ToList();
            rows.Add(new EvaluationRow("mean", s.Name, per.Sum(r => r.Clips), per.Average(r => r.LogMelL1), per.Average(r => r.SpectralConvergence),
                per.Average(r => r.LogMagnitude), per.Average(r => r.MrStft), per.Average(r => r.Mcd), per.Average(r => r.VoicingF1),
                AudioFiles.MeanOfFinite(per.Select(r => r.F0RmseCents)), per.Average(r => r.PeriodicityRmse),
                AudioFiles.MeanOfFinite(per.Select(r => r.VoicedPeriodicityRmse))));
        }
        return rows;
    }

    static EvaluationRow Mean(string speaker, string setting, List<AudioMetrics> m) =>
        new(speaker, setting, m.Count, m.Average(x => x.LogMelL1), m.Average(x => x.SpectralConvergence), m.Average(x => x.LogMagnitude),
            m.Average(x => x.MrStft), m.Average(x => x.Mcd), m.Average(x => x.Pitch.VoicingF1), AudioFiles.MeanOfFinite(m.Select(x => x.Pitch.F0RmseCents)),
            m.Average(x => x.Pitch.PeriodicityRmse), AudioFiles.MeanOfFinite(m.Select(x => x.Pitch.VoicedPeriodicityRmse)));
}
