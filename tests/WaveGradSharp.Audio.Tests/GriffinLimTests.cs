using Xunit.Abstractions;
using static TorchSharp.torch;
using WaveGradSharp.Core;

namespace WaveGradSharp.Audio.Tests;

public class GriffinLimTests(ITestOutputHelper log)
{
    [Theory]
    [InlineData("hifigan-22k")]   // n_fft 1024 = 4 hops
    [InlineData("lmnt-22k")]      // n_fft 2048, window 1200, hop 300: frames padded to 7 hops
    public void The_loops_stft_pair_matches_torch_stft_and_istft(string preset)
    {
        var cfg = MelConfig.Preset(preset);
        using var ms = new MelSpectrogram(cfg);
        var (win, _) = ms.Buffers(CPU);
        long frames = 37, length = (frames - 1) * cfg.Hop;
        var g = new Generator(3);
        var transform = new FrameStft(cfg, win, frames, length);
        var spec = complex(randn([cfg.NFreqs, frames], generator: g), randn([cfg.NFreqs, frames], generator: g));
        var expected = istft(spec, cfg.NFft, cfg.Hop, cfg.WinLength, win, center: true, normalized: false, onesided: true, length: length);
        var y = transform.Inverse(spec.t().contiguous());
        Assert.Equal(expected.shape, y.shape);
        double err = (y - expected).abs().max().item<float>(), scale = expected.abs().max().item<float>();
        Assert.True(err < 1e-5 * scale, $"inverse: max |Δ| {err} of {scale}");
        var wave = randn([length], generator: g);
        var forward = stft(wave, cfg.NFft, cfg.Hop, cfg.WinLength, win, center: true, pad_mode: TorchSharp.PaddingModes.Reflect, normalized: false,
            onesided: true, return_complex: true);
        var got = transform.Forward(wave);
        Assert.Equal(new long[] { frames, cfg.NFreqs }, got.shape);
        err = (got.t() - forward).abs().max().item<float>(); scale = forward.abs().max().item<float>();
        Assert.True(err < 1e-5 * scale, $"forward: max |Δ| {err} of {scale}");
    }

    [Theory]
    [InlineData("clip-chirp-22k.wav", 0.15)]   // a chirp: the gradients alone nearly give its phase back
    [InlineData("clip-word-22k.wav", 0.30)]
    public void The_phase_from_the_magnitudes_gradients_starts_far_closer_than_a_random_phase(string clip, double bound)
    {
        // A recording's own magnitude with the phase integrated from its gradients, no iterations: far below a random phase's
        // spectral convergence (about 0.65 on both clips), which a sign or scale error in either gradient would lose.
        var cfg = MelConfig.Preset("hifigan-22k");
        var x = Wav.Read(TestData.Fixture(clip), cfg.SampleRate);
        using var ms = new MelSpectrogram(cfg);
        long frames = ms.Compute(tensor(x)).shape[1];
        var reference = x[..(int)(frames * cfg.Hop)];
        using var own = GriffinLim.Analyse(reference, frames, cfg).abs();
        double Sc(float[] y) => Metrics.Compute(reference, y, cfg.SampleRate, cfg).SpectralConvergence;
        double gradient = Sc(GriffinLim.FromMagnitude(own, cfg, 0, start: PhaseStart.PhaseGradient));
        double random = Sc(GriffinLim.FromMagnitude(own, cfg, 0));
        log.WriteLine($"{clip}: SC with the gradients' phase {gradient:F4}, with a random phase {random:F4}");
        Assert.True(gradient < bound && random > 0.6, $"gradient {gradient}, random {random}");
        // The phase is deterministic and in [0, 2π).
        using var phase = GriffinLim.PhaseFromGradients(own, cfg);
        Assert.True(phase.equal(GriffinLim.PhaseFromGradients(own, cfg)).all().item<bool>());
        Assert.True(phase.min().item<float>() >= 0 && phase.max().item<float>() < 2 * Math.PI);
    }

