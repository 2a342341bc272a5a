using BenchmarkDotNet.Attributes;
using WaveGradSharp.Audio;
using static TorchSharp.torch;

namespace WaveGradSharp.Benchmarks;

/// <summary>The speed targets on 60 s of 22.05 kHz audio: log-mel ≥ 300× real time, WAV read + resample ≥ 500×.
/// Real-time factor = 60 s / the mean reported here.</summary>
[MemoryDiagnoser]
public class AudioFrontendBenchmarks
{
    const int Rate = 22050, Seconds = 60;
    float[] audio = [];
    string wavPath = "";
    MelSpectrogram mel = null!;
    Tensor? logMel60s;

    [GlobalSetup]
    public void Setup()
    {
        set_num_threads(2);
        var rng = new Random(7);
        audio = new float[Rate * Seconds];
        for (int i = 0; i < audio.Length; i++)
        {
            double t = (double)i / Rate;
            double f0 = 110 + 40 * Math.Sin(2 * Math.PI * 0.5 * t);
            double v = 0;
            for (int h = 1; h <= 10; h++) v += 0.08 / h * Math.Sin(2 * Math.PI * f0 * h * t);
            audio[i] = (float)(v + 0.005 * (rng.NextDouble() - 0.5));
        }
        wavPath = Path.Combine(Path.GetTempPath(), $"wgs-bench-{Environment.ProcessId}.wav");
        Wav.Write(wavPath, audio, Rate);
        mel = new MelSpectrogram(MelConfig.Preset("hifigan-22k"));
        logMel60s = mel.Compute(tensor(audio));
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        mel.Dispose();
        logMel60s?.Dispose();
        File.Delete(wavPath);
    }

    /// <summary>float[] → tensor → log-mel [80, 5169] (hifigan-22k).</summary>
    [Benchmark]
    public long LogMel60s()
    {
        using var scope = NewDisposeScope();
        return mel.Compute(tensor(audio)).shape[1];
    }

    /// <summary>The vocoder's default post-filter (4 passes) on 60 s of audio at half the level its mel asks for.</summary>
    [Benchmark]
    public int MelPostFilter60s()
    {
        using var scope = NewDisposeScope();
        var target = mel.Compute(tensor(audio));
        var render = audio.Select(v => v * 0.5f).ToArray();
        return MelPostFilter.Apply(render, target, mel.Config, 4).Length;
    }

    /// <summary>The vocoder's default start: Griffin-Lim (64 iterations) of the 60 s log-mel (made in the setup).</summary>
    [Benchmark]
    public int GriffinLimStart60s()
    {
        using var scope = NewDisposeScope();
        return GriffinLim.FromMel(logMel60s!, mel.Config, 64).Length;
    }

    /// <summary>Read a 60 s 16-bit 22.05 kHz WAV and resample it to 24 kHz.</summary>
    [Benchmark]
    public int WavReadResample60s() => Wav.Read(wavPath, 24000).Length;

    /// <summary>Read the same WAV without resampling.</summary>
    [Benchmark]
    public int WavRead60s() => Wav.Read(wavPath, Rate).Length;
}
