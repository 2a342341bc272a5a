using WaveGradSharp.Audio;
using WaveGradSharp.Vocoder;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace WaveGradSharp.Vocoder.Tests;

/// <summary>The shipped voices on speech they never trained on (tests/fixtures/voice/README.md).</summary>
public class ShippedVoiceTests(ITestOutputHelper log)
{
    /// <summary>A man's voice (flite awb) that the multi-speaker corpus holds out whole (tests/fixtures/voice/README.md), and its mel.</summary>
    static (float[] Audio, Tensor Mel) HeldOutClip(MelConfig cfg)
    {
        var x = Wav.Read(Path.Combine(AppContext.BaseDirectory, "fixtures", "voice", "flite-awb-heldout.wav"), cfg.SampleRate);
        using var spec = new MelSpectrogram(cfg);
        return (x, spec.Compute(tensor(x)));
    }

    [Fact]
    public void TheDefaultVoiceAsShippedBeatsGriffinLimOnASpeakerItNeverHeard()
    {
        using var v = Vocoder.Load(Voice.DefaultName);
        var cfg = v.Voice.Mel;
        var (x, mel) = HeldOutClip(cfg);
        AudioMetrics Score(float[] y) => Metrics.Compute(x, y, cfg.SampleRate, cfg);
        var gl = Score(GriffinLim.FromMel(mel, cfg, SynthesisOptions.BaselineGriffinLimIterations));
        var shipped = Score(v.Synthesize(mel));                   // the card's render: one DDIM level from the Griffin-Lim start
        var raw = Score(v.Synthesize(mel, v.Voice.RenderDefaults() with
        {
            Start = SamplerStart.Noise, PostFilterPasses = 0, Sampler = v.Voice.Sampler("ddim", "6"),
        }));
        log.WriteLine($"Griffin-Lim {gl}\nshipped {shipped}\nnetwork alone (DDIM-6) {raw}");
        // Measured (the voice trained from scratch, 37,074 steps): SC 0.2008 against 0.2737, V/UV F1 0.966 against 0.944, F0 RMSE
        // 12.4 against 16.6 cents, periodicity 0.0905 against 0.1138; the network alone 0.240 / 0.960 / 17.8 / 0.127.
        Assert.True(shipped.SpectralConvergence < gl.SpectralConvergence, $"SC {shipped.SpectralConvergence:F3} against Griffin-Lim's " +
            $"{gl.SpectralConvergence:F3}");
        Assert.True(shipped.Pitch.VoicingF1 >= gl.Pitch.VoicingF1 - 0.01, $"V/UV F1 {shipped.Pitch.VoicingF1:F3} against {gl.Pitch.VoicingF1:F3}");
        Assert.True(shipped.Pitch.F0RmseCents <= gl.Pitch.F0RmseCents + 5, $"F0 RMSE {shipped.Pitch.F0RmseCents:F1} against {gl.Pitch.F0RmseCents:F1}");
        Assert.True(shipped.Pitch.PeriodicityRmse <= gl.Pitch.PeriodicityRmse + 0.005,
            $"periodicity RMSE {shipped.Pitch.PeriodicityRmse:F3} against {gl.Pitch.PeriodicityRmse:F3}");
        Assert.True(raw.SpectralConvergence > shipped.SpectralConvergence, "the network alone is not yet at the shipped render's level");
    }

    [Fact]
    public void AWarmUpLeavesTheNextRenderAsItWas()
    {
        // What a server does before it takes requests (Vocoder.WarmUp): the streamed render after it is the one before it, bit for bit.
        using var v = Vocoder.Load(Voice.DefaultName);
        var mel = HeldOutClip(v.Voice.Mel).Mel;
        var listening = SpeechOptions.ForListening(v.Voice);
        float[] Render() => v.SynthesizeStreaming(mel, listening).SelectMany(c => c).ToArray();
        var before = Render();
        v.WarmUp(listening);
        Assert.Equal(before, Render());
    }

