using CsCheck;
using WaveGradSharp.Core;
using static TorchSharp.torch;

namespace WaveGradSharp.Audio.Tests;

/// <summary>Properties over random inputs (CsCheck shrinks a failure to its smallest case).</summary>
public class PropertyTests
{
    [Fact]
    public void Npy_files_round_trip_any_2d_or_3d_float_array()
    {
        var shapes = Gen.Int[1, 5].Array[2, 3];
        Gen.Select(shapes, Gen.Float[-1e6f, 1e6f].Array[1, 200]).Sample((shape, values) =>
        {
            long n = shape.Aggregate(1L, (a, b) => a * b);
            var data = Enumerable.Range(0, (int)n).Select(i => values[i % values.Length]).ToArray();
            using var t = tensor(data, shape.Select(x => (long)x).ToArray());
            string path = Path.GetTempFileName();
            try
            {
                Npy.Write(path, t);
                var (back, backShape) = Npy.Read(path);
                return backShape.SequenceEqual(shape.Select(x => (long)x)) && back.SequenceEqual(data);
            }
            finally { File.Delete(path); }
        }, iter: 200);
    }

    [Fact]
    public void Escaped_text_never_holds_a_control_character_and_plain_text_is_unchanged()
    {
        Gen.String.Sample(s => !Text.Escape(s, 10_000).Any(c => char.IsControl(c)), iter: 2000);
        Gen.String[Gen.Char['a', 'z'], 0, 50].Sample(s => Text.Escape(s) == s, iter: 500);
    }

    [Fact]
    public void Pcm16_wav_round_trips_within_half_a_step()
    {
        Gen.Float[-1f, 1f].Array[1, 3000].Sample(x =>
        {
            string path = Path.Combine(Path.GetTempPath(), $"wg-prop-{Guid.NewGuid():N}.wav");
            try
            {
                Wav.Write(path, x, 22050);
                var y = Wav.Read(path, 22050);
                return y.Length == x.Length && x.Zip(y).All(p => Math.Abs(p.First - p.Second) <= 0.5 / 32768 + 1e-7 || p.First >= 32767f / 32768);
            }
            finally { File.Delete(path); }
        }, iter: 100);
    }

    [Fact]
    public void Frame_counts_follow_the_framing_for_any_length()
    {
        using var hifi = new MelSpectrogram(MelConfig.Preset("hifigan-22k"));
        using var centred = new MelSpectrogram(MelConfig.Preset("hifigan-22k-centered"));
        Gen.Int[600, 6000].Sample(t =>
        {
            using var x = randn(t);
            return hifi.Compute(x).shape[1] == t / 256 && centred.Compute(x).shape[1] == t / 256 + 1
                && hifi.Config.Frames(t) == t / 256 && centred.Config.Frames(t) == t / 256 + 1;
        }, iter: 100);
    }
}
