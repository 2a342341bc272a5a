using TorchSharp;
using static TorchSharp.torch;

namespace WaveGradSharp.Audio;

/// <summary>
/// Pulls a rendered waveform's spectral envelope onto the mel it was rendered from, keeping its own fine structure
/// (harmonics) and phase: per frame and mel band, the gain target / rendered is spread over the band's STFT bins
/// (geometric mean of the overlapping bands' gains, weighted by the filter bank), the STFT is scaled and inverted.
/// Bins no band covers (above f_max) are left alone. A few passes converge, since the inverse STFT of a scaled STFT
/// is not exactly that STFT. This removes a vocoder's noise floor where the mel says silence and corrects the level of
/// each band, where Griffin-Lim has to invent the phase from scratch.
/// </summary>
public static class MelPostFilter
{
    /// <summary>Largest gain applied to a band (+20 dB): the filter corrects levels, it does not make sound out of silence.</summary>
    public const double MaxGain = 10;

    /// <summary>Returns <paramref name="audio"/> with its mel pulled onto <paramref name="logMel"/> [n_mels, frames]
    /// (made with <paramref name="cfg"/>), same length; <paramref name="passes"/> 0 returns a copy.</summary>
    public static float[] Apply(ReadOnlySpan<float> audio, Tensor logMel, MelConfig cfg, int passes = 2)
    {
        if (passes < 0) throw new ArgumentOutOfRangeException(nameof(passes));
        var samples = audio.ToArray();
        if (passes == 0 || samples.Length <= cfg.NFft / 2) return samples;
        using var scope = NewDisposeScope();
        var mel = logMel.dim() == 3 && logMel.shape[0] == 1 ? logMel[0] : logMel;
        MelFile.CheckNMels(mel, cfg.NMels, "post-filter mel");
        using var ms = new MelSpectrogram(cfg);
        var (win, fbT) = ms.Buffers(CPU);
        var target = ms.Decompress(mel.to(CPU).to_type(float32));
        if (cfg.Power == 2) target = target.sqrt();
        // Each bin's share of each band: column-normalised filter bank; bins that no band covers keep gain 1.
        var weight = fbT.t(); // [F, M]
        var cover = weight.sum(1, keepdim: true);
        var spread = weight / cover.clamp_min(1e-12);
        var covered = cover.gt(0).to_type(float32);
        var norm = cfg.NormalizedWindow ? win.pow(2).sum().sqrt() : null;
        var y = tensor(samples);
        long length = samples.Length;
        for (int p = 0; p < passes; p++)
        {
            using var pass = NewDisposeScope();
            var spec = stft(y, cfg.NFft, cfg.Hop, cfg.WinLength, win, center: true, pad_mode: PaddingModes.Reflect,
                normalized: false, onesided: true, return_complex: true); // [F, N]
            var mag = spec.abs();
            if (norm is not null) mag = mag / norm;
            var rendered = matmul(fbT, cfg.Power == 2 ? mag.square() : mag); // [M, N]
            if (cfg.Power == 2) rendered = rendered.sqrt();
            long n = spec.shape[1];
            var t = AlignFrames(target, n);
            double floor = cfg.LogFloor;
            var logGain = ((t + floor) / (rendered + floor)).clamp(0, MaxGain).clamp_min(1e-6).log(); // [M, N]
            var binGain = (matmul(spread, logGain) * covered).exp(); // [F, N]
            y = istft(spec * binGain, cfg.NFft, cfg.Hop, cfg.WinLength, win, center: true, normalized: false, onesided: true, length: length)
                .MoveToOuterDisposeScope();
        }
        return y.data<float>().ToArray();
    }

    /// <summary>The target's frames cut or extended (last frame repeated) to <paramref name="n"/>.</summary>
    static Tensor AlignFrames(Tensor target, long n)
    {
        long have = target.shape[1];
        if (have >= n) return target[.., ..(int)n];
        return cat([target, target[.., ^1..].expand(target.shape[0], n - have)], 1);
    }
}
