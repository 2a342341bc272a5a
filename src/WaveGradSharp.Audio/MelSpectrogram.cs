using TorchSharp;
using static TorchSharp.torch;
using WaveGradSharp.Core;

namespace WaveGradSharp.Audio;

/// <summary>Log-mel spectrogram as torchaudio's <c>MelSpectrogram</c> (centred framing) or HiFi-GAN's <c>mel_spectrogram</c>
/// (HiFi-GAN framing) computes it (reflect padding, periodic Hann window), followed by the config's log compression. Works on whatever device the
/// audio is on; the window and filter
/// bank are cached per device. Dispose it to free the cached tensors.</summary>
public sealed class MelSpectrogram : IDisposable
{
    readonly object gate = new();
    readonly Dictionary<string, (Tensor Window, Tensor FbT)> cache = new();
    readonly double[,] fb;

    /// <summary>The configuration this transform applies.</summary>
    public MelConfig Config { get; }

    /// <summary>Builds the transform (the filter bank is computed once here, in float64).</summary>
    public MelSpectrogram(MelConfig cfg)
    {
        Config = cfg.Validate();
        fb = cfg.FilterBank();
    }

    /// <summary>The window and the transposed filter bank [NMels, NFreqs] (float32) on <paramref name="device"/>;
    /// owned by this object, never by a dispose scope.</summary>
    internal (Tensor Window, Tensor FbT) Buffers(Device device)
    {
        string key = device.ToString();
        lock (gate)
        {
            if (cache.TryGetValue(key, out var b)) return b;
            int nF = Config.NFreqs, nM = Config.NMels;
            var fbT = new float[nM * nF];
            for (int k = 0; k < nF; k++)
                for (int m = 0; m < nM; m++)
                    fbT[m * nF + k] = (float)fb[k, m];
            var win = hann_window(Config.WinLength, periodic: true, dtype: float32).to(device).DetachFromDisposeScope();
            var fbt = tensor(fbT, new long[] { nM, nF }).to(device).DetachFromDisposeScope();
            cache[key] = (win, fbt);
            return (win, fbt);
        }
    }

    /// <summary>Log-mel of <paramref name="audio"/>: float32 [T] → [NMels, F], or [B, T] → [B, NMels, F] with F = <see cref="MelConfig.Frames"/>,
    /// on the audio's device. T must exceed the reflect padding.</summary>
    public Tensor Compute(Tensor audio)
    {
        using var scope = NewDisposeScope();
        return Compress(Magnitude(audio)).MoveToOuterDisposeScope();
    }

    /// <summary>The mel magnitudes before log compression (power 1 or 2 per the config), same shapes as <see cref="Compute(Tensor)"/>.</summary>
    public Tensor ComputeLinear(Tensor audio)
    {
        using var scope = NewDisposeScope();
        return Magnitude(audio).MoveToOuterDisposeScope();
    }

    Tensor Magnitude(Tensor audio)
    {
        if (audio.dim() is not (1 or 2)) throw new ArgumentException($"audio must be [T] or [B, T], got [{string.Join(", ", audio.shape)}]", nameof(audio));
        if (!audio.is_floating_point()) throw new ArgumentException($"audio must be floating point, got {audio.dtype}", nameof(audio));
        long t = audio.shape[^1];
        if (t <= Config.Padding || Config.Frames(t) < 1)
            throw new WaveGradException($"audio of {t} samples is too short for the mel frontend '{Config.Name}': " +
                $"it needs more than {Math.Max(Config.Padding, Config.NFft - 2 * Config.Padding + Config.Hop - 1)} samples");
        var x = audio.dtype == float32 ? audio : audio.to_type(float32);
        var (win, _) = Buffers(x.device);
        // Padding (centred: n_fft/2; HiFi-GAN: (n_fft − hop)/2) done once, then the STFT without centring in chunks of
        // frames: the temporaries stay a few MB, which the allocator reuses; whole-signal temporaries of tens of MB
        // cost more in fresh-page faults than the FFTs themselves.
        int pad = Config.Padding;
        var shape = x.shape;
        var padded = nn.functional.pad(x.reshape(-1, 1, t), [pad, pad], PaddingModes.Reflect).reshape([.. shape[..^1], t + 2 * pad]);
        long frames = Config.Frames(t);
        long chunk = Math.Max(16, (1 << 18) / Config.NFft);
        var parts = new List<Tensor>();
        for (long f0 = 0; f0 < frames; f0 += chunk)
        {
            long f1 = Math.Min(frames, f0 + chunk);
            var seg = padded.narrow(-1, f0 * Config.Hop, (f1 - 1 - f0) * Config.Hop + Config.NFft);
            var spec = stft(seg, Config.NFft, Config.Hop, Config.WinLength, win, center: false, normalized: false, onesided: true, return_complex: true);
            parts.Add(MelOfStft(spec));
        }
        return parts.Count == 1 ? parts[0] : cat(parts, -1);
    }

    /// <summary>Mel magnitudes (power 1 or 2 per the config) of a complex one-sided STFT [.., NFreqs, frames] made
    /// with this config's window: |X| (√(|X|² + ε) with the config's epsilon; over the window's norm if the config
    /// normalises), squared for power 2, times the filter bank → [.., NMels, frames].</summary>
    internal Tensor MelOfStft(Tensor spec)
    {
        var (win, fbT) = Buffers(spec.device);
        var mag = Config.MagnitudeEpsilon > 0 ? (spec.real * spec.real + spec.imag * spec.imag + Config.MagnitudeEpsilon).sqrt() : spec.abs();
        if (Config.NormalizedWindow) mag = mag / (win * win).sum().sqrt();
        if (Config.Power == 2) mag = mag * mag;
        return matmul(fbT, mag); // [NMels, F] @ [.., F, frames]
    }

    /// <summary>Applies the config's log compression to mel magnitudes (see <see cref="MelConfig.Compress"/>).</summary>
    public Tensor Compress(Tensor mel) => Config.Compress(mel);

    /// <summary>Undoes the log compression (see <see cref="MelConfig.Decompress"/>).</summary>
    public Tensor Decompress(Tensor logMel) => Config.Decompress(logMel);

    /// <summary>Convenience: log-mel [NMels, frames] of mono samples on the CPU.</summary>
    public Tensor Compute(ReadOnlySpan<float> samples)
    {
        using var scope = NewDisposeScope();
        var x = tensor(samples.ToArray());
        return Compute(x).MoveToOuterDisposeScope();
    }

    /// <summary>Frees the cached window and filter-bank tensors.</summary>
    public void Dispose()
    {
        lock (gate)
        {
            foreach (var (w, f) in cache.Values) { w.Dispose(); f.Dispose(); }
            cache.Clear();
        }
    }
}
