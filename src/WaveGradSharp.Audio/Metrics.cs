using TorchSharp;
using static TorchSharp.torch;
using WaveGradSharp.Core;

namespace WaveGradSharp.Audio;

/// <summary>Objective distances between a reference and a test waveform (both mono, same rate, trimmed to the shorter): spectra and pitch.</summary>
/// <param name="LogMelL1">Mean |log-mel(ref) − log-mel(test)| in the mel config's own log scale.</param>
/// <param name="SpectralConvergence">‖|S| − |Ŝ|‖_F / ‖|S|‖_F, averaged over the three STFT resolutions.</param>
/// <param name="LogMagnitude">mean |ln|S| − ln|Ŝ||, averaged over the three resolutions.</param>
/// <param name="MrStft">SpectralConvergence + LogMagnitude (the multi-resolution STFT distance).</param>
/// <param name="Mcd">Mel-cepstral distortion in dB: 10/ln10·√2·mean_t ‖c_t − ĉ_t‖ over c1…c24, no time warping.</param>
/// <param name="Snr">10·log10(Σref² / Σ(ref − test)²) in dB (+∞ when identical).</param>
/// <param name="Samples">Samples compared.</param>
/// <param name="Pitch">Voicing F1, F0 RMSE in cents and periodicity RMSE of the test against the reference (<see cref="Audio.Pitch"/>).</param>
public sealed record AudioMetrics(double LogMelL1, double SpectralConvergence, double LogMagnitude, double MrStft, double Mcd, double Snr, long Samples,
    PitchScores Pitch);

/// <summary>Computes <see cref="AudioMetrics"/>.</summary>
public static class Metrics
{
    /// <summary>(n_fft, window, hop) of the multi-resolution STFT distance (Parallel WaveGAN's settings).</summary>
    public static readonly (int NFft, int Win, int Hop)[] Resolutions = [(1024, 600, 120), (2048, 1200, 240), (512, 240, 50)];

    /// <summary>Cepstral coefficients c1…c<see cref="McdOrder"/> enter the MCD.</summary>
    public const int McdOrder = 24;

    /// <summary>Mel-cepstral distortion in dB between two linear mels [n_mels, frames]: the cepstrum is
    /// c_k = (1/M)·Σ_m ln(max(mel_m, 1e-5))·cos(πk(m+½)/M), so that ln mel_m = c_0 + 2·Σ_k c_k·cos(πk(m+½)/M); then
    /// 10/ln10·√2·mean over frames of ‖c − ĉ‖ over k = 1…<see cref="McdOrder"/> (c_0, the loudness, is left out).</summary>
    public static double Mcd(Tensor linearMelRef, Tensor linearMelTest)
    {
        using var scope = NewDisposeScope();
        int nMels = (int)linearMelRef.shape[^2];
        int order = Math.Min(McdOrder, nMels - 1);
        var dct = new float[order * nMels];
        for (int k = 1; k <= order; k++)
            for (int m = 0; m < nMels; m++)
                dct[(k - 1) * nMels + m] = (float)(Math.Cos(Math.PI * k * (m + 0.5) / nMels) / nMels);
        var d = tensor(dct, new long[] { order, nMels });
        var diff = linearMelRef.clamp_min(1e-5).log() - linearMelTest.clamp_min(1e-5).log();
        var dc = matmul(d, diff); // [order, frames]
        return 10.0 / Math.Log(10) * Math.Sqrt(2) * (dc * dc).sum(dim: 0L).sqrt().mean().item<float>();
    }

    /// <summary>
    /// The multi-resolution STFT distance of <paramref name="test"/> [B, T] to <paramref name="reference"/> [B, T], per
    /// example and differentiable (a training loss as well as a metric): spectral convergence ‖|S| − |Ŝ|‖_F / ‖|S|‖_F and
    /// log-magnitude distance mean |ln|S| − ln|Ŝ||, each averaged over <see cref="Resolutions"/>. Magnitudes are floored
    /// at √1e-7. Returns ([B], [B]).
    /// </summary>
    public static (Tensor SpectralConvergence, Tensor LogMagnitude) MultiResolutionStft(Tensor reference, Tensor test)
    {
        using var scope = NewDisposeScope();
        Tensor sc = zeros(reference.shape[0], device: reference.device), lm = zeros(reference.shape[0], device: reference.device);
        foreach (var (sa, sb) in Spectra(reference, test))
        {
            var a = sa.abs().clamp_min(MathF.Sqrt(1e-7f)); var b = sb.abs().clamp_min(MathF.Sqrt(1e-7f));
            var d = a - b;
            sc = sc + (d * d).sum([1, 2]).sqrt() / (a * a).sum([1, 2]).sqrt().clamp_min(1e-12);
            lm = lm + (a.log() - b.log()).abs().mean([1, 2]);
        }
        int n = Resolutions.Length;
        return ((sc / n).MoveToOuterDisposeScope(), (lm / n).MoveToOuterDisposeScope());
    }

