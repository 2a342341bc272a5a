using WaveGradSharp.Audio;
using WaveGradSharp.Diffusion;
using WaveGradSharp.Vocoder;
using static TorchSharp.torch;

namespace WaveGradSharp.Vocoder.Tests;

public class OverfitTests
{
    [Fact]
    public void ATinyModelOverfitsOneClipUntilItBeatsGriffinLim()
    {
        using var tmp = new TempDir();
        var clip = Tiny.Chirp(0.5);
        Directory.CreateDirectory(tmp["data"]);
        Wav.Write(Path.Combine(tmp["data"], "chirp.wav"), clip, 22050, float32: true);
        var losses = new List<double>();
        VocoderTrainer.Run(new VocoderTrainingOptions
        {
            DataDir = tmp["data"], OutputDir = tmp["run"], Network = Tiny.Config(), Steps = 600, BatchSize = 4, CropFrames = 8,
            LearningRate = 2e-3, ValidateEvery = 0, CheckpointEvery = 10_000, LogEvery = 10_000, Log = TextWriter.Null,
            OnStep = (_, l) => losses.Add(l),
        });
        Assert.True(losses.TakeLast(50).Average() < losses.Take(50).Average() / 3, $"loss {losses.Take(50).Average():F3} → {losses.TakeLast(50).Average():F3}");
        using var vocoder = Vocoder.Load(tmp["run"]);
        var mel = Tiny.Mel(clip);
        var wg = vocoder.Synthesize(mel, new SynthesisOptions { Schedule = NoiseSchedule.Named("wg-50"), Seed = 1 });
        var gl = GriffinLim.FromMel(mel, MelConfig.Preset("hifigan-22k"), iters: 64);
        var mWg = Metrics.Compute(clip, wg, 22050);
        var mGl = Metrics.Compute(clip, gl, 22050);
        Assert.True(mWg.MrStft < mGl.MrStft, $"WaveGrad MR-STFT {mWg.MrStft:F3} (SC {mWg.SpectralConvergence:F3}) vs Griffin-Lim {mGl.MrStft:F3} (SC {mGl.SpectralConvergence:F3})");
    }
}
