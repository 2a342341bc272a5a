using WaveGradSharp.Audio;
using WaveGradSharp.Core;
using WaveGradSharp.Vocoder;
using static TorchSharp.torch;

namespace WaveGradSharp.Vocoder.Tests;

public class WaveformCriticTests
{
    static Tensor Tones(int count, int samples, Generator g)
    {
        var t = arange(samples, dtype: ScalarType.Float32).unsqueeze(0) / 22050f;
        var f0 = rand([count, 1], generator: g) * 200 + 100;
        return (t * f0 * (2 * Math.PI)).sin() * 0.3;
    }

    [Fact]
    public void LearnsToTellTonesFromNoiseAndPassesTheNetworkItsGradientOnly()
    {
        NativeTuning.DisableOneDnn();   // as the trainer does: oneDNN's conv gradients are wrong on some CPUs (NaN here)
        random.manual_seed(7);
        using var critic = new WaveformCritic();
        var g = new Generator(1);
        double first = double.NaN, last = double.NaN;
        for (int i = 0; i < 150; i++)
        {
            var real = Tones(4, 2048, g);
            var fake = randn([4, 2048], generator: g) * 0.3;
            last = critic.Learn(real, fake);
            if (i == 0) first = last;
        }
        // Least squares: a critic that scores everything 0 loses 1 per period; one that tells the two apart, nearly 0.
        Assert.True(first > 3 && last < 0.3 * first, $"critic loss {first:F3} → {last:F3}");
        var estimate = (randn([2, 2048], generator: g) * 0.3).requires_grad_();
        var loss = critic.NetworkLoss(Tones(2, 2048, g), estimate);
        loss.backward();
        Assert.True(estimate.grad is not null && estimate.grad.abs().sum().item<float>() > 0);
        Assert.All(critic.parameters(), p => Assert.Null(p.grad));
        Assert.All(critic.parameters(), p => Assert.True(p.requires_grad));
    }

    [Fact]
    public void TrainingWithACriticResumesBitForBit()
    {
        using var tmp = new TempDir();
        var data = tmp["data"];
        Directory.CreateDirectory(data);
        Wav.Write(Path.Combine(data, "a.wav"), Tiny.Chirp(0.8), 22050);
        Wav.Write(Path.Combine(data, "b.wav"), Tiny.Chirp(0.7, f0: 220, f1: 180), 22050);
        List<double> Run(string dir, long steps, bool resume)
        {
            var losses = new List<double>();
            VocoderTrainer.Run(new VocoderTrainingOptions
            {
                DataDir = data,
                OutputDir = dir,
                Architecture = "stft",
                Size = "tiny",
                Steps = steps,
                BatchSize = 4,
                CropFrames = 16,
                LearningRate = 1e-3,
                StftLossWeight = 1,
                CriticWeight = 1,
                LowNoiseShare = 0.5,
                ValidateEvery = 0,
                CheckpointEvery = 3,
                LogEvery = 1000,
                Log = TextWriter.Null,
                Resume = resume,
                OnStep = (_, l) => losses.Add(l),
            });
            return losses;
        }
        var straight = Run(tmp["straight"], 6, false);
        var resumed = Run(tmp["resumed"], 3, false).Concat(Run(tmp["resumed"], 6, true)).ToList();
        Assert.Equal(straight, resumed);
        Assert.True(File.Exists(Path.Combine(tmp["resumed"], VocoderTrainingOptions.CriticFile)));
        Assert.Equal(1, Voice.Load(tmp["resumed"]).Card["training"]!["recipe"]!["critic_weight"]!.GetValue<double>());
        // Without the critic's state a resume would not go on as the run did: it is refused, naming the file.
        File.Delete(Path.Combine(tmp["resumed"], VocoderTrainingOptions.CriticFile));
        var missing = Assert.Throws<WaveGradException>(() => Run(tmp["resumed"], 7, true));
        Assert.Contains(VocoderTrainingOptions.CriticFile, missing.Message);
        // A critic judges x̂₀ estimates: a noise-predicting kind is refused before any data is read, naming the option.
        var e = Assert.Throws<WaveGradException>(() => VocoderTrainer.Run(new VocoderTrainingOptions
        {
            DataDir = tmp["none"],
            OutputDir = tmp["wg"],
            Architecture = "wavegrad",
            CriticWeight = 1,
        }));
        Assert.Contains("CriticWeight", e.Message);
        e = Assert.Throws<WaveGradException>(() => VocoderTrainer.Run(new VocoderTrainingOptions
        {
            DataDir = tmp["none"],
            OutputDir = tmp["neg"],
            Architecture = "stft",
            CriticWeight = -1,
        }));
        Assert.Contains("CriticWeight", e.Message);
    }
}
