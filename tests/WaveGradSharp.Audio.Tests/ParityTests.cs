using Xunit.Abstractions;
using static TorchSharp.torch;
using WaveGradSharp.Core;

namespace WaveGradSharp.Audio.Tests;

/// <summary>Against torchaudio 0.13 (float64) fixtures made by scripts/make-audio-fixtures.py, and for hifigan-22k against
/// HiFi-GAN's own computation written in NumPy (scripts/make-hifigan-fixtures.py).</summary>
public class ParityTests(ITestOutputHelper log)
{
    public static TheoryData<string> Presets() => new(MelConfig.PresetNames);

    [Fact]
    public void Every_preset_has_fixtures_and_the_manifest_settings_match_the_preset()
    {
        var presets = TestData.Manifest().GetProperty("presets");
        Assert.Equal(MelConfig.PresetNames.OrderBy(x => x), presets.EnumerateObject().Select(p => p.Name).OrderBy(x => x));
        foreach (var p in presets.EnumerateObject())
        {
            var c = MelConfig.Preset(p.Name);
            var m = p.Value;
            Assert.Equal(m.GetProperty("sample_rate").GetInt32(), c.SampleRate);
            Assert.Equal(m.GetProperty("n_fft").GetInt32(), c.NFft);
            Assert.Equal(m.GetProperty("win_length").GetInt32(), c.WinLength);
            Assert.Equal(m.GetProperty("hop_length").GetInt32(), c.Hop);
            Assert.Equal(m.GetProperty("n_mels").GetInt32(), c.NMels);
            Assert.Equal(m.GetProperty("f_min").GetDouble(), c.FMin);
            Assert.Equal(m.GetProperty("f_max").GetDouble(), c.FMax);
            Assert.Equal(m.GetProperty("mel_scale").GetString(), c.Scale == MelScale.Htk ? "htk" : "slaney");
            Assert.Equal(m.GetProperty("norm").ValueKind == System.Text.Json.JsonValueKind.Null ? MelNorm.None : MelNorm.Slaney, c.Norm);
            Assert.Equal(m.GetProperty("power").GetDouble(), c.Power);
            Assert.Equal(m.GetProperty("normalized").GetBoolean(), c.NormalizedWindow);
            Assert.Equal(m.GetProperty("log").GetString() == "ln" ? LogCompression.Ln : LogCompression.LmntDb, c.Log);
            Assert.Equal(m.GetProperty("framing").GetString() == "hifigan" ? MelFraming.HifiGan : MelFraming.Centered, c.Framing);
            Assert.True(m.GetProperty("clips").GetArrayLength() >= 1);
        }
    }

    [Theory, MemberData(nameof(Presets))]
    public void Filter_bank_matches_torchaudio_melscale_fbanks_within_1e_6(string preset)
    {
        var c = MelConfig.Preset(preset);
        var (want, shape) = TestData.ReadNpyGzF64($"fbank-{preset}.npy.gz");
        Assert.Equal(new long[] { c.NFreqs, c.NMels }, shape);
        var fb = c.FilterBank();
        double max = 0;
        for (int k = 0; k < c.NFreqs; k++)
            for (int m = 0; m < c.NMels; m++) max = Math.Max(max, Math.Abs(fb[k, m] - want[k * c.NMels + m]));
        log.WriteLine($"{preset}: filter bank max |diff| = {max:E2}");
        Assert.True(max <= 1e-6, $"{preset}: filter bank differs from torchaudio by {max:E2}");
        Assert.True(want.Max() > 0.001); // the fixture is not all zeros
    }