    /// <summary>
    /// How far the phase derivatives of <paramref name="test"/> [B, T] are from <paramref name="reference"/>'s [B, T], per example
    /// and differentiable: at each of <see cref="Resolutions"/>, the frame-to-frame phase advance of every bin (the instantaneous
    /// frequency, the angle of X[k, t]·X*[k, t−1]) and the bin-to-bin phase step of every frame (the group delay, the angle of
    /// X[k, t]·X*[k−1, t]), each as a unit phasor; the distance |û − u| = 2|sin(Δ/2)| of the two phasors (Δ the phase
    /// difference, with no wrapping to undo) is averaged with the reference's magnitude √(|X[a]|·|X[b]|) as the weight, so silent
    /// bins do not count. Half instantaneous frequency, half group delay, averaged over the resolutions: 0 when the derivatives
    /// agree, up to 2. Where the analysis resolves the harmonics, turning a harmonic by a constant angle (the absolute phase, which
    /// a mel cannot tell) changes neither derivative, while a pitch 3 % off changes both; unlike a distance between the complex
    /// spectra, it asks an estimate for the phase's motion, not for the phase. Returns [B].
    /// </summary>
    public static Tensor PhaseDerivativeError(Tensor reference, Tensor test)
    {
        using var scope = NewDisposeScope();
        var total = zeros(reference.shape[0], device: reference.device);
        foreach (var (a, b) in Spectra(reference, test))
        {
            foreach (int dim in new[] { 2, 1 })            // along time (instantaneous frequency), along frequency (group delay)
            {
                long n = a.shape[dim];
                Tensor Step(Tensor x) => x.narrow(dim, 1, n - 1) * x.narrow(dim, 0, n - 1).conj();
                var pa = Step(a); var pb = Step(b);
                var ma = pa.abs();
                var weight = ma.sqrt();
                var ua = pa / (ma + 1e-6); var ub = pb / (pb.abs() + 1e-6);
                var distance = (ua - ub).abs();
                total = total + (weight * distance).sum([1, 2]) / weight.sum([1, 2]).clamp_min(1e-12) / 2;
            }
        }
        return (total / Resolutions.Length).MoveToOuterDisposeScope();
    }

    /// <summary>The complex centred STFTs [B, bins, frames] of both waveforms at each of <see cref="Resolutions"/> (Hann window,
    /// reflected edges), for the distances above; made in the caller's dispose scope.</summary>
    static IEnumerable<(Tensor Reference, Tensor Test)> Spectra(Tensor reference, Tensor test)
    {
        foreach (var (nFft, winLen, hop) in Resolutions)
        {
            var w = hann_window(winLen, periodic: true, device: reference.device);
            Tensor Stft(Tensor x) => stft(x, nFft, hop, winLen, w, center: true, pad_mode: PaddingModes.Reflect, normalized: false,
                onesided: true, return_complex: true);
            yield return (Stft(reference), Stft(test));
        }
    }

    /// <summary>Mean |a − b| of two log-mels [n_mels, frames] over the frames both have (the preset's own log units).</summary>
    public static double LogMelL1(Tensor a, Tensor b)
    {
        using var scope = NewDisposeScope();
        long f = Math.Min(a.shape[^1], b.shape[^1]);
        return (a[.., ..(int)f] - b[.., ..(int)f]).abs().mean().item<float>();
    }

    /// <summary>Mel config used when none is given: hifigan-22k, with its sample rate (and f_max, if needed) moved to <paramref name="sampleRate"/>.</summary>
    public static MelConfig DefaultMel(int sampleRate)
    {
        var c = MelConfig.Preset(MelConfig.DefaultPreset);
        return sampleRate == c.SampleRate ? c : c with { Name = $"{c.Name}@{sampleRate}", SampleRate = sampleRate, FMax = Math.Min(c.FMax, sampleRate / 2.0) };
    }

    /// <summary>All metrics of <paramref name="test"/> against <paramref name="reference"/> at <paramref name="sampleRate"/> Hz.
    /// The log-mel L1 and MCD use <paramref name="mel"/> (default <see cref="DefaultMel"/>), whose rate must match.</summary>
    public static AudioMetrics Compute(float[] reference, float[] test, int sampleRate, MelConfig? mel = null)
    {
        mel ??= DefaultMel(sampleRate);
        if (mel.SampleRate != sampleRate) throw new ArgumentException($"mel config '{mel.Name}' is for {mel.SampleRate} Hz, audio is {sampleRate} " +
            "Hz", nameof(mel));
        int n = Math.Min(reference.Length, test.Length);
        int need = Math.Max(Resolutions.Max(r => r.NFft), mel.NFft) / 2 + 1;
        if (n < need) throw new WaveGradException($"audio too short to score: {n} samples after trimming to the shorter file, need at least {need}");

        using var scope = NewDisposeScope();
        var r = tensor(reference.AsSpan(0, n).ToArray());
        var t = tensor(test.AsSpan(0, n).ToArray());

        var (scT, lmT) = MultiResolutionStft(r.unsqueeze(0), t.unsqueeze(0));
        double sc = scT.item<float>(), lm = lmT.item<float>();

        using var ms = new MelSpectrogram(mel);
        var linR = ms.ComputeLinear(r); var linT = ms.ComputeLinear(t);
        double l1 = LogMelL1(ms.Compress(linR), ms.Compress(linT));

        double mcd = Mcd(linR, linT);

        double er = 0, ee = 0;
        for (int i = 0; i < n; i++) { double d = reference[i] - test[i]; er += (double)reference[i] * reference[i]; ee += d * d; }
        double snr = ee == 0 ? double.PositiveInfinity : 10 * Math.Log10(er / ee);
        var pitch = Audio.Pitch.Compare(reference.AsSpan(0, n), test.AsSpan(0, n), sampleRate);
        return new AudioMetrics(l1, sc, lm, sc + lm, mcd, snr, n, pitch);
    }
}