    [Fact]
    public void Slt22kBeatsGriffinLimsSpectralConvergenceOnAnUnseenSentence()
    {
        using var v = Vocoder.Load("slt-22k");
        var cfg = v.Voice.Mel;                                    // the framing the voice was trained on: hifigan-22k-centered
        Assert.Equal("hifigan-22k-centered", cfg.Name);
        var x = Wav.Read(Path.Combine(AppContext.BaseDirectory, "fixtures", "voice", "slt-val-000360.wav"), cfg.SampleRate);
        using var spec = new MelSpectrogram(cfg);
        var mel = spec.Compute(tensor(x));
        AudioMetrics Score(float[] y) => Metrics.Compute(x, y, cfg.SampleRate, cfg);
        var gl = Score(GriffinLim.FromMel(mel, cfg, 64));
        var shipped = Score(v.Synthesize(mel));                   // WG-6 from noise, Griffin-Lim projection at 3 levels, post-filter
        var plain = Score(v.Synthesize(mel, new SynthesisOptions { Consistency = ConsistencySteps.None }));
        log.WriteLine($"Griffin-Lim {gl}\nshipped {shipped}\nwithout consistency steps {plain}");
        // Measured: spectral convergence 0.168 Griffin-Lim, 0.116 as shipped.
        Assert.True(shipped.SpectralConvergence < 0.8 * gl.SpectralConvergence, $"SC {shipped.SpectralConvergence:F3} against Griffin-Lim's " +
            $"{gl.SpectralConvergence:F3}");
        Assert.True(shipped.SpectralConvergence < 0.8 * plain.SpectralConvergence, $"SC {shipped.SpectralConvergence:F3}; without consistency steps " +
            $"{plain.SpectralConvergence:F3}");
        double f1 = shipped.Pitch.VoicingF1, glF1 = gl.Pitch.VoicingF1;
        Assert.True(f1 >= glF1 - 0.01, $"V/UV F1 {f1:F3} against Griffin-Lim's {glF1:F3}");
    }
    [Fact]
    public void Bf16RendersWithinTheMeasuredErrorOfFloat32()
    {
        // bf16 (auto's choice on CUDA and on CPUs with bf16 instructions) against float32, same seed, on the unseen sentence:
        // the render's own quality must not move, and the two renders must be close in log-mel. Measured on the CPU with the
        // whole network in bf16 (WaveGradInference): spectral convergence 0.1271 in both, log-mel L1 between the renders
        // 0.019, their SNR 42.6 dB.
        using var f32 = Vocoder.Load("slt-22k", CPU, dtype: ScalarType.Float32);
        using var b16 = Vocoder.Load("slt-22k", CPU, dtype: ScalarType.BFloat16);
        var cfg = f32.Voice.Mel;
        var x = Wav.Read(Path.Combine(AppContext.BaseDirectory, "fixtures", "voice", "slt-val-000360.wav"), cfg.SampleRate);
        using var spec = new MelSpectrogram(cfg);
        var mel = spec.Compute(tensor(x));
        // The network's precision alone: no consistency steps, whose Griffin-Lim iterations amplify any difference.
        var o = SynthesisOptions.LowLatency with { Seed = 7 };
        float[] a = f32.Synthesize(mel, o), b = b16.Synthesize(mel, o);
        var qa = Metrics.Compute(x, a, cfg.SampleRate, cfg);
        var qb = Metrics.Compute(x, b, cfg.SampleRate, cfg);
        var between = Metrics.Compute(a, b, cfg.SampleRate, cfg);
        log.WriteLine($"fp32 {qa}\nbf16 {qb}\nbf16 against fp32 {between}");
        Assert.True(Math.Abs(qb.SpectralConvergence - qa.SpectralConvergence) < 0.01, $"SC fp32 {qa.SpectralConvergence:F4}, bf16 {qb.SpectralConvergence:F4}");
        Assert.True(between.LogMelL1 < 0.05, $"log-mel L1 between the bf16 and fp32 renders {between.LogMelL1:F4}");
        Assert.True(between.Snr > 30, $"SNR of the bf16 render against the fp32 one {between.Snr:F1} dB");
    }
}
