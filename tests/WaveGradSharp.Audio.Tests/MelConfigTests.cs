using static TorchSharp.torch;
using WaveGradSharp.Core;

namespace WaveGradSharp.Audio.Tests;

public class MelConfigTests
{
    [Fact]
    public void Presets_are_listed_and_unknown_names_list_them()
    {
        Assert.Equal(["hifigan-22k", "hifigan-22k-centered", "lmnt-22k", "wavegrad-24k"], MelConfig.PresetNames);
        Assert.Equal("hifigan-22k", MelConfig.DefaultPreset);
        var e = Assert.Throws<WaveGradException>(() => MelConfig.Preset("hifigan-44k"));
        Assert.Equal("unknown mel preset 'hifigan-44k': known presets are hifigan-22k, hifigan-22k-centered, lmnt-22k, wavegrad-24k", e.Message);
        var w = MelConfig.Preset("wavegrad-24k");
        Assert.Equal((24000, 300, 128, 2048, 1200, 12000.0), (w.SampleRate, w.Hop, w.NMels, w.NFft, w.WinLength, w.FMax));
    }

    [Fact]
    public void Mel_scales_round_trip_and_hit_their_anchor_points()
    {
        Assert.Equal(1000.0, MelConfig.MelToHz(MelConfig.HzToMel(1000, MelScale.Htk), MelScale.Htk), 9);
        Assert.Equal(2595 * Math.Log10(1 + 1000 / 700.0), MelConfig.HzToMel(1000, MelScale.Htk), 12);
        Assert.Equal(15.0, MelConfig.HzToMel(1000, MelScale.Slaney), 12); // linear part: 3 mels per 200 Hz
        Assert.Equal(15.0 + 27, MelConfig.HzToMel(6400, MelScale.Slaney), 9); // 27 log steps per factor 6.4
        foreach (double hz in new[] { 20.0, 500, 999, 1001, 8000, 11025 })
            Assert.Equal(hz, MelConfig.MelToHz(MelConfig.HzToMel(hz, MelScale.Slaney), MelScale.Slaney), 8);
    }

    [Fact]
    public void Frames_follow_the_framing_and_short_audio_is_a_clear_error()
    {
        // Centred: T/hop + 1 frames; HiFi-GAN's framing: T/hop.
        using var centred = new MelSpectrogram(MelConfig.Preset("hifigan-22k-centered"));
        Assert.Equal(new long[] { 80, 1000 / 256 + 1 }, centred.Compute(zeros(1000)).shape);
        var c = MelConfig.Preset("hifigan-22k");
        using var ms = new MelSpectrogram(c);
        using var m = ms.Compute(zeros(1000));
        Assert.Equal(new long[] { 80, 1000 / 256 }, m.shape);
        Assert.Equal(Math.Log(1e-5), m.max().item<float>(), 5); // silence sits at the floor
        Assert.Contains("too short", Assert.Throws<WaveGradException>(() => ms.Compute(zeros(255))).Message);
        Assert.Contains("too short", Assert.Throws<WaveGradException>(() => centred.Compute(zeros(400))).Message);
        Assert.Contains("window length 4096", Assert.Throws<WaveGradException>(() => (c with { WinLength = 4096 }).Validate()).Message);
    }

    [Fact]
    public void A_sine_at_a_bin_centre_has_the_closed_form_magnitude()
    {
        // Hann window of N, sine of amplitude A at bin k: |X_k| = A·Σw/2 = A·N/4. With normalized=True it is divided by ‖w‖ = √(3N/8).
        var c = MelConfig.Preset("hifigan-22k") with { Log = LogCompression.Ln };
        int n = 8192, k = 100; double a = 0.4;
        var x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float)(a * Math.Sin(2 * Math.PI * k * i / c.NFft));
        using var ms = new MelSpectrogram(c);
        using var spec = stft(tensor(x), c.NFft, c.Hop, c.WinLength, hann_window(c.WinLength), center: true, return_complex: true).abs();
        Assert.Equal(a * c.NFft / 4, spec[k, 10].item<float>(), 2);
        var fb = c.FilterBank();
        using var lin = ms.ComputeLinear(tensor(x));
        double expect = 0;
        for (int kk = 0; kk < c.NFreqs; kk++) expect += fb[kk, 30] * spec[kk, 10].item<float>();
        Assert.Equal(expect, lin[30, 10].item<float>(), 3);
    }

    [Fact]
    public void Reframing_a_mel_lands_near_the_mel_made_in_the_other_framing()
    {
        // HiFi-GAN's frame f sits half a hop after the centred frame f: averaging neighbours moves one onto the other.
        var x = tensor(Wav.Read(TestData.Fixture("clip-word-22k.wav"), 22050));
        var hifi = MelConfig.Preset("hifigan-22k");
        var centred = MelConfig.Preset("hifigan-22k-centered");
        using var msH = new MelSpectrogram(hifi);
        using var msC = new MelSpectrogram(centred);
        var mh = msH.Compute(x);
        var mc = msC.Compute(x);
        var (toC, cfgC) = hifi.Reframe(mh, MelFraming.Centered);
        var (toH, cfgH) = centred.Reframe(mc, MelFraming.HifiGan);
        Assert.Equal(mc.shape, toC.shape);
        Assert.Equal(mh.shape, toH.shape);
        Assert.Equal(MelFraming.Centered, cfgC.Framing);
        Assert.Equal(MelFraming.HifiGan, cfgH.Framing);
        double moved = (toC - mc).abs().mean().item<float>(), asIs = (mh - mc[.., ..(int)mh.shape[1]]).abs().mean().item<float>();
        // Half a hop of misalignment costs more than the interpolation error.
        Assert.True(moved < 0.8 * asIs && moved < 0.15, $"reframed {moved:F3}, unmoved {asIs:F3}");
        Assert.True((toH - mh).abs().mean().item<float>() < 0.15);
        Assert.Same(hifi, hifi.Reframe(mh, MelFraming.HifiGan).Config);
    }
}
