namespace WaveGradSharp.Audio;

/// <summary>A waveform's pitch contour, one value per frame of <see cref="Pitch.HopSeconds"/>.</summary>
/// <param name="F0">Fundamental frequency in Hz (NaN where unvoiced).</param>
/// <param name="Periodicity">1 − YIN's aperiodicity at the chosen lag, in [0, 1]: near 1 for a clean periodic frame, near 0 for noise.</param>
/// <param name="Voiced">Whether the frame is periodic enough and loud enough to carry a pitch.</param>
public sealed record PitchTrack(double[] F0, double[] Periodicity, bool[] Voiced);

/// <summary>
/// How one waveform's pitch follows another's (CARGAN's set, Morrison et al. 2022), both tracked by <see cref="Pitch.Track"/>.
/// </summary>
/// <param name="VoicingF1">F1 of the test's voiced/unvoiced decisions against the reference's (voiced is the positive class;
/// 1 when neither has a voiced frame).</param>
/// <param name="F0RmseCents">RMS of 1200·log2(f_test / f_ref) over the frames voiced in both; NaN when there are none (a test
/// that voices nothing has no pitch to score, which is not a perfect one).</param>
/// <param name="PeriodicityRmse">RMS difference of the periodicities over every frame.</param>
/// <param name="BothVoicedFrames">Frames voiced in both, over which the F0 error is taken.</param>
/// <param name="VoicedPeriodicityRmse">The periodicity RMS difference over the frames the reference voices (NaN when it voices none).
/// Over every frame, unvoiced and quiet ones weigh as much as speech: there YIN's periodicity of noise varies from frame to frame,
/// so two renders of the same noise differ by chance, and a render scores well only by repeating the reference's very waveform.</param>
public sealed record PitchScores(double VoicingF1, double F0RmseCents, double PeriodicityRmse, int BothVoicedFrames, double VoicedPeriodicityRmse);

/// <summary>
/// A YIN pitch tracker (de Cheveigné and Kawahara 2002): per frame the cumulative-mean-normalised difference function
/// d′(τ), the first lag below <see cref="Threshold"/> (or within <see cref="SubharmonicMargin"/> of the global minimum) taken to its
/// local minimum, refined by a
/// parabola. A frame is voiced when d′ there is below <see cref="VoicingThreshold"/> and it is no more than
/// <see cref="SilenceDb"/> below the loudest frame.
/// </summary>
public static class Pitch
{
    /// <summary>Frame hop: 10 ms.</summary>
    public const double HopSeconds = 0.010;
    /// <summary>The lowest pitch tracked (Hz).</summary>
    public const double MinHz = 60;
    /// <summary>The highest pitch tracked (Hz).</summary>
    public const double MaxHz = 800;
    /// <summary>YIN's absolute threshold on d′ for taking the first dip.</summary>
    public const double Threshold = 0.15;
    /// <summary>Where no dip reaches <see cref="Threshold"/>, the first dip within this of the global minimum is taken.</summary>
    public const double SubharmonicMargin = 0.05;
    /// <summary>A frame whose best d′ is at or above this is unvoiced.</summary>
    public const double VoicingThreshold = 0.3;
    /// <summary>Frames quieter than the loudest by more than this (dB) are unvoiced.</summary>
    public const double SilenceDb = 40;