    [Fact]
    public void From_a_mel_eight_iterations_from_the_gradients_phase_come_close_to_sixty_four_from_a_random_one()
    {
        // What the vocoder's start relies on: on a mel's least-squares magnitude, 8 fast Griffin-Lim iterations from the phase
        // gradients come within 15 % of the spectral convergence of 64 from a random phase (measured: 0.399 against 0.354 on this
        // short word; on the 13 training speakers' clips they do better, 0.249 against 0.261: README, "The Griffin-Lim start").
        var cfg = MelConfig.Preset("hifigan-22k");
        var x = Wav.Read(TestData.Fixture("clip-word-22k.wav"), cfg.SampleRate);
        using var ms = new MelSpectrogram(cfg);
        using var mel = ms.Compute(tensor(x));
        var reference = x[..(int)(mel.shape[1] * cfg.Hop)];
        double Sc(float[] y) => Metrics.Compute(reference, y, cfg.SampleRate, cfg).SpectralConvergence;
        double gradient8 = Sc(GriffinLim.FromMel(mel, cfg, 8, start: PhaseStart.PhaseGradient));
        double random64 = Sc(GriffinLim.FromMel(mel, cfg, 64));
        log.WriteLine($"SC: 8 iterations from the gradients' phase {gradient8:F4}, 64 from a random phase {random64:F4}");
        Assert.True(gradient8 < 1.15 * random64, $"{gradient8} against {random64}");
    }

    [Theory]
    [InlineData("hifigan-22k", "clip-chirp-22k.wav")]
    [InlineData("wavegrad-24k", "clip-word-24k.wav")]   // another filter bank and FFT size
    public void Magnitude_through_the_filters_nonzero_entries_is_the_dense_least_squares_update(string preset, string clip)
    {
        var cfg = MelConfig.Preset(preset);
        using var ms = new MelSpectrogram(cfg);
        using var mel = ms.Compute(tensor(Wav.Read(TestData.Fixture(clip), cfg.SampleRate)));
        // The reference: the same multiplicative updates with the dense filter bank.
        var fb = cfg.FilterBank();
        var dense = new double[cfg.NMels * cfg.NFreqs];
        for (int k = 0; k < cfg.NFreqs; k++)
            for (int m = 0; m < cfg.NMels; m++) dense[m * cfg.NFreqs + k] = fb[k, m];
        var fbt = tensor(dense, new long[] { cfg.NMels, cfg.NFreqs });
        var lin = ms.Decompress(mel).to_type(float64);
        var num = matmul(fbt.t(), lin);
        var spec = matmul(linalg.pinv(fbt), lin).clamp_min(0) + 1e-6;
        for (int i = 0; i < GriffinLim.NnlsIterations; i++) spec = spec * num / (matmul(fbt.t(), matmul(fbt, spec)) + 1e-12);
        if (cfg.Power == 2) spec = spec.sqrt();
        var (win, _) = ms.Buffers(CPU);
        if (cfg.NormalizedWindow) spec = spec * (win * win).sum().sqrt();
        var got = GriffinLim.Magnitude(mel, cfg).to_type(float64);
        Assert.Equal(spec.shape, got.shape);
        double err = (got - spec).norm().item<double>() / spec.norm().item<double>();
        Assert.True(err < 1e-4, $"relative error {err}");
    }

    [Theory]
    [InlineData("hifigan-22k")]            // frames start hop/2 into the waveform
    [InlineData("hifigan-22k-centered")]
    [InlineData("lmnt-22k")]               // a normalised window of 1200 in n_fft 2048
    public void A_recordings_own_magnitude_with_its_own_phase_gives_the_recording_back(string preset)
    {
        var cfg = MelConfig.Preset(preset);
        var x = Wav.Read(TestData.Fixture("clip-word-22k.wav"), cfg.SampleRate);
        using var ms = new MelSpectrogram(cfg);
        long frames = ms.Compute(tensor(x)).shape[1];
        using var own = GriffinLim.Analyse(x, frames, cfg);
        Assert.Equal(new long[] { cfg.NFreqs, frames }, own.shape);
        var back = GriffinLim.WithPhaseOf(own.abs(), x, cfg);
        Assert.Equal(GriffinLim.Samples(cfg, frames), back.Length);
        long from = cfg.FrameOffset, to = cfg.FrameOffset + (frames - 1) * cfg.Hop;
        double err = 0, peak = 0;
        for (long i = from; i < to; i++) { err = Math.Max(err, Math.Abs(back[i] - x[i])); peak = Math.Max(peak, Math.Abs(x[i])); }
        Assert.True(err < 1e-4 * peak, $"max |Δ| {err} of {peak}");
        Assert.Throws<ArgumentException>(() => GriffinLim.WithPhaseOf(own.abs()[1..], x, cfg));
        Assert.Throws<ArgumentException>(() => GriffinLim.FromMagnitude(own.abs()[1..], cfg));
    }

