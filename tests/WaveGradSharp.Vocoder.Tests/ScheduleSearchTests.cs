using WaveGradSharp.Audio;
using WaveGradSharp.Diffusion;
using static TorchSharp.torch;

namespace WaveGradSharp.Vocoder.Tests;

public class ScheduleSearchTests
{
    static List<Utterance> Clips()
    {
        var x = Tiny.Chirp(0.3);
        var audio = tensor(x)[..(int)(x.Length / 256 * 256)];
        return [new Utterance("chirp", audio, Tiny.Mel(audio.data<float>().ToArray())[.., ..(int)(x.Length / 256)])];
    }

    [Theory]
    [InlineData(ScheduleMetric.LogMelL1)]
    [InlineData(ScheduleMetric.SpectralConvergence)]
    public void TheSearchStartsFromTheGivenScheduleAndNeverEndsWorse(ScheduleMetric metric)
    {
        using var tmp = new TempDir();
        using var vocoder = Vocoder.Load(Tiny.SaveVoice(tmp["v"]));
        var clips = Clips();
        var steps = new List<SearchStep>();
        var start = NoiseSchedule.Named("wg-3");   // [3e-4, 6e-2, 0.9]: mantissas 3, 6, 9 of 1e-4, 1e-2, 1e-1
        var (best, score) = ScheduleSearch.Run(vocoder, clips, 3, sweeps: 1, new Sync(steps.Add), metric: metric, start: start);
        Assert.Equal([3e-4, 6e-2, 0.9], steps[0].Betas.Select(b => Math.Round(b, 12)));
        // One sweep tries the 8 other mantissas of each of the 3 steps once.
        Assert.Equal(1 + 3 * 8, steps.Count);
        Assert.Equal(steps.Min(s => s.Score), score, 12);
        Assert.Equal(score, ScheduleSearch.Score(vocoder, clips, best, metric), 6);   // the reported score is reproducible
        // Every candidate keeps the start's powers of ten.
        double[] exps = [1e-4, 1e-2, 1e-1];
        Assert.All(steps, s => Assert.All(s.Betas.Select((b, i) => b / exps[i]), m => Assert.InRange(m, 0.999, 9.001)));
        if (metric == ScheduleMetric.SpectralConvergence)
        {
            // Scored from noise (every step runs), with the post-filter on.
            var options = new SynthesisOptions { Sampler = DdpmSampler.WaveGrad(best), Seed = 7, Start = SamplerStart.Noise };
            var filtered = vocoder.Synthesize(clips[0].Mel, options);
            var sc = Metrics.Compute(clips[0].Audio.data<float>().ToArray(), filtered, vocoder.SampleRate, vocoder.Voice.Mel).SpectralConvergence;
            Assert.Equal(sc, score, 6);
        }
    }

    [Fact]
    public void AnOffGridStartIsScoredAsItIsRoundedHalfUpAndKeptUnlessBeaten()
    {
        using var tmp = new TempDir();
        using var vocoder = Vocoder.Load(Tiny.SaveVoice(tmp["v"]));
        var clips = Clips();
        var steps = new List<SearchStep>();
        // Mantissas 1.4 → 1, 3.5 → 4 (0.35 / 0.1 is 3.4999999999999996 in floating point) and 7.
        var start = new NoiseSchedule([1.4e-4, 0.35, 0.7], "start");
        var (best, score) = ScheduleSearch.Run(vocoder, clips, 3, sweeps: 1, new Sync(steps.Add), start: start);
        Assert.Equal(start.Betas, steps[0].Betas);                                   // the start itself, first
        Assert.Equal([1e-4, 0.4, 0.7], steps[1].Betas.Select(b => Math.Round(b, 12))); // then its grid point
        Assert.Equal(2 + 3 * 8, steps.Count);
        Assert.True(score <= steps[0].Score, $"returned {score}, worse than the start's {steps[0].Score}");
        Assert.Equal(steps.Min(s => s.Score), score, 12);
        Assert.Equal(score, ScheduleSearch.Score(vocoder, clips, best), 6);
    }

    [Fact]
    public void DdimsLevelSearchStartsEvenKeepsTimestepZeroAndNeverEndsWorse()
    {
        using var tmp = new TempDir();
        using var vocoder = Vocoder.Load(Tiny.SaveVoice(tmp["v"]));
        var clips = Clips();
        var steps = new List<LevelSearchStep>();
        var (best, score) = ScheduleSearch.SearchLevels(vocoder, clips, 3, sweeps: 1, new SyncLevels(steps.Add),
            metric: ScheduleMetric.RawSpectralConvergence);
        Assert.Equal([0, 500, 999], steps[0].Timesteps);   // evenly spaced over the 1,000 training steps
        Assert.True(steps.Count <= 1 + 2 * 8, $"{steps.Count} candidates");
        Assert.All(steps, s => Assert.Equal(0, s.Timesteps[0]));
        Assert.All(steps, s => Assert.True(s.Timesteps.Zip(s.Timesteps.Skip(1)).All(p => p.First < p.Second), string.Join(",", s.Timesteps)));
        Assert.True(score <= steps[0].Score);
        Assert.Equal(steps.Min(s => s.Score), score, 12);
        // The result renders through the voice's sampler by name, as a card's default_sampler would give it.
        var sampler = vocoder.Voice.Sampler("ddim", string.Join(",", best));
        Assert.Equal(score, ScheduleSearch.Score(vocoder, clips, sampler, ScheduleMetric.RawSpectralConvergence), 6);
        foreach (var bad in new[] { "0,abc", "0,500,400", "0,1000" })
            Assert.Contains("Steps", Assert.Throws<WaveGradSharp.Core.WaveGradException>(() => vocoder.Voice.Sampler("ddim", bad)).Message);
    }

    sealed class Sync(Action<SearchStep> a) : IProgress<SearchStep> { public void Report(SearchStep s) => a(s); }
    sealed class SyncLevels(Action<LevelSearchStep> a) : IProgress<LevelSearchStep> { public void Report(LevelSearchStep s) => a(s); }
}
