using Xunit.Abstractions;
using static TorchSharp.torch;

namespace WaveGradSharp.Audio.Tests;

public class MelPostFilterTests(ITestOutputHelper log)
{
    static readonly MelConfig Cfg = MelConfig.Preset("hifigan-22k");

    static (float[] X, Tensor Mel) Word(string clip = "clip-word-22k.wav")
    {
        var x = Wav.Read(TestData.Fixture(clip), Cfg.SampleRate);
        using var ms = new MelSpectrogram(Cfg);
        return (x, ms.Compute(tensor(x)));
    }

    static double SnrDb(float[] x, float[] y) =>
        10 * Math.Log10(x.Sum(v => (double)v * v) / x.Zip(y, (a, b) => (double)(a - b) * (a - b)).Sum());

    static double MaxAbsDiff(float[] a, float[] b) => a.Zip(b, (p, q) => Math.Abs(p - q)).Max();

    [Fact]
    public void A_render_that_already_matches_its_mel_comes_back_unchanged()
    {
        var (x, mel) = Word();
        var y = MelPostFilter.Apply(x, mel, Cfg, passes: 2);
        Assert.Equal(x.Length, y.Length);
        // Gains are exactly 1 but the log floor nudges near-silent bands; STFT → ISTFT of the same signal is exact.
        Assert.True(MaxAbsDiff(x, y) < 1e-3 * x.Max(Math.Abs), $"max diff {MaxAbsDiff(x, y)}");
        Assert.Equal(x, MelPostFilter.Apply(x, mel, Cfg, passes: 0));
    }

    [Theory]
    [InlineData("lmnt-22k", 2.0f)]   // loud enough that lmnt's 0–1 scale clamps the target at its top
    [InlineData("hifigan-22k", 1.0f)]
    public void Bands_where_the_target_is_clamped_keep_gain_one(string preset, float gain)
    {
        // The rendered mel is clamped exactly as the target was: a render that already matches its mel must come
        // back unchanged even where the target sits at a clamp (a filter comparing with the unclamped render would
        // pull every band louder than lmnt's ceiling down to it, pass after pass).
        var cfg = MelConfig.Preset(preset);
        var x = Wav.Read(TestData.Fixture("clip-chirp-22k.wav"), cfg.SampleRate).Select(v => v * gain).ToArray();
        using var ms = new MelSpectrogram(cfg);
        using var mel = ms.Compute(tensor(x));
        if (cfg.Log != LogCompression.Ln) Assert.True(mel.max().item<float>() >= 1f, "the test needs a clamped band");
        var y = MelPostFilter.Apply(x, mel, cfg, passes: 4);
        double snr = SnrDb(x, y);
        log.WriteLine($"{preset}: SNR {snr:F1} dB");
        Assert.True(snr > 40, $"SNR {snr:F1} dB");
    }

    [Theory]
    [InlineData(0)]      // a render: frames·hop samples
    [InlineData(200)]    // the STFT has a frame more than the mel
    [InlineData(-1)]     // 1,800 samples, too short to measure the start apart: the whole waveform's mel
    public void A_passs_rendered_mel_from_its_one_STFT_is_the_mel_of_the_whole_waveform(int extra)
    {
        var (x, _) = Word();
        int length = (x.Length / Cfg.Hop - 4) * Cfg.Hop + extra;
        if (extra < 0) length = 1800;
        var all = tensor(x.AsSpan(0, length).ToArray());
        using var ms = new MelSpectrogram(Cfg);
        int offset = Cfg.FrameOffset;
        var y = all.narrow(0, offset, length - offset);
        var spec = stft(y, Cfg.NFft, Cfg.Hop, Cfg.WinLength, ms.Buffers(CPU).Window, center: true, pad_mode: TorchSharp.PaddingModes.Reflect,
            return_complex: true);
        var fast = MelPostFilter.RenderedMel(ms, spec, all.narrow(0, 0, offset), y);
        var whole = ms.ComputeLinear(all);
        Assert.Equal(spec.shape[1], fast.shape[1]);
        long common = Math.Min(whole.shape[1], fast.shape[1]);
        var diff = (fast.narrow(1, 0, common) - whole.narrow(1, 0, common)).abs().max().item<float>();
        Assert.True(diff < 1e-4 * whole.abs().max().item<float>(), $"largest difference {diff}");
        // A frame the mel does not have repeats its last one.
        if (fast.shape[1] > common) Assert.True(fast.narrow(1, common, 1).allclose(whole.narrow(1, common - 1, 1), 1e-4, 1e-6));
    }

    [Fact]
    public void A_mel_of_the_wrong_length_or_rank_is_refused()
    {
        var (x, mel) = Word();
        Assert.Contains("frames", Assert.Throws<ArgumentException>(() => MelPostFilter.Apply(x, mel[.., ..10], Cfg)).Message);
        Assert.Throws<ArgumentException>(() => MelPostFilter.Apply(x, stack([mel, mel]), Cfg));
    }

