using WaveGradSharp.Audio;
using WaveGradSharp.Core;
using static TorchSharp.torch;

namespace WaveGradSharp.Vocoder;

/// <summary>What packing a corpus did.</summary>
/// <param name="Files">Utterances written.</param>
/// <param name="Seconds">Audio in them.</param>
/// <param name="Bytes">Size of the packed audio.</param>
/// <param name="LogMelL1">Mean log-mel L1 (the preset's units) of decoded against original audio over the clips scored.</param>
/// <param name="Scored">Clips scored for <paramref name="LogMelL1"/>.</param>
public sealed record PackReport(int Files, double Seconds, long Bytes, double LogMelL1, int Scored);

/// <summary>
/// Copies a corpus (a folder of speaker corpora in the LJSpeech layout, or one) with its audio compressed by Opus
/// (<see cref="OpusAudio"/>): the same metadata.csv, train.txt and val.txt, each WAV written as <c>.wgopus</c>, which
/// training reads like a WAV. What the compression costs is measured on the way: the log-mel L1 of decoded against
/// original audio.
/// </summary>
public static class CorpusPacking
{
    /// <summary>Packs <paramref name="source"/> into <paramref name="destination"/>; at most <paramref name="maxMinutesPerSpeaker"/> of each
    /// speaker's metadata order (validation clips kept whatever the limit), scoring the first <paramref name="scoreClips"/> clips.</summary>
    public static PackReport Pack(string source, string destination, MelConfig mel, int bitrate = 28_000, double maxMinutesPerSpeaker = double.PositiveInfinity,
        int scoreClips = 20, Action<string>? progress = null)
    {
        if (!Directory.Exists(source)) throw new WaveGradException($"{source}: no such corpus folder");
        int files = 0, scored = 0;
        double seconds = 0, l1 = 0;
        long bytes = 0;
        using var spec = new MelSpectrogram(mel);
        foreach (var (speaker, list, val) in VocoderDataset.SpeakerCorpora(source))
        {
            string root = Directory.Exists(Path.Combine(source, speaker)) ? Path.Combine(source, speaker) : source;
            string outRoot = root == source ? destination : Path.Combine(destination, speaker);
            Directory.CreateDirectory(Path.Combine(outRoot, "wavs"));
            foreach (var name in new[] { "metadata.csv", "train.txt", "val.txt" }.Where(n => File.Exists(Path.Combine(root, n))))
                File.Copy(Path.Combine(root, name), Path.Combine(outRoot, name), overwrite: true);
            double spent = 0;
            foreach (var f in list)
            {
                string id = Path.GetFileNameWithoutExtension(f);
                if (spent >= maxMinutesPerSpeaker * 60 && !val.Contains(id)) continue;
                var x = AudioFiles.Read(f, mel.SampleRate);
                string dst = Path.Combine(outRoot, "wavs", id + OpusAudio.Extension);
                OpusAudio.Write(dst, x, mel.SampleRate, bitrate);
                files++; bytes += new FileInfo(dst).Length; seconds += x.Length / (double)mel.SampleRate;
                if (!val.Contains(id)) spent += x.Length / (double)mel.SampleRate;
                if (scored < scoreClips && x.Length > mel.NFft)
                {
                    using var scope = NewDisposeScope();
                    l1 += Metrics.LogMelL1(spec.Compute(tensor(x)), spec.Compute(tensor(OpusAudio.Read(dst, mel.SampleRate))));
                    scored++;
                }
            }
            progress?.Invoke($"{speaker}: {files} files, {seconds / 60:F1} min, {bytes / 1048576.0:F1} MB so far");
        }
        return new PackReport(files, seconds, bytes, scored > 0 ? l1 / scored : double.NaN, scored);
    }

    /// <summary>The reverse of <see cref="Pack"/>: every <c>.wgopus</c> file under <paramref name="source"/> decoded to a 16-bit WAV in
    /// the same place under <paramref name="destination"/> (text files copied), on all cores; returns the files written.</summary>
    public static int Unpack(string source, string destination, int sampleRate)
    {
        if (!Directory.Exists(source)) throw new WaveGradException($"{source}: no such corpus folder");
        string src = Path.GetFullPath(source);
        foreach (var t in Directory.EnumerateFiles(src, "*.*", SearchOption.AllDirectories).Where(f => f.EndsWith(".txt") || f.EndsWith(".csv")))
        {
            string dst = Path.Combine(destination, Path.GetRelativePath(src, t));
            Directory.CreateDirectory(Path.GetDirectoryName(dst)!);
            File.Copy(t, dst, overwrite: true);
        }
        var opus = Directory.EnumerateFiles(src, "*" + OpusAudio.Extension, SearchOption.AllDirectories).ToList();
        Parallel.ForEach(opus, f =>
        {
            string dst = Path.ChangeExtension(Path.Combine(destination, Path.GetRelativePath(src, f)), ".wav");
            Directory.CreateDirectory(Path.GetDirectoryName(dst)!);
            Wav.Write(dst, OpusAudio.Read(f, sampleRate), sampleRate);
        });
        return opus.Count;
    }
}
