using Xunit.Abstractions;
using static TorchSharp.torch;
using WaveGradSharp.Core;

namespace WaveGradSharp.Audio.Tests;

public class MetricsTests(ITestOutputHelper log)
{
    static float[] Clip() => Wav.Read(TestData.Fixture("clip-chirp-22k.wav"), 22050);

    [Fact]
    public void Identical_signals_score_zero_and_infinite_snr()
    {
        var x = Clip();
        var m = Metrics.Compute(x, x, 22050);
        Assert.Equal(0, m.LogMelL1);
        Assert.Equal(0, m.SpectralConvergence);
        Assert.Equal(0, m.LogMagnitude);
        Assert.Equal(0, m.Mcd);
        Assert.Equal(double.PositiveInfinity, m.Snr);
        Assert.Equal(x.Length, m.Samples);
    }

    [Fact]
    public void A_pure_gain_gives_the_closed_form_values()
    {
        // test = g·ref: |Ŝ| = g|S| everywhere, so SC = |1 − g|, log-magnitude = log-mel L1 = |ln g| (nothing near the floors),
        // the mel cepstrum moves only in c0 so MCD = 0, and SNR = −20·log10|1 − g|.
        var x = Clip();
        const float g = 0.5f;
        var y = x.Select(v => v * g).ToArray();
        var m = Metrics.Compute(x, y, 22050);
        log.WriteLine(m.ToString());
        Assert.Equal(0.5, m.SpectralConvergence, 4);
        Assert.Equal(Math.Log(2), m.LogMagnitude, 3);
        Assert.Equal(m.SpectralConvergence + m.LogMagnitude, m.MrStft, 12);
        Assert.Equal(Math.Log(2), m.LogMelL1, 3);
        Assert.True(m.Mcd < 0.01, $"MCD {m.Mcd}");
        Assert.Equal(20 * Math.Log10(2), m.Snr, 6);
    }

    [Fact]
    public void Noise_lowers_snr_by_the_expected_amount_and_raises_every_distance()
    {
        var x = Clip();
        var rng = new Random(5);
        double px = x.Average(v => (double)v * v), sigma = Math.Sqrt(px / 100); // 20 dB SNR
        var y = x.Select(v => (float)(v + sigma * Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble()))).ToArray();
        var m = Metrics.Compute(x, y, 22050);
        log.WriteLine(m.ToString());
        Assert.InRange(m.Snr, 19.5, 20.5);
        Assert.True(m.Mcd > 0.1 && m.LogMelL1 > 0.01 && m.SpectralConvergence > 0.01 && m.LogMagnitude > 0.01);
    }

    [Fact]
    public void Lengths_are_trimmed_to_the_shorter_and_short_audio_is_refused()
    {
        var x = Clip();
        Assert.Equal(x.Length - 100, Metrics.Compute(x, x[..^100], 22050).Samples);
        Assert.Contains("too short", Assert.Throws<WaveGradException>(() => Metrics.Compute(x[..500], x, 22050)).Message);
    }

    [Fact]
    public void Mcd_matches_its_definition_on_a_hand_built_pair()
    {
        // A cosine ripple of depth a on mel band m (in ln units) is exactly c_k = a/2 for one DCT index k.
        var cfg = MelConfig.Preset("hifigan-22k");
        var x = Clip();
        using var ms = new MelSpectrogram(cfg);
        using var lin = ms.ComputeLinear(tensor(x));
        int k = 3; double a = 0.2;
        var ripple = new float[cfg.NMels];
        for (int m = 0; m < cfg.NMels; m++) ripple[m] = (float)Math.Exp(a * Math.Cos(Math.PI * k * (m + 0.5) / cfg.NMels));
        using var lin2 = lin * tensor(ripple).unsqueeze(1);
        double expect = 10 / Math.Log(10) * Math.Sqrt(2) * a / 2; // one coefficient off by a/2 in every frame
        Assert.Equal(0.6142, expect, 4);
        Assert.Equal(expect, Metrics.Mcd(lin, lin2), 3);
        Assert.Equal(0, Metrics.Mcd(lin, lin * 3), 3); // a gain moves c0 only
    }
    /// <summary>Harmonics 1..8 of <paramref name="f0"/> Hz at 22.05 kHz, harmonic h at amplitude 0.3/h and phase h·<paramref name="phaseStep"/>.</summary>
    static Tensor Harmonics(double f0, double phaseStep, int samples = 8192) => tensor(Enumerable.Range(0, samples).Select(i =>
        (float)Enumerable.Range(1, 8).Sum(h => 0.3 / h * Math.Cos(2 * Math.PI * h * f0 * i / 22050 + h * phaseStep))).ToArray()).unsqueeze(0);

    [Fact]
    public void Phase_derivative_error_ignores_absolute_phase_and_sees_frequency()
    {
        // At 300 Hz the three resolutions resolve the harmonics (at 150 Hz the shortest window sees pulses, whose shape the
        // harmonics' phases set: there turning them scores 0.17 against 0.42 for the detuned copy).
        var x = Harmonics(300, 0);
        Assert.True(Metrics.PhaseDerivativeError(x, x).item<float>() < 1e-5);
        // Each harmonic turned by its own constant angle: every bin's phase advance is the same, only its absolute phase moved.
        double shifted = Metrics.PhaseDerivativeError(x, Harmonics(300, 1.3)).item<float>();
        // The same harmonics 3 % higher: nearly the same magnitudes and mel, but every phase advances at another rate.
        double detuned = Metrics.PhaseDerivativeError(x, Harmonics(309, 0)).item<float>();
        log.WriteLine($"phase derivative error: phases turned {shifted:F4}, detuned 3 % {detuned:F4}");
        Assert.True(shifted < 0.1, $"absolute phase should hardly count: {shifted}");
        Assert.True(detuned > 0.4 && detuned <= 2, $"a detuned copy should: {detuned}");
        // A training loss: the gradient reaches the test waveform and is finite.
        var test = Harmonics(309, 0).requires_grad_(true);
        Metrics.PhaseDerivativeError(x, test).sum().backward();
        Assert.True(test.grad!.isfinite().all().item<bool>() && test.grad.abs().sum().item<float>() > 0);
    }
}