    [Theory, MemberData(nameof(Presets))]
    public void Log_mel_of_the_committed_clips_matches_torchaudio_within_1e_4(string preset)
    {
        var c = MelConfig.Preset(preset);
        using var ms = new MelSpectrogram(c);
        var clips = TestData.Manifest().GetProperty("presets").GetProperty(preset).GetProperty("clips").EnumerateArray().Select(e => e.GetString()!).ToList();
        Assert.NotEmpty(clips);
        foreach (var clip in clips)
        {
            using var scope = NewDisposeScope();
            var x = Wav.Read(TestData.Fixture($"clip-{clip}.wav"), c.SampleRate);
            var (want, shape) = Npy.Read(TestData.Fixture($"mel-{preset}-{clip}.npy"));
            var got = ms.Compute(tensor(x));
            Assert.Equal(shape, got.shape);
            Assert.Equal(c.Frames(x.Length), got.shape[1]);
            var g = got.data<float>().ToArray();
            double max = 0, mean = 0;
            for (int i = 0; i < g.Length; i++) { double d = Math.Abs(g[i] - want[i]); max = Math.Max(max, d); mean += d; }
            mean /= g.Length;
            log.WriteLine($"{preset} {clip}: [{shape[0]}, {shape[1]}] max |diff| = {max:E2}, mean {mean:E2}, range {want.Min():F3}..{want.Max():F3}");
            Assert.True(max <= 1e-4, $"{preset} {clip}: log-mel differs from torchaudio by up to {max:E2}");
            Assert.True(want.Max() - want.Min() > 0.3); // a real spectrogram, not a constant
        }
    }

    [Fact]
    public void Batched_input_gives_the_same_frames_as_one_at_a_time()
    {
        var c = MelConfig.Preset("lmnt-22k");
        using var ms = new MelSpectrogram(c);
        using var scope = NewDisposeScope();
        var a = tensor(Wav.Read(TestData.Fixture("clip-chirp-22k.wav"), c.SampleRate));
        var b = tensor(Wav.Read(TestData.Fixture("clip-word-22k.wav"), c.SampleRate));
        long n = Math.Min(a.shape[0], b.shape[0]);
        var batch = stack([a[..(int)n], b[..(int)n]]);
        var m = ms.Compute(batch);
        Assert.Equal(new long[] { 2, 128, n / 300 + 1 }, m.shape);
        Assert.True(m[0].allclose(ms.Compute(a[..(int)n]), 1e-6, 1e-6));
        Assert.True(m[1].allclose(ms.Compute(b[..(int)n]), 1e-6, 1e-6));
    }

    [Theory, MemberData(nameof(Presets))]
    public void Chunked_frames_equal_one_whole_signal_stft(string preset)
    {
        // Long enough for several frame chunks; the reference is torch.stft over the whole signal, padded as the framing pads.
        var c = MelConfig.Preset(preset);
        using var ms = new MelSpectrogram(c);
        using var scope = NewDisposeScope();
        var clip = tensor(Wav.Read(TestData.Fixture($"clip-chirp-{c.SampleRate / 1000}k.wav"), c.SampleRate));
        var x = stack([cat([clip, clip.flip(0), clip, clip.flip(0), clip]), cat([clip.flip(0), clip, clip.flip(0), clip, clip])]); // [2, T]
        long t = x.shape[1];
        var win = hann_window(c.WinLength);
        var padded = nn.functional.pad(x.unsqueeze(1), [c.Padding, c.Padding], TorchSharp.PaddingModes.Reflect).squeeze(1);
        var spec = stft(padded, c.NFft, c.Hop, c.WinLength, win, center: false, return_complex: true);
        var mag = (spec.real * spec.real + spec.imag * spec.imag + c.MagnitudeEpsilon).sqrt();
        if (c.NormalizedWindow) mag = mag / win.pow(2).sum().sqrt();
        var fb = c.FilterBank();
        var fbT = new float[c.NMels * c.NFreqs];
        for (int k = 0; k < c.NFreqs; k++) for (int m = 0; m < c.NMels; m++) fbT[m * c.NFreqs + k] = (float)fb[k, m];
        var want = ms.Compress(matmul(tensor(fbT, new long[] { c.NMels, c.NFreqs }), mag));
        var got = ms.Compute(x);
        Assert.Equal(new long[] { 2, c.NMels, c.Framing == MelFraming.HifiGan ? t / c.Hop : t / c.Hop + 1 }, got.shape);
        Assert.True(got.shape[2] > Math.Max(16, (1 << 18) / c.NFft), "more than one chunk");
        double max = (got - want).abs().max().item<float>();
        log.WriteLine($"{preset}: chunked vs whole max |diff| = {max:E2}");
        Assert.True(max < 1e-5, $"{max:E2}");
    }
}