    [Fact]
    public void The_voiced_phase_bound_gives_the_voiced_part_back_and_new_noise_of_the_same_spectrum_elsewhere()
    {
        // A second of a 200 Hz tone with its second harmonic, then a second of white noise, with its own magnitude: the tone's
        // frames keep their phase, so away from the noise it comes back sample for sample; the noise's phase is retrieved, so
        // its waveform is new (uncorrelated with the recording's) while its spectrum stays close.
        var cfg = MelConfig.Preset("hifigan-22k");
        int n = cfg.SampleRate;
        var rng = new Random(3);
        var x = new float[2 * n];
        for (int i = 0; i < n; i++) x[i] = (float)(0.3 * Math.Sin(2 * Math.PI * 200 * i / n) + 0.15 * Math.Sin(2 * Math.PI * 400 * i / n + 1));
        for (int i = n; i < 2 * n; i++) x[i] = (float)(0.2 * (2 * rng.NextDouble() - 1));
        long frames = x.Length / cfg.Hop;
        using var own = GriffinLim.Analyse(x, frames, cfg);
        var y = GriffinLim.WithVoicedPhaseOf(own.abs(), x, cfg);
        Assert.Equal(GriffinLim.Samples(cfg, frames), y.Length);
        double toneError = 0;
        for (int i = n / 10; i < n - 2 * cfg.NFft; i++) toneError = Math.Max(toneError, Math.Abs(y[i] - x[i]));
        Assert.True(toneError < 1e-3, $"tone: max |Δ| {toneError} of 0.45");
        var (from, to) = (n + 2 * cfg.NFft, 2 * n - 2 * cfg.NFft);
        double dot = 0, xx = 0, yy = 0;
        for (int i = from; i < to; i++) { dot += x[i] * (double)y[i]; xx += x[i] * (double)x[i]; yy += y[i] * (double)y[i]; }
        double correlation = dot / Math.Sqrt(xx * yy);
        using var noise = GriffinLim.Analyse(x[from..to], 40, cfg).abs();
        using var drawn = GriffinLim.Analyse(y[from..to], 40, cfg).abs();
        double sc = (drawn - noise).norm().item<float>() / noise.norm().item<float>();
        log.WriteLine($"tone max |Δ| {toneError:E2}; noise: correlation {correlation:F3}, spectral convergence {sc:F3}");
        Assert.True(Math.Abs(correlation) < 0.2, $"noise correlation {correlation}");
        Assert.True(sc < 0.35, $"noise spectral convergence {sc}");
        Assert.Throws<ArgumentException>(() => GriffinLim.WithVoicedPhaseOf(own.abs()[1..], x, cfg));
    }

    [Fact]
    public void Griffin_lims_error_splits_into_what_the_mels_magnitude_and_the_phase_retrieval_each_cost()
    {
        // On speech the two bounds (the true magnitude with Griffin-Lim's phase; the mel's least-squares magnitude with the true
        // phase) each leave well under Griffin-Lim's spectral convergence: it pays for both, and more, since the mel's magnitude is
        // not the magnitude of any waveform.
        var cfg = MelConfig.Preset("hifigan-22k");
        var x = Wav.Read(TestData.Fixture("clip-word-22k.wav"), cfg.SampleRate);
        using var ms = new MelSpectrogram(cfg);
        using var mel = ms.Compute(tensor(x));
        long frames = mel.shape[1], length = frames * cfg.Hop;
        var reference = x[..(int)length];
        double Sc(float[] y) => Metrics.Compute(reference, y, cfg.SampleRate, cfg).SpectralConvergence;
        double gl = Sc(GriffinLim.FromMel(mel, cfg, 64));
        double trueMagnitude = Sc(GriffinLim.FromMagnitude(GriffinLim.Analyse(reference, frames, cfg).abs(), cfg, 64));
        double truePhase = Sc(GriffinLim.WithPhaseOf(GriffinLim.Magnitude(mel, cfg), reference, cfg));
        log.WriteLine($"SC: Griffin-Lim {gl:F4}, true magnitude {trueMagnitude:F4}, true phase {truePhase:F4}");
        Assert.True(trueMagnitude < 0.7 * gl && truePhase < 0.7 * gl, $"Griffin-Lim {gl}, true magnitude {trueMagnitude}, true phase {truePhase}");
    }