    /// <summary>The pitch contour of a mono waveform at <paramref name="sampleRate"/> Hz: frame k is centred on sample k·hop.</summary>
    public static PitchTrack Track(ReadOnlySpan<float> x, int sampleRate)
    {
        int hop = (int)Math.Round(sampleRate * HopSeconds);
        int tauMax = (int)Math.Ceiling(sampleRate / MinHz), tauMin = (int)Math.Floor(sampleRate / MaxHz);
        int window = tauMax;                             // the integration window W
        int frames = x.Length / hop + 1;
        var f0 = new double[frames];
        var periodicity = new double[frames];
        var voiced = new bool[frames];
        var energy = new double[frames];
        var d = new double[tauMax + 1];
        var padded = new float[x.Length + 2 * (window + tauMax)];
        x.CopyTo(padded.AsSpan(window));                 // frame k's span starts window/2 before its centre
        for (int k = 0; k < frames; k++)
        {
            int t = k * hop + window / 2;
            double e = 0;
            for (int j = 0; j < window; j++) e += padded[t + j] * (double)padded[t + j];
            energy[k] = e / window;
            // Difference function d(τ) and its cumulative-mean normalisation d′(τ) = d(τ)·τ / Σ_{1..τ} d.
            double running = 0;
            d[0] = 1;
            for (int tau = 1; tau <= tauMax; tau++)
            {
                double s = 0;
                for (int j = 0; j < window; j++)
                {
                    double diff = padded[t + j] - padded[t + j + tau];
                    s += diff * diff;
                }
                running += s;
                d[tau] = running > 0 ? s * tau / running : 1;
            }
            // The first dip below the threshold, raised to just above the global minimum where no dip reaches it: a rough
            // periodic frame dips about as low at 2τ, 3τ as at τ, and the first of them is the pitch, not a subharmonic.
            double floor = double.MaxValue;
            for (int tau = tauMin; tau <= tauMax; tau++) floor = Math.Min(floor, d[tau]);
            double accept = Math.Max(Threshold, floor + SubharmonicMargin);
            int best = tauMin;
            for (int tau = tauMin; tau <= tauMax; tau++)
                if (d[tau] < accept)
                {
                    while (tau + 1 <= tauMax && d[tau + 1] < d[tau]) tau++;
                    best = tau;
                    break;
                }
            double lag = best;
            if (best > tauMin && best < tauMax)
            {
                double a = d[best - 1], b = d[best], c = d[best + 1], denom = a - 2 * b + c;
                if (denom > 0) lag = best + 0.5 * (a - c) / denom;
            }
            periodicity[k] = Math.Clamp(1 - d[best], 0, 1);
            f0[k] = sampleRate / lag;
            voiced[k] = d[best] < VoicingThreshold;
        }
        double loudest = energy.Max();
        for (int k = 0; k < frames; k++)
        {
            if (loudest <= 0 || 10 * Math.Log10(Math.Max(energy[k], 1e-30) / loudest) < -SilenceDb) voiced[k] = false;
            if (!voiced[k]) f0[k] = double.NaN;
        }
        return new PitchTrack(f0, periodicity, voiced);
    }

    /// <summary>The test waveform's pitch against the reference's, over the frames both have.</summary>
    public static PitchScores Compare(ReadOnlySpan<float> reference, ReadOnlySpan<float> test, int sampleRate) =>
        Compare(Track(reference, sampleRate), Track(test, sampleRate));

    /// <summary>Scores two contours over the frames both have.</summary>
    public static PitchScores Compare(PitchTrack reference, PitchTrack test)
    {
        int n = Math.Min(reference.F0.Length, test.F0.Length);
        int tp = 0, fp = 0, fn = 0, both = 0, referenceVoiced = 0;
        double cents2 = 0, per2 = 0, voicedPer2 = 0;
        for (int k = 0; k < n; k++)
        {
            bool r = reference.Voiced[k], t = test.Voiced[k];
            if (r && t)
            {
                tp++; both++;
                double c = 1200 * Math.Log2(test.F0[k] / reference.F0[k]);
                cents2 += c * c;
            }
            else if (t) fp++;
            else if (r) fn++;
            double dp = reference.Periodicity[k] - test.Periodicity[k];
            per2 += dp * dp;
            if (r) { referenceVoiced++; voicedPer2 += dp * dp; }
        }
        double f1 = tp + fp + fn == 0 ? 1 : 2.0 * tp / (2.0 * tp + fp + fn);
        return new PitchScores(f1, both == 0 ? double.NaN : Math.Sqrt(cents2 / both), n == 0 ? 0 : Math.Sqrt(per2 / n), both,
            referenceVoiced == 0 ? double.NaN : Math.Sqrt(voicedPer2 / referenceVoiced));
    }
}
