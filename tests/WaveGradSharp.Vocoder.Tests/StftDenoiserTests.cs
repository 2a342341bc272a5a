using WaveGradSharp.Audio;
using WaveGradSharp.Core;
using WaveGradSharp.Diffusion;
using WaveGradSharp.Vocoder;
using static TorchSharp.torch;

namespace WaveGradSharp.Vocoder.Tests;

public class StftDenoiserTests
{
    [Fact]
    public void EdmPreconditioningAloneIsTheExactDenoiserOfGaussianData()
    {
        // For x₀ ~ N(0, σ_d²), E[x₀ | x_t] = c_skip·x̃ exactly: a network whose F is zero is already the posterior mean.
        const double sd = 0.1;
        var exact = new GaussianMixtureDenoiser([1], [0], [sd]);
        var schedule = NoiseSchedule.Named("wavegrad-train");
        foreach (int t in new[] { 0, 10, 200, 999 })
        {
            var l = NoiseLevel.Of(schedule, t);
            var xt = randn(2, 50, generator: new Generator(3)) * 0.3;
            var a = full(1, 1, (float)l.SignalScale);
            var pre = Preconditioning.Edm(a, sd);
            var d = pre.Skip * xt / a;
            Assert.True(d.allclose(exact.PredictX0(xt, l), 1e-3, 1e-5), $"t {t}");
            // The loss weight is 1 / c_out²: F's regression target has unit variance.
            double w = Preconditioning.LossWeight(a, sd).item<float>(), cOut = pre.Out.item<float>();
            Assert.Equal(1, w * cOut * cOut, 3);
        }
    }

    [Fact]
    public void AFreshNetworkReturnsTheSkipTermAndItsParameterCountIsKnownFromTheConfig()
    {
        var cfg = StftDenoiserConfig.Create("tiny", MelConfig.Preset("hifigan-22k"));
        using var net = new StftDenoiser(cfg, new Generator(1));
        Assert.Equal(cfg.ParameterCount(), net.ParameterCount);
        Assert.Equal(StftDenoiserConfig.Create("small", MelConfig.Preset("hifigan-22k")).ParameterCount(),
            new StftDenoiser(StftDenoiserConfig.Create("small", MelConfig.Preset("hifigan-22k"))).ParameterCount);
        var x = randn(2, 20 * 256) * 0.2;
        var level = tensor(new float[] { 0.3f, 0.9f });
        var y = net.call(x, randn(2, 80, 20), level);
        Assert.Equal(x.shape, y.shape);
        var pre = Preconditioning.Edm(level.reshape(-1, 1), cfg.SigmaData);
        Assert.True(y.allclose(pre.Skip * x / level.reshape(-1, 1), 1e-4, 1e-5));   // the head starts at zero
    }

    [Fact]
    public void BinGainsScaleTheNoisyInputsOwnStftAndStartAtZero()
    {
        var cfg = StftDenoiserConfig.Create("tiny", MelConfig.Preset("hifigan-22k")) with { BinGains = true };
        using var net = new StftDenoiser(cfg, new Generator(1));
        Assert.Equal(cfg.ParameterCount(), net.ParameterCount);
        Assert.True(cfg.ParameterCount() > (cfg with { BinGains = false }).ParameterCount());
        Assert.DoesNotContain("bin_gains", (cfg with { BinGains = false }).ToCard().ToJsonString());   // old cards stay as they were
        Assert.True(StftDenoiserConfig.FromCard(cfg.ToCard().AsObject(), MelConfig.Preset("hifigan-22k"), "card").BinGains);
        var x = randn(2, 20 * 256) * 0.2;
        var level = tensor(new float[] { 0.3f, 0.9f });
        var a = level.reshape(-1, 1);
        var skip = Preconditioning.Edm(a, cfg.SigmaData).Skip * x / a;
        Assert.True(net.call(x, randn(2, 80, 20), level).allclose(skip, 1e-4, 1e-5));   // fresh: the skip term alone
        // A gain g in every bin and frame adds g·x̃ (the inverse STFT of the STFT is the identity).
        using (no_grad()) net.named_parameters().Single(p => p.name == "gains.bias").parameter.fill_(0.25);
        Assert.True(net.call(x, randn(2, 80, 20), level).allclose(skip + 0.25 * x / a, 1e-3, 1e-4));
    }