    [Theory]
    [InlineData("hifigan-22k", "clip-chirp-22k.wav")]
    [InlineData("hifigan-22k-centered", "clip-chirp-22k.wav")]
    [InlineData("wavegrad-24k", "clip-word-24k.wav")]
    public void Reconstruction_gets_close_in_log_mel_and_iterations_help(string preset, string clip)
    {
        var cfg = MelConfig.Preset(preset);
        var x = Wav.Read(TestData.Fixture(clip), cfg.SampleRate);
        using var ms = new MelSpectrogram(cfg);
        using var mel = ms.Compute(tensor(x));
        var y0 = GriffinLim.FromMel(mel, cfg, iters: 0);
        var y = GriffinLim.FromMel(mel, cfg, iters: 32);
        // Centred frames span (F − 1)·hop samples; HiFi-GAN's frames F·hop, frame f centred on f·hop + hop/2.
        Assert.Equal(cfg.Framing == MelFraming.HifiGan ? mel.shape[1] * cfg.Hop : (mel.shape[1] - 1) * cfg.Hop, y.Length);
        Assert.Equal(y, GriffinLim.FromMel(mel, cfg, iters: 32)); // deterministic
        var m0 = Metrics.Compute(x, y0, cfg.SampleRate, cfg);
        var m = Metrics.Compute(x, y, cfg.SampleRate, cfg);
        log.WriteLine($"{preset}: random phase {m0}\n32 iterations {m}");
        Assert.True(m.SpectralConvergence < 0.6 * m0.SpectralConvergence, "iterations must improve spectral convergence");
        double limit = cfg.Log == LogCompression.Ln ? 0.25 : 0.015; // lmnt's scale is 0.087·ln
        Assert.True(m.LogMelL1 < limit, $"log-mel L1 {m.LogMelL1}");
        Assert.True(y.Max(Math.Abs) < 1.5);
    }

    [Fact]
    public void Momentum_zero_is_classic_griffin_lim_and_fast_is_better_at_equal_iterations()
    {
        var cfg = MelConfig.Preset("hifigan-22k");
        var x = Wav.Read(TestData.Fixture("clip-chirp-22k.wav"), cfg.SampleRate);
        using var ms = new MelSpectrogram(cfg);
        using var mel = ms.Compute(tensor(x));
        var slow = Metrics.Compute(x, GriffinLim.FromMel(mel, cfg, 16, momentum: 0), cfg.SampleRate, cfg);
        var fast = Metrics.Compute(x, GriffinLim.FromMel(mel, cfg, 16, momentum: 0.99), cfg.SampleRate, cfg);
        log.WriteLine($"classic {slow.SpectralConvergence:F3}, fast {fast.SpectralConvergence:F3}");
        Assert.True(fast.SpectralConvergence < slow.SpectralConvergence);
    }

    [Theory]
    [InlineData("hifigan-22k", 4)]   // (F − 1)·256 must exceed the reflect padding of 512
    [InlineData("lmnt-22k", 5)]      // (F − 1)·300 must exceed 1024
    public void The_shortest_mel_it_inverts_is_one_whose_output_outlasts_the_stft_padding(string preset, int minFrames)
    {
        var cfg = MelConfig.Preset(preset);
        Assert.Equal(minFrames, GriffinLim.MinFrames(cfg));
        var ok = GriffinLim.FromMel(zeros(cfg.NMels, minFrames), cfg, 2);
        Assert.Equal(GriffinLim.Samples(cfg, minFrames), ok.Length);
        var e = Assert.Throws<WaveGradSharp.Core.WaveGradException>(() => GriffinLim.FromMel(zeros(cfg.NMels, minFrames - 1), cfg, 2));
        Assert.Equal($"griffin-lim input: {minFrames - 1} frames is too short; {preset} needs at least {minFrames}", e.Message);
    }

