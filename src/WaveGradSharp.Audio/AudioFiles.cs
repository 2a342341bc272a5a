using static TorchSharp.torch;
using WaveGradSharp.Core;

namespace WaveGradSharp.Audio;

/// <summary>File-to-file operations behind the <c>wavegrad mel | griffinlim | eval</c> verbs. Each one reads and checks
/// all of its input before it writes anything, and writes atomically, so bad input never leaves a partial file.</summary>
public static class AudioFiles
{
    /// <summary>What <see cref="MelFromWav"/> made.</summary>
    public sealed record MelResult(long NMels, long Frames, double Seconds);

    /// <summary>WAV → log-mel: writes float32 .npy [n_mels, frames] (or [frames, n_mels]) and/or a labelled PNG.</summary>
    public static MelResult MelFromWav(string wavPath, string? npyPath, string? pngPath, MelConfig cfg, bool framesFirst = false,
        double maxSeconds = Wav.DefaultMaxSeconds)
    {
        if (npyPath is null && pngPath is null) throw WaveGradException.About("mel: nothing to write: give an NpyPath and/or a PngPath", "NpyPath", "PngPath");
        var x = Wav.Read(wavPath, cfg.SampleRate, maxSeconds);
        using var scope = NewDisposeScope();
        using var ms = new MelSpectrogram(cfg);
        Tensor mel;
        try { mel = ms.Compute(tensor(x)); }
        catch (WaveGradException e) { throw new WaveGradException($"{wavPath}: {e.Message}", e); }
        if (npyPath != null) MelFile.Save(npyPath, mel, framesFirst);
        if (pngPath != null) MelPlot.SavePng(pngPath, mel, cfg, $"{Path.GetFileName(wavPath)} — log-mel ({cfg.Name})");
        return new MelResult(mel.shape[0], mel.shape[1], (double)x.Length / cfg.SampleRate);
    }

    /// <summary>Mono samples of a WAV or <see cref="OpusAudio"/> (<c>.wgopus</c>) file at <paramref name="targetRate"/>.</summary>
    public static float[] Read(string path, int targetRate, double maxSeconds = Wav.DefaultMaxSeconds) =>
        path.EndsWith(OpusAudio.Extension, StringComparison.OrdinalIgnoreCase)
            ? OpusAudio.Read(path, targetRate, maxSeconds)
            : Wav.Read(path, targetRate, maxSeconds);

    /// <summary>Where the items of a batch render go: <paramref name="path"/> itself for one item, else OUT-0.wav, OUT-1.wav, … beside it.</summary>
    public static IReadOnlyList<string> BatchPaths(string path, int count)
    {
        if (count == 1) return [path];
        string dir = Path.GetDirectoryName(path) ?? "", stem = Path.GetFileNameWithoutExtension(path), ext = Path.GetExtension(path);
        return Enumerable.Range(0, count).Select(b => Path.Combine(dir, $"{stem}-{b}{ext}")).ToArray();
    }

    /// <summary>.npy log-mel → WAV by Griffin-Lim. A batch [B, n_mels, frames] with B &gt; 1 writes OUT-0.wav, OUT-1.wav, ….
    /// Returns the files written.</summary>
    public static IReadOnlyList<string> GriffinLimToWav(string npyPath, string wavPath, MelConfig cfg, int iters = 64, double momentum = 0.99,
        bool framesFirst = false, bool float32 = false)
    {
        using var scope = NewDisposeScope();
        var mel = MelFile.Load(npyPath, framesFirst);
        MelFile.CheckNMels(mel, cfg.NMels, npyPath);
        if (mel.dim() == 2) mel = mel.unsqueeze(0);
        var paths = BatchPaths(wavPath, (int)mel.shape[0]);
        for (int b = 0; b < mel.shape[0]; b++)
        {
            // Window by window into the file: memory stays flat however long the mel.
            var gl = new GriffinLimStream(mel[b], cfg, iters, momentum);
            using var w = new WavStreamWriter(paths[b], cfg.SampleRate, float32);
            for (long at = 0; at < gl.Length; at += 1 << 16) w.Write(gl.Read(at, Math.Min(gl.Length, at + (1 << 16))));
            w.Commit();
        }
        return paths;
    }

