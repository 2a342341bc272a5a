using TorchSharp;
using static TorchSharp.torch;
using WaveGradSharp.Core;

namespace WaveGradSharp.Audio;

/// <summary>The non-neural baseline: mel → linear magnitude (non-negative least squares against the filter bank) → phase by fast
/// Griffin-Lim (Perraudin, Balazs and Søndergaard 2013: each iterate is pushed by <c>momentum</c> × its last change).</summary>
public static class GriffinLim
{
    /// <summary>Multiplicative non-negative least-squares updates applied to the pseudo-inverse magnitude.</summary>
    public const int NnlsIterations = 50;

    /// <summary>The fewest mel frames Griffin-Lim can invert: the (F − 1)·hop samples it makes must be longer than the
    /// STFT's reflect padding of n_fft/2.</summary>
    public static int MinFrames(MelConfig cfg) => cfg.NFft / 2 / cfg.Hop + 2;

    /// <summary>Samples <see cref="FromMel"/> returns for <paramref name="frames"/> frames: (frames − 1)·hop centred, frames·hop with
    /// HiFi-GAN's framing (whose frame f is the centred frame f of the waveform advanced by hop/2; the samples before the
    /// first centre and after the last stay silent).</summary>
    public static long Samples(MelConfig cfg, long frames) => cfg.Framing == MelFraming.HifiGan ? frames * cfg.Hop : (frames - 1) * cfg.Hop;

    /// <summary>Renders a waveform from a log-mel [n_mels, frames] (or [1, n_mels, frames]) made with <paramref name="cfg"/>.
    /// Returns <see cref="Samples"/> samples at cfg.SampleRate. Deterministic: the initial phase comes from a fixed seed.</summary>
    /// <param name="logMel">Log-mel in the config's compression, on any device.</param>
    /// <param name="cfg">The mel settings the log-mel was made with.</param>
    /// <param name="iters">Griffin-Lim iterations (each one ISTFT + STFT).</param>
    /// <param name="momentum">0 gives classic Griffin-Lim; 0.99 is the 'fast' variant.</param>
    public static float[] FromMel(Tensor logMel, MelConfig cfg, int iters = 64, double momentum = 0.99)
    {
        if (iters < 0) throw new ArgumentOutOfRangeException(nameof(iters));
        if (!(momentum >= 0 && momentum < 1)) throw new ArgumentOutOfRangeException(nameof(momentum), "momentum must be in [0, 1)");
        using var scope = NewDisposeScope();
        var mel = logMel.dim() == 3 && logMel.shape[0] == 1 ? logMel[0] : logMel;
        MelFile.CheckNMels(mel, cfg.NMels, "griffin-lim input");
        if (mel.dim() != 2) throw new ArgumentException("Griffin-Lim takes one mel at a time", nameof(logMel));
        if (mel.shape[1] < MinFrames(cfg))
            throw new WaveGradException($"griffin-lim input: {mel.shape[1]} frames is too short; {cfg.Name} needs at least {MinFrames(cfg)}");
        using var ms = new MelSpectrogram(cfg);
        var dev = mel.device;
        var (win, _) = ms.Buffers(dev);
        var lin = ms.Decompress(mel.to_type(float32)); // [M, N] mel magnitude (or power)

        // Non-negative least squares for |S| in mel = Fᵀ·|S|: start from the clipped pseudo-inverse, then multiplicative
        // (Lee–Seung) updates, which keep |S| ≥ 0 and lower ‖mel − Fᵀ|S|‖ at every step (halves the log-mel error of the
        // pseudo-inverse alone on hifigan-22k's 80 bands).
        var fb = cfg.FilterBank();
        var fbRows = new double[cfg.NMels * cfg.NFreqs];
        for (int k = 0; k < cfg.NFreqs; k++)
            for (int m = 0; m < cfg.NMels; m++) fbRows[m * cfg.NFreqs + k] = fb[k, m];
        var fbT = tensor(fbRows, new long[] { cfg.NMels, cfg.NFreqs });
        var pinv = linalg.pinv(fbT).to_type(float32).to(dev); // [F, M]
        var fbt = fbT.to_type(float32).to(dev); // [M, F]
        var at = fbt.t();
        var num = matmul(at, lin);
        var spec = matmul(pinv, lin).clamp_min(0) + 1e-6;
        for (int i = 0; i < NnlsIterations; i++) spec = spec * num / (matmul(at, matmul(fbt, spec)) + 1e-12);
        if (cfg.Power == 2) spec = spec.sqrt();
        if (cfg.NormalizedWindow) spec = spec * (win * win).sum().sqrt();

        long frames = spec.shape[1];
        long length = (frames - 1) * cfg.Hop;
        var gen = new Generator(20240917);
        var phase = rand(spec.shape, generator: gen).to(dev) * (2 * Math.PI);
        var angles = polar(ones_like(phase), phase);
        Tensor? prev = null;
        for (int i = 0; i < iters; i++)
        {
            using var step = NewDisposeScope();
            var y = istft(spec * angles, cfg.NFft, cfg.Hop, cfg.WinLength, win, center: true, normalized: false, onesided: true, length: length);
            var rebuilt = stft(y, cfg.NFft, cfg.Hop, cfg.WinLength, win, center: true, pad_mode: PaddingModes.Reflect,
                normalized: false, onesided: true, return_complex: true);
            var next = prev is null || momentum == 0 ? rebuilt : rebuilt + (rebuilt - prev) * momentum;
            var a = next / (next.abs() + 1e-16);
            prev?.Dispose();
            prev = rebuilt.MoveToOuterDisposeScope();
            angles.Dispose();
            angles = a.MoveToOuterDisposeScope();
        }
        var wave = istft(spec * angles, cfg.NFft, cfg.Hop, cfg.WinLength, win, center: true, normalized: false, onesided: true, length: length);
        var result = new float[Samples(cfg, frames)];
        wave.to(CPU).data<float>().CopyTo(result, cfg.FrameOffset);
        return result;
    }
}
