using static TorchSharp.torch;
using WaveGradSharp.Core;

namespace WaveGradSharp.Audio.Tests;

public class PlotTests
{
    [Fact]
    public void Writes_a_png_spectrogram_and_npy_through_the_file_pipeline()
    {
        string dir = TestData.TempDir();
        var r = AudioFiles.MelFromWav(TestData.Fixture("clip-word-22k.wav"), Path.Combine(dir, "m.npy"), Path.Combine(dir, "m.png"),
            MelConfig.Preset("hifigan-22k"));
        Assert.Equal((80L, 68L), (r.NMels, r.Frames));   // 17,640 samples / hop 256 (HiFi-GAN framing)
        Assert.Equal(["m.npy", "m.png"], TestData.Files(dir));
        var png = File.ReadAllBytes(Path.Combine(dir, "m.png"));
        Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }, png[..4]);
        Assert.True(png.Length > 10_000, $"PNG of {png.Length} bytes");
        var (d, s) = Npy.Read(Path.Combine(dir, "m.npy"));
        Assert.Equal(new long[] { 80, 68 }, s);
        var (want, _) = Npy.Read(TestData.Fixture("mel-hifigan-22k-word-22k.npy"));
        Assert.True(d.Zip(want).Max(p => Math.Abs(p.First - p.Second)) < 1e-4);

        var paths = AudioFiles.GriffinLimToWav(Path.Combine(dir, "m.npy"), Path.Combine(dir, "gl.wav"), MelConfig.Preset("hifigan-22k"), iters: 4);
        Assert.Equal([Path.Combine(dir, "gl.wav")], paths);
        Assert.Equal(68 * 256, Wav.Probe(paths[0]).Frames);   // GriffinLim.Samples: F·hop with HiFi-GAN framing
    }

    [Fact]
    public void Eval_scores_folders_by_matching_names()
    {
        string a = TestData.TempDir(), b = TestData.TempDir();
        var x = Wav.Read(TestData.Fixture("clip-chirp-22k.wav"), 22050);
        Wav.Write(Path.Combine(a, "one.wav"), x, 22050);
        Wav.Write(Path.Combine(b, "one.wav"), x.Select(v => v * 0.5f).ToArray(), 22050);
        Wav.Write(Path.Combine(a, "two.wav"), x, 22050);
        Wav.Write(Path.Combine(b, "two.wav"), x, 22050);
        Wav.Write(Path.Combine(a, "only-ref.wav"), x, 22050);
        var (rows, unmatched) = AudioFiles.Evaluate(a, b);
        Assert.Equal(["one.wav", "two.wav"], rows.Select(r => r.Name));
        Assert.Equal(["only-ref.wav"], unmatched);
        var mean = AudioFiles.Mean(rows);
        Assert.Equal((rows[0].Metrics.SpectralConvergence + rows[1].Metrics.SpectralConvergence) / 2, mean.SpectralConvergence, 12);
        Assert.Equal(20 * Math.Log10(2), mean.Snr, 3); // the identical pair's +∞ is left out of the mean
    }
}