    /// <summary>One scored pair.</summary>
    public sealed record Scored(string Name, AudioMetrics Metrics);

    /// <summary>Scores <paramref name="test"/> against <paramref name="reference"/>: two WAV files, or two folders whose
    /// *.wav files are matched by name. The test audio is resampled to the reference's rate (or both to the mel preset's
    /// rate when <paramref name="mel"/> is given). Returns the rows and the names found in only one folder.</summary>
    public static (IReadOnlyList<Scored> Rows, IReadOnlyList<string> Unmatched) Evaluate(string reference, string test, MelConfig? mel = null)
    {
        bool refDir = Directory.Exists(reference), testDir = Directory.Exists(test);
        if (refDir != testDir)
            throw WaveGradException.About($"eval: Reference {reference} and Test {test} must both be WAV files or both be folders", "Reference", "Test");
        if (!refDir) return ([ScoreOne(reference, test, mel)], []);

        var refs = Directory.GetFiles(reference, "*.wav").Select(Path.GetFileName).OfType<string>().ToHashSet(StringComparer.Ordinal);
        var tests = Directory.GetFiles(test, "*.wav").Select(Path.GetFileName).OfType<string>().ToHashSet(StringComparer.Ordinal);
        var both = refs.Intersect(tests).OrderBy(n => n, StringComparer.Ordinal).ToList();
        if (both.Count == 0)
            throw new WaveGradException($"eval: no file names in common between {reference} ({refs.Count} .wav) and {test} ({tests.Count} .wav)");
        var rows = both.Select(n => ScoreOne(Path.Combine(reference, n), Path.Combine(test, n), mel) with { Name = n }).ToList();
        var unmatched = refs.Union(tests).Except(both).OrderBy(n => n, StringComparer.Ordinal).ToList();
        return (rows, unmatched);
    }

    static Scored ScoreOne(string refPath, string testPath, MelConfig? mel)
    {
        float[] r; int sr;
        if (mel != null) { r = Wav.Read(refPath, mel.SampleRate); sr = mel.SampleRate; }
        else r = Wav.Read(refPath, out sr);
        var t = Wav.Read(testPath, sr);
        try { return new Scored(Path.GetFileName(testPath), Metrics.Compute(r, t, sr, mel)); }
        catch (WaveGradException e) { throw new WaveGradException($"{refPath} vs {testPath}: {e.Message}", e); }
    }

    /// <summary>Mean of each metric over rows (SNR averaged in dB over the finite values; each file's F0 RMSE weighs the same, over the
    /// files that have one: see <see cref="PitchScores.F0RmseCents"/>).</summary>
    public static AudioMetrics Mean(IReadOnlyList<Scored> rows)
    {
        double M(Func<AudioMetrics, double> f) => rows.Average(r => f(r.Metrics));
        var snrs = rows.Select(r => r.Metrics.Snr).Where(double.IsFinite).ToList();
        var pitch = new PitchScores(M(m => m.Pitch.VoicingF1), MeanOfFinite(rows.Select(r => r.Metrics.Pitch.F0RmseCents)), M(m => m.Pitch.PeriodicityRmse),
            rows.Sum(r => r.Metrics.Pitch.BothVoicedFrames), MeanOfFinite(rows.Select(r => r.Metrics.Pitch.VoicedPeriodicityRmse)));
        return new AudioMetrics(M(m => m.LogMelL1), M(m => m.SpectralConvergence), M(m => m.LogMagnitude), M(m => m.MrStft), M(m => m.Mcd),
            snrs.Count > 0 ? snrs.Average() : double.PositiveInfinity, rows.Sum(r => r.Metrics.Samples), pitch);
    }

    /// <summary>The mean of the finite values; NaN when there are none.</summary>
    public static double MeanOfFinite(IEnumerable<double> values)
    {
        var finite = values.Where(double.IsFinite).ToList();
        return finite.Count > 0 ? finite.Average() : double.NaN;
    }
}