    [Fact]
    public void Momentum_reaches_the_mel_in_fewer_passes()
    {
        // The word under a noise floor at −46 dBFS and with its level swaying (a render whose levels are off): 8 passes with
        // momentum 0.9 must come closer to the mel than 8 plain passes (measured: 0.79 times their log-mel L1; 24 plain passes 0.60).
        var (x, mel) = Word();
        var rng = new Random(5);
        var input = x.Select((v, i) => v * (0.6f + 0.4f * MathF.Sin(i * 0.05f)) + 0.005f * (float)(rng.NextDouble() * 2 - 1) * 1.73f).ToArray();
        double L1(float[] y) => Metrics.Compute(x, y, Cfg.SampleRate, Cfg).LogMelL1;
        double plain8 = L1(MelPostFilter.Apply(input, mel, Cfg, passes: 8)), fast8 = L1(MelPostFilter.Apply(input, mel, Cfg, passes: 8, momentum: 0.9));
        log.WriteLine($"log-mel L1: 8 plain passes {plain8:F4}, 8 with momentum 0.9 {fast8:F4}");
        Assert.True(fast8 < 0.85 * plain8, $"momentum {fast8:F4} against plain {plain8:F4}");
        Assert.Throws<ArgumentOutOfRangeException>(() => MelPostFilter.Apply(input, mel, Cfg, passes: 8, momentum: 1));
    }

    [Fact]
    public void A_uniform_level_error_is_undone_in_one_pass()
    {
        // Half the amplitude everywhere: every band's gain is 2, the STFT is linear, so one pass restores the clip
        // (a chirp, so that nothing lies above f_max, where the gain stays 1).
        var (x, mel) = Word("clip-chirp-22k.wav");
        var y = MelPostFilter.Apply(x.Select(v => v * 0.5f).ToArray(), mel, Cfg, passes: 1);
        double snr = SnrDb(x, y);
        log.WriteLine($"SNR {snr:F1} dB, max diff {MaxAbsDiff(x, y)}");
        Assert.True(snr > 40, $"SNR {snr:F1} dB");
    }

    [Fact]
    public void A_noise_floor_in_pauses_is_pulled_down_to_the_mel_and_sound_above_f_max_is_left_alone()
    {
        // The clip plus white noise at −46 dBFS (a diffusion vocoder's residual floor) plus a 10 kHz tone above the
        // preset's 8 kHz f_max, which the mel cannot see and the filter must not touch.
        var (x, mel) = Word();
        var rng = new Random(5);
        var noisy = x.Select((v, i) => v + 0.005f * (float)(rng.NextDouble() * 2 - 1) * 1.73f).ToArray();
        var tone = Enumerable.Range(0, x.Length).Select(i => 0.01f * MathF.Sin(2 * MathF.PI * 10_000f * i / Cfg.SampleRate)).ToArray();
        var input = noisy.Zip(tone, (a, b) => a + b).ToArray();
        var y = MelPostFilter.Apply(input, mel, Cfg, passes: 4);
        var before = Metrics.Compute(x, noisy, Cfg.SampleRate, Cfg);
        // Score without the tone: subtract it from the output (the filter leaves it in place if it is correct).
        var after = Metrics.Compute(x, y.Zip(tone, (a, b) => a - b).ToArray(), Cfg.SampleRate, Cfg);
        log.WriteLine($"noisy {before}\nfiltered {after}");
        Assert.True(after.LogMelL1 < before.LogMelL1 / 3, $"log-mel L1 {before.LogMelL1:F3} → {after.LogMelL1:F3}");
        Assert.True(after.LogMagnitude < before.LogMagnitude * 0.8, $"log-magnitude {before.LogMagnitude:F3} → {after.LogMagnitude:F3}");
        Assert.True(after.SpectralConvergence <= before.SpectralConvergence, $"spectral convergence {before.SpectralConvergence:F3} → " +
            $"{after.SpectralConvergence:F3}");
        // The 10 kHz tone: its STFT bin keeps its level within 5 %.
        double ToneLevel(float[] s) => Goertzel(s, 10_000, Cfg.SampleRate);
        double ratio = ToneLevel(y) / ToneLevel(input);
        Assert.InRange(ratio, 0.95, 1.05);
    }

    static double Goertzel(float[] s, double f, int rate)
    {
        double w = 2 * Math.PI * f / rate, c = 2 * Math.Cos(w), s1 = 0, s2 = 0;
        foreach (var v in s) { double s0 = v + c * s1 - s2; s2 = s1; s1 = s0; }
        return Math.Sqrt(s1 * s1 + s2 * s2 - c * s1 * s2);
    }
}
