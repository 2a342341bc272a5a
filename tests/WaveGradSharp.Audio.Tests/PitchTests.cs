using WaveGradSharp.Audio;

namespace WaveGradSharp.Audio.Tests;

public class PitchTests
{
    const int Rate = 22050;

    /// <summary>A harmonic tone (three partials) at <paramref name="hz"/>, 0.4 peak.</summary>
    static float[] Tone(double hz, double seconds = 1.0)
    {
        var x = new float[(int)(seconds * Rate)];
        for (int i = 0; i < x.Length; i++)
        {
            double p = 2 * Math.PI * hz * i / Rate;
            x[i] = (float)(0.25 * Math.Sin(p) + 0.1 * Math.Sin(2 * p) + 0.05 * Math.Sin(3 * p));
        }
        return x;
    }

    static float[] Noise(double seconds = 1.0, int seed = 1)
    {
        var r = new Random(seed);
        return Enumerable.Range(0, (int)(seconds * Rate)).Select(_ => (float)(0.2 * (r.NextDouble() * 2 - 1))).ToArray();
    }

    [Theory]
    [InlineData(80)]
    [InlineData(150)]
    [InlineData(220)]
    [InlineData(440)]
    public void ATonesPitchIsFoundWithinACent(double hz)
    {
        var track = Pitch.Track(Tone(hz), Rate);
        var inside = Enumerable.Range(5, track.F0.Length - 10).ToList();   // away from the zero padding at the ends
        Assert.All(inside, k => Assert.True(track.Voiced[k], $"frame {k} unvoiced"));
        double worst = inside.Max(k => Math.Abs(1200 * Math.Log2(track.F0[k] / hz)));
        Assert.True(worst < 1, $"worst error {worst:F2} cents");
        Assert.True(inside.Min(k => track.Periodicity[k]) > 0.95);
    }

    [Fact]
    public void NoiseAndSilenceAreUnvoiced()
    {
        var noise = Pitch.Track(Noise(), Rate);
        Assert.True(noise.Voiced.Count(v => v) <= noise.Voiced.Length / 20, $"{noise.Voiced.Count(v => v)} noise frames voiced");
        Assert.True(noise.Periodicity.Average() < 0.6);
        var silence = Pitch.Track(new float[Rate], Rate);
        Assert.DoesNotContain(true, silence.Voiced);
    }

    [Fact]
    public void TheSameToneScoresPerfectly()
    {
        var s = Pitch.Compare(Tone(180), Tone(180), Rate);
        Assert.Equal(1.0, s.VoicingF1);
        Assert.Equal(0.0, s.F0RmseCents, 6);
        Assert.Equal(0.0, s.PeriodicityRmse, 6);
        Assert.Equal(0.0, s.VoicedPeriodicityRmse, 6);
    }

    [Fact]
    public void VoicedPeriodicityLeavesOutTheNoise()
    {
        // The same tone, then two different draws of the same low-passed noise (a room's rumble): over every frame the noise frames
        // differ by chance, over the reference's voiced frames nothing does.
        static float[] Rumble(int seed)
        {
            var x = Noise(0.5, seed);
            for (int i = 1; i < x.Length; i++) x[i] = 0.97f * x[i - 1] + 0.03f * x[i];
            return x;
        }
        var a = Tone(200, 0.5).Concat(Rumble(1)).ToArray();
        var b = Tone(200, 0.5).Concat(Rumble(2)).ToArray();
        var s = Pitch.Compare(a, b, Rate);
        Assert.True(s.PeriodicityRmse > 0.05, $"periodicity RMSE {s.PeriodicityRmse:F3}");
        Assert.True(s.VoicedPeriodicityRmse < 0.01, $"voiced periodicity RMSE {s.VoicedPeriodicityRmse:F3}");
        Assert.True(double.IsNaN(Pitch.Compare(Noise(0.5), Noise(0.5, seed: 2), Rate).VoicedPeriodicityRmse));   // nothing voiced
    }

    [Fact]
    public void ASemitoneShiftIsAHundredCents()
    {
        var s = Pitch.Compare(Tone(180), Tone(180 * Math.Pow(2, 1.0 / 12)), Rate);
        Assert.Equal(1.0, s.VoicingF1, 2);
        Assert.InRange(s.F0RmseCents, 97, 103);
    }

    [Fact]
    public void FlippedVoicingIsCaughtByF1AndPeriodicity()
    {
        // First half tone then noise, against first half noise then tone: every voiced frame of one is unvoiced in the other.
        var a = Tone(200, 0.5).Concat(Noise(0.5)).ToArray();
        var b = Noise(0.5, seed: 2).Concat(Tone(200, 0.5)).ToArray();
        var s = Pitch.Compare(a, b, Rate);
        Assert.True(s.VoicingF1 < 0.15, $"F1 {s.VoicingF1:F3}");
        Assert.True(s.PeriodicityRmse > 0.4, $"periodicity RMSE {s.PeriodicityRmse:F3}");
        Assert.True(s.VoicedPeriodicityRmse > 0.4, $"voiced periodicity RMSE {s.VoicedPeriodicityRmse:F3}");
        var same = Pitch.Compare(a, a, Rate);
        Assert.Equal(1.0, same.VoicingF1);
        // A test that voices nothing has no F0 error to report: NaN, not a perfect 0, and means skip it.
        var unvoiced = Pitch.Compare(Tone(200), Noise(1.0), Rate);
        Assert.Equal(0, unvoiced.BothVoicedFrames);
        Assert.True(double.IsNaN(unvoiced.F0RmseCents));
        Assert.Equal(50.0, AudioFiles.MeanOfFinite([double.NaN, 40, 60]));
        Assert.True(double.IsNaN(AudioFiles.MeanOfFinite([double.NaN])));
    }

    [Fact]
    public void MetricsComputeCarriesThePitchScores()
    {
        var m = Metrics.Compute(Tone(150), Tone(150 * Math.Pow(2, 1.0 / 12)), Rate);
        Assert.InRange(m.Pitch.F0RmseCents, 97, 103);
        Assert.True(m.Pitch.BothVoicedFrames > 80);
    }
}
