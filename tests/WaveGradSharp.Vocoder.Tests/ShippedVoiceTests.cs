using WaveGradSharp.Audio;
using WaveGradSharp.Vocoder;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace WaveGradSharp.Vocoder.Tests;

/// <summary>The shipped default voice on a sentence it never trained on (tests/fixtures/voice/README.md).</summary>
public class ShippedVoiceTests(ITestOutputHelper log)
{
    [Fact]
    public void TheDefaultVoiceBeatsGriffinLimsSpectralConvergenceOnAnUnseenSentence()
    {
        using var v = Vocoder.Load("slt-22k");
        var cfg = v.Voice.Mel;                                    // the framing the voice was trained on: hifigan-22k-centered
        Assert.Equal("hifigan-22k-centered", cfg.Name);
        var x = Wav.Read(Path.Combine(AppContext.BaseDirectory, "fixtures", "voice", "slt-val-000360.wav"), cfg.SampleRate);
        using var spec = new MelSpectrogram(cfg);
        var mel = spec.Compute(tensor(x));
        AudioMetrics Score(float[] y) => Metrics.Compute(x, y, cfg.SampleRate, cfg);
        var gl = Score(GriffinLim.FromMel(mel, cfg, 64));
        var shipped = Score(v.Synthesize(mel));                                              // WG-6, Griffin-Lim start, post-filter
        var fromNoise = Score(v.Synthesize(mel, new SynthesisOptions { Start = SamplerStart.Noise }));
        log.WriteLine($"Griffin-Lim {gl}\nshipped {shipped}\nfrom noise {fromNoise}");
        // Measured: spectral convergence 0.168 Griffin-Lim, 0.136 as shipped, 0.206 from noise; log-magnitude
        // 1.47, 0.84, 0.85.
        Assert.True(shipped.SpectralConvergence < 0.9 * gl.SpectralConvergence, $"SC {shipped.SpectralConvergence:F3} against Griffin-Lim's " +
            $"{gl.SpectralConvergence:F3}");
        Assert.True(shipped.SpectralConvergence < 0.8 * fromNoise.SpectralConvergence, $"SC {shipped.SpectralConvergence:F3}; from noise " +
            $"{fromNoise.SpectralConvergence:F3}");
        Assert.True(shipped.LogMagnitude < 0.7 * gl.LogMagnitude, $"log-magnitude {shipped.LogMagnitude:F3} against Griffin-Lim's {gl.LogMagnitude:F3}");
    }
}