    [Theory]
    [InlineData(PhaseStart.Random)]
    [InlineData(PhaseStart.PhaseGradient)]   // each window continues the phase of the one before
    public void A_long_mel_streams_window_by_window_with_bounded_memory_and_no_seam(PhaseStart phaseStart)
    {
        // 2,200 frames (25 s): three windows. Reading in pieces gives the same samples as reading all at once, the stream
        // never holds more than a window and a piece, and the seams score like the windows themselves.
        var cfg = MelConfig.Preset("hifigan-22k");
        var x = Wav.Read(TestData.Fixture("clip-word-22k.wav"), cfg.SampleRate);
        var longX = Enumerable.Repeat(x, 33).SelectMany(v => v).ToArray();
        using var ms = new MelSpectrogram(cfg);
        using var mel = ms.Compute(tensor(longX));
        Assert.True(mel.shape[1] > 2 * GriffinLimStream.WindowFrames);
        var whole = GriffinLim.FromMel(mel, cfg, 8, start: phaseStart);
        Assert.Equal(GriffinLim.Samples(cfg, mel.shape[1]), whole.Length);
        var stream = new GriffinLimStream(mel, cfg, 8, start: phaseStart);
        var pieces = new List<float>();
        long most = 0;
        for (long at = 0; at < stream.Length; at += 20_000)
        {
            pieces.AddRange(stream.Read(at, Math.Min(stream.Length, at + 20_000)));
            most = Math.Max(most, stream.BufferedSamples);
        }
        Assert.Equal(whole, pieces.ToArray());
        Assert.True(most <= (GriffinLimStream.WindowFrames + 1) * cfg.Hop + 20_000, $"buffered {most} samples");
        // Small reads (an audio sink's 4,096 samples) give the same samples: a window's leading phase is measured on samples
        // the stream keeps for it, however far the reads have gone.
        var small = new GriffinLimStream(mel, cfg, 8, start: phaseStart);
        var bits = new List<float>();
        for (long at = 0; at < small.Length; at += 4096) bits.AddRange(small.Read(at, Math.Min(small.Length, at + 4096)));
        Assert.Equal(whole, bits.ToArray());
        // Spectral convergence of each 1 s stretch: the ones across a seam are no worse than the median.
        var sc = Enumerable.Range(0, longX.Length / 22050 - 1).Select(k =>
            Metrics.Compute(longX[(k * 22050)..((k + 1) * 22050)], whole[(k * 22050)..((k + 1) * 22050)], 22050, cfg).SpectralConvergence).ToArray();
        double median = sc.Order().ElementAt(sc.Length / 2);
        foreach (int seam in new[] { 1, 2 })
        {
            int second = (int)((long)seam * (GriffinLimStream.WindowFrames - GriffinLimStream.OverlapFrames) * cfg.Hop / 22050);
            log.WriteLine($"seam {seam}: SC {sc[second]:F3}, median {median:F3}");
            Assert.True(sc[second] < 1.25 * median, $"seam {seam}: SC {sc[second]:F3} against the median {median:F3}");
        }
    }

    [Theory]
    [InlineData(PhaseStart.Random)]
    [InlineData(PhaseStart.PhaseGradient)]
    public void A_short_first_window_makes_the_first_samples_from_that_window_alone_and_streams_the_rest(PhaseStart phaseStart)
    {
        // A stream's first window can be short (speak's first chunk): its samples up to where the second window's cross-fade
        // begins are that window's own inversion, a read shorter than the cross-fade offset is not silence, and the rest
        // streams on in windows that double, whose seams keep the spectral convergence near the whole-mel inversion's.
        var cfg = MelConfig.Preset("hifigan-22k");
        var x = Wav.Read(TestData.Fixture("clip-word-22k.wav"), cfg.SampleRate);
        var longX = Enumerable.Repeat(x, 6).SelectMany(v => v).ToArray();
        using var ms = new MelSpectrogram(cfg);
        using var mel = ms.Compute(tensor(longX));
        const int first = 128;
        Assert.True(mel.shape[1] > 2 * first);
        var own = GriffinLim.FromMel(mel[.., ..first], cfg, 8, start: phaseStart);
        var stream = new GriffinLimStream(mel, cfg, 8, firstWindowFrames: first, start: phaseStart);
        Assert.Equal(own[..(5 * cfg.Hop)], stream.Read(0, 5 * cfg.Hop));
        long final = (first - GriffinLimStream.OverlapFrames + GriffinLimStream.OverlapFrames / 4) * cfg.Hop;
        Assert.Equal(own[(5 * cfg.Hop)..(int)final], stream.Read(5 * cfg.Hop, final));
        // The next window is twice the first, not the rest of the mel: a reader waits for about as much as it has read.
        var next = stream.Read(final, final + 1);
        Assert.True(mel.shape[1] > 3 * first, "the mel reaches past the second window");
        Assert.Equal((first - GriffinLimStream.OverlapFrames + 2 * first) * cfg.Hop - final, stream.BufferedSamples);
        var rest = next.Concat(stream.Read(final + 1, stream.Length)).ToArray();
        Assert.Equal(GriffinLim.Samples(cfg, mel.shape[1]), final + rest.Length);
        var streamed = own[..(int)final].Concat(rest).ToArray();
        double sc = Metrics.Compute(longX, streamed, cfg.SampleRate, cfg).SpectralConvergence;
        double whole = Metrics.Compute(longX, GriffinLim.FromMel(mel, cfg, 8, start: phaseStart), cfg.SampleRate, cfg).SpectralConvergence;
        log.WriteLine($"SC with a {first}-frame first window {sc:F4}, whole mel at once {whole:F4}");
        Assert.True(sc < 1.1 * whole, $"SC {sc:F4} against {whole:F4}");
        Assert.Throws<ArgumentOutOfRangeException>(() => new GriffinLimStream(mel, cfg, 8, firstWindowFrames: 2 * GriffinLimStream.OverlapFrames - 1));
    }
}