    [Fact]
    public void ABf16TrunkKeepsTheTransformsInFloat32AndStaysCloseToTheFloat32Network()
    {
        var cfg = StftDenoiserConfig.Create("tiny", MelConfig.Preset("hifigan-22k")) with { BinGains = true };
        using var fp32 = new StftDenoiser(cfg, new Generator(1));
        using var bf16 = new StftDenoiser(cfg, new Generator(1));
        using (no_grad())
        {
            // Non-zero heads, so the trunk reaches the output; the same weights in both.
            foreach (var (name, p) in fp32.named_parameters().Where(p => p.name.StartsWith("head.") || p.name.StartsWith("gains.")))
                p.copy_(randn(p.shape, generator: new Generator((ulong)name.Length)) * 0.05);
            bf16.load_state_dict(fp32.state_dict());
        }
        bf16.UseBf16Trunk();
        Assert.Equal((ScalarType.Float32, ScalarType.BFloat16), (fp32.TrunkType, bf16.TrunkType));
        var x = randn(2, 20 * 256, generator: new Generator(2)) * 0.2;
        var mel = randn(2, 80, 20, generator: new Generator(3));
        var level = tensor(new float[] { 0.3f, 0.9f });
        using var want = fp32.call(x, mel, level);
        using var got = bf16.call(x, mel, level);
        Assert.Equal(ScalarType.Float32, got.dtype);
        double rel = (got - want).norm().item<float>() / want.norm().item<float>();
        Assert.True(rel > 0 && rel < 0.01, $"relative difference {rel}");
    }

    [Fact]
    public void TrainsThroughTheOneTrainerAndRendersWithEverySamplerAndStreaming()
    {
        using var tmp = new TempDir();
        var data = tmp["data"];
        Directory.CreateDirectory(data);
        Wav.Write(Path.Combine(data, "a.wav"), Tiny.Chirp(0.8), 22050);
        Wav.Write(Path.Combine(data, "b.wav"), Tiny.Chirp(0.7, f0: 220, f1: 180), 22050);
        var losses = new List<double>();
        var o = new VocoderTrainingOptions
        {
            DataDir = data, OutputDir = tmp["run"], Architecture = "stft", Size = "tiny", Steps = 60, BatchSize = 4, CropFrames = 16,
            LearningRate = 5e-3, StftLossWeight = 0, ValidateEvery = 0, CheckpointEvery = 1000, LogEvery = 1000, Log = TextWriter.Null,
            OnStep = (_, l) => losses.Add(l),
        };
        VocoderTrainer.Run(o);
        Assert.Equal(60, losses.Count);
        double first = losses.Take(10).Average(), last = losses.TakeLast(10).Average();
        Assert.True(last < 0.85 * first, $"loss {first:F3} → {last:F3}");
        // The kind is part of the checkpoint: resuming it as another kind is refused.
        var wrong = Assert.Throws<WaveGradException>(() => VocoderTrainer.Run(o with { Architecture = "wavegrad", Steps = 61, Resume = true }));
        Assert.Contains("network", wrong.Message);
        // The run folder is a voice of the stft kind; every sampler renders it, streamed or not.
        using var v = Vocoder.Load(tmp["run"]);
        Assert.Equal("stft", v.Voice.Architecture);
        var mel = Tiny.Mel(Tiny.Chirp(1.0));
        foreach (var name in Voice.SamplerNames)
        {
            var opts = new SynthesisOptions
            {
                Sampler = v.Voice.Sampler(name, name == "wavegrad" ? null : "3"), ChunkFrames = 40, Consistency = ConsistencySteps.None,
            };
            var oneShot = v.Synthesize(mel, opts);
            Assert.Equal(mel.shape[1] * 256, oneShot.Length);
            Assert.All(oneShot, s => Assert.True(float.IsFinite(s)));
            var streamed = v.SynthesizeStreaming(mel, opts).SelectMany(c => c).ToArray();
            double l1 = (Tiny.Mel(streamed) - Tiny.Mel(oneShot)).abs().mean().item<float>();
            Assert.True(l1 < 0.05, $"{name}: streamed vs one-shot log-mel L1 {l1}");
        }
        // An fp16 export loads and renders too.
        v.Voice.Export(tmp["exported"]);
        using var exported = Vocoder.Load(tmp["exported"]);
        Assert.Equal(mel.shape[1] * 256, exported.Synthesize(mel).Length);
        // The card counts the CPU time the weights have had, and a run started from them adds its own to theirs.
        double Training(string dir, string field) => Voice.Load(dir).Card["training"]![field]!.GetValue<double>();
        double own = Training(tmp["run"], "cpu_minutes");
        Assert.True(own > 0 && own == Training(tmp["run"], "cpu_minutes_in_all"), $"{own} CPU minutes");
        Assert.Equal(own, Training(tmp["exported"], "cpu_minutes_in_all"));
        VocoderTrainer.Run(o with { OutputDir = tmp["continued"], Steps = 5, InitFrom = tmp["exported"] });
        Assert.Equal(own, Training(tmp["continued"], "cpu_minutes_before"));
        Assert.True(Training(tmp["continued"], "cpu_minutes_in_all") >= own);
    }
}
