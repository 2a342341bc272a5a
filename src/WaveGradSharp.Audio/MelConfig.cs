using static TorchSharp.torch;
using WaveGradSharp.Core;

namespace WaveGradSharp.Audio;

/// <summary>How hertz map to mels.</summary>
public enum MelScale
{
    /// <summary>Slaney's Auditory Toolbox scale (librosa's default): linear below 1 kHz, logarithmic above.</summary>
    Slaney,
    /// <summary>The HTK scale, 2595·log10(1 + f/700) (torchaudio's default).</summary>
    Htk,
}

/// <summary>How each triangular mel filter is scaled.</summary>
public enum MelNorm
{
    /// <summary>Peak 1 (torchaudio's <c>norm=None</c>).</summary>
    None,
    /// <summary>Area-normalised: each filter is divided by half its width in Hz (librosa/torchaudio <c>norm='slaney'</c>).</summary>
    Slaney,
}

/// <summary>How mel magnitudes become the log-mel that networks see.</summary>
public enum LogCompression
{
    /// <summary><c>ln(max(x, floor))</c> (HiFi-GAN, Tacotron 2 and most TTS acoustic models).</summary>
    Ln,
    /// <summary>lmnt-com/wavegrad's scale, <c>clamp((20·log10(max(x, floor)) − 20 + 100)/100, 0, 1)</c>.</summary>
    LmntDb,
}

/// <summary>Where a mel's frames sit on the waveform.</summary>
public enum MelFraming
{
    /// <summary>torch.stft(center=True) / torchaudio: reflect padding of n_fft/2 on both sides; frame f is centred on sample
    /// f·hop, and T samples give T/hop + 1 frames (lmnt-com/wavegrad, and this project's voices before 2026-11-29).</summary>
    Centered,
    /// <summary>HiFi-GAN's meldataset.py (Matcha-TTS, sherpa-onnx's vocoders): reflect padding of (n_fft − hop)/2 on both
    /// sides, then center=False; frame f is centred on sample f·hop + hop/2, and T samples give T/hop frames, so frame f
    /// covers exactly the samples [f·hop, (f+1)·hop) a vocoder renders for it.</summary>
    HifiGan,
}

/// <summary>Every setting of the mel frontend, framing included. The window is a periodic Hann window of
/// <see cref="WinLength"/> samples, zero-padded to <see cref="NFft"/> in the middle (as torch.stft does).</summary>
public sealed record MelConfig
{
    /// <summary>Preset name, or a free label for a custom configuration.</summary>
    public required string Name { get; init; }
    /// <summary>Sample rate in Hz.</summary>
    public required int SampleRate { get; init; }
    /// <summary>FFT size in samples; the spectrum has NFft/2 + 1 bins.</summary>
    public required int NFft { get; init; }
    /// <summary>Hann window length in samples (≤ NFft).</summary>
    public required int WinLength { get; init; }
    /// <summary>Hop between frames in samples.</summary>
    public required int Hop { get; init; }
    /// <summary>Number of mel bands.</summary>
    public required int NMels { get; init; }
    /// <summary>Lowest filter edge in Hz.</summary>
    public required double FMin { get; init; }
    /// <summary>Highest filter edge in Hz (≤ SampleRate/2).</summary>
    public required double FMax { get; init; }
    /// <summary>Hz-to-mel mapping.</summary>
    public required MelScale Scale { get; init; }
    /// <summary>Filter normalisation.</summary>
    public required MelNorm Norm { get; init; }
    /// <summary>1 for magnitude, 2 for power.</summary>
    public required double Power { get; init; }
    /// <summary>Divide the STFT by the window's L2 norm (torchaudio's <c>normalized=True</c>).</summary>
    public required bool NormalizedWindow { get; init; }
    /// <summary>Log compression applied last.</summary>
    public required LogCompression Log { get; init; }
    /// <summary>Clamp before the log (1e-5 in both HiFi-GAN and lmnt).</summary>
    public double LogFloor { get; init; } = 1e-5;
    /// <summary>Where frames sit on the waveform.</summary>
    public MelFraming Framing { get; init; } = MelFraming.Centered;
    /// <summary>Added to |X|² before the square root of the magnitude (HiFi-GAN's 1e-9; 0 elsewhere).</summary>
    public double MagnitudeEpsilon { get; init; }

    /// <summary>Samples from f·hop to the centre of frame f: hop/2 with HiFi-GAN's framing, 0 when centred. A mel of
    /// either framing is the centred mel of the waveform advanced by this many samples (edge frames aside).</summary>
    public int FrameOffset => Framing == MelFraming.HifiGan ? Hop / 2 : 0;

    /// <summary>Reflect padding on each side before frames are cut without further centring.</summary>
    public int Padding => Framing == MelFraming.HifiGan ? (NFft - Hop) / 2 : NFft / 2;

    /// <summary>Number of one-sided STFT bins, NFft/2 + 1.</summary>
    public int NFreqs => NFft / 2 + 1;

    /// <summary>Frames produced from <paramref name="samples"/> samples: samples/hop + 1 centred, samples/hop with HiFi-GAN's framing.</summary>
    public long Frames(long samples) => (samples + 2 * Padding - NFft) / Hop + 1;

    /// <summary>The default preset.</summary>
    public const string DefaultPreset = "hifigan-22k";

    static readonly Dictionary<string, MelConfig> presets = new()
    {
        ["hifigan-22k"] = HifiGan with { Framing = MelFraming.HifiGan, MagnitudeEpsilon = 1e-9 },
        ["hifigan-22k-centered"] = HifiGan with { Name = "hifigan-22k-centered" },
        ["lmnt-22k"] = Lmnt("lmnt-22k", 22050),
        ["wavegrad-24k"] = Lmnt("wavegrad-24k", 24000),
    };

    /// <summary>HiFi-GAN's settings (22.05 kHz, n_fft 1024, hop 256, 80 Slaney mels 0–8 kHz, ln), before the framing is chosen.</summary>
    static MelConfig HifiGan => new()
    {
        Name = "hifigan-22k", SampleRate = 22050, NFft = 1024, WinLength = 1024, Hop = 256, NMels = 80, FMin = 0, FMax = 8000,
        Scale = MelScale.Slaney, Norm = MelNorm.Slaney, Power = 1, NormalizedWindow = false, Log = LogCompression.Ln,
    };

    static MelConfig Lmnt(string name, int sr) => new()
    {
        Name = name, SampleRate = sr, NFft = 2048, WinLength = 1200, Hop = 300, NMels = 128, FMin = 20, FMax = sr / 2.0,
        Scale = MelScale.Htk, Norm = MelNorm.None, Power = 1, NormalizedWindow = true, Log = LogCompression.LmntDb,
    };

    /// <summary>The named presets: hifigan-22k (default; HiFi-GAN's own mel, framing included), hifigan-22k-centered (the same
    /// mel with centred frames, what voices before 2026-11-29 were trained on), lmnt-22k, wavegrad-24k.</summary>
    public static IReadOnlyList<string> PresetNames { get; } = presets.Keys.ToArray();

    /// <summary>A named preset; an unknown name throws a <see cref="WaveGradException"/> that lists the known ones
    /// (and names <paramref name="source"/>, the file or parameter it came from, when given).</summary>
    public static MelConfig Preset(string name, string? source = null) =>
        presets.TryGetValue(name ?? "", out var c) ? c
            : throw new WaveGradException($"{(source is null ? "" : source + ": ")}unknown mel preset '{Text.Escape(name ?? "")}': " +
                $"known presets are {string.Join(", ", PresetNames)}");

    /// <summary>Applies the log compression to mel magnitudes (or powers).</summary>
    public Tensor Compress(Tensor mel)
    {
        using var scope = NewDisposeScope();
        var c = mel.clamp_min(LogFloor);
        Tensor r = Log switch
        {
            LogCompression.Ln => c.log(),
            _ => ((c.log10() * 20 - 20 + 100) / 100).clamp(0.0, 1.0),
        };
        return r.MoveToOuterDisposeScope();
    }

    /// <summary>The largest log-mel value accepted: ln(e^30) for ln presets (10¹³ times a full-scale sine's magnitude), 2 on
    /// lmnt's 0–1 scale. Larger values are not log-mels of audio and would overflow on the way back to magnitudes.</summary>
    public double MaxLogValue => Log == LogCompression.Ln ? 30 : 2;

    /// <summary>Throws, naming <paramref name="source"/>, unless every value of the log-mel is finite and at most <see cref="MaxLogValue"/>.</summary>
    public void CheckLogMel(Tensor logMel, string source)
    {
        using var scope = NewDisposeScope();
        if (!isfinite(logMel).all().item<bool>()) throw new WaveGradException($"{source}: mel contains NaN or Inf values");
        double max = logMel.max().item<float>();
        if (max > MaxLogValue)
            throw new WaveGradException($"{source}: mel value {max:G3} is above {MaxLogValue}, out of range for {Name}'s log scale; is it a log-mel?");
    }

    /// <summary>
    /// A log-mel [.., n_mels, F] made with this config, moved to <paramref name="framing"/>: frames half a hop apart are
    /// averaged in magnitude, the edge frames kept. Centred → HiFi-GAN gives F − 1 frames (frame f between centred
    /// frames f and f + 1); HiFi-GAN → centred gives F + 1. The config returned describes the result.
    /// </summary>
    public (Tensor Mel, MelConfig Config) Reframe(Tensor logMel, MelFraming framing)
    {
        if (framing == Framing) return (logMel, this);
        using var scope = NewDisposeScope();
        var lin = Decompress(logMel);
        long f = lin.shape[^1];
        if (f < 2) throw new WaveGradException($"a mel of {f} frame(s) cannot be reframed; it needs at least 2");
        var mid = (lin.narrow(-1, 0, f - 1) + lin.narrow(-1, 1, f - 1)) / 2;
        var moved = framing == MelFraming.HifiGan ? mid : cat([lin.narrow(-1, 0, 1), mid, lin.narrow(-1, f - 1, 1)], -1);
        var to = this with { Framing = framing, MagnitudeEpsilon = framing == MelFraming.HifiGan ? 1e-9 : 0 };
        return (Compress(moved).MoveToOuterDisposeScope(), to);
    }

    /// <summary>Undoes the log compression (values clamped at the floor or, for lmnt's scale, at 0/1 stay there).</summary>
    public Tensor Decompress(Tensor logMel)
    {
        using var scope = NewDisposeScope();
        Tensor r = Log switch
        {
            LogCompression.Ln => logMel.exp(),
            _ => ((logMel * 5 - 4) * Math.Log(10)).exp(), // 20·log10(x) − 20 + 100 = 100·y  ⇒  x = 10^(5y − 4)
        };
        return r.MoveToOuterDisposeScope();
    }

    /// <summary>Throws a <see cref="WaveGradException"/> naming the first inconsistent setting.</summary>
    public MelConfig Validate()
    {
        void Fail(string what) => throw new WaveGradException($"mel config '{Name}': {what}");
        if (SampleRate <= 0) Fail($"sample rate {SampleRate} must be positive");
        if (NFft < 2) Fail($"n_fft {NFft} must be at least 2");
        if (WinLength < 1 || WinLength > NFft) Fail($"window length {WinLength} must be between 1 and n_fft {NFft}");
        if (Hop < 1) Fail($"hop {Hop} must be positive");
        if (NMels < 1) Fail($"n_mels {NMels} must be positive");
        if (!(FMin >= 0) || !(FMax > FMin) || FMax > SampleRate / 2.0 + 1e-9) Fail($"need 0 ≤ f_min < f_max ≤ sample rate/2, got {FMin}–{FMax} Hz at " +
            $"{SampleRate} Hz");
        if (Power != 1 && Power != 2) Fail($"power {Power} must be 1 (magnitude) or 2 (power)");
        if (!(LogFloor > 0)) Fail($"log floor {LogFloor} must be positive");
        if (Framing == MelFraming.HifiGan && (NFft - Hop) % 2 != 0) Fail($"HiFi-GAN framing needs n_fft − hop even, got {NFft} − {Hop}");
        if (!(MagnitudeEpsilon >= 0)) Fail($"magnitude epsilon {MagnitudeEpsilon} must be 0 or more");
        return this;
    }

    /// <summary>Hz to mel on <paramref name="scale"/>.</summary>
    public static double HzToMel(double hz, MelScale scale)
    {
        if (scale == MelScale.Htk) return 2595.0 * Math.Log10(1.0 + hz / 700.0);
        const double fSp = 200.0 / 3, minLogHz = 1000.0, minLogMel = minLogHz / fSp;
        double logStep = Math.Log(6.4) / 27.0;
        return hz >= minLogHz ? minLogMel + Math.Log(hz / minLogHz) / logStep : hz / fSp;
    }

    /// <summary>Mel to Hz on <paramref name="scale"/>.</summary>
    public static double MelToHz(double mel, MelScale scale)
    {
        if (scale == MelScale.Htk) return 700.0 * (Math.Pow(10.0, mel / 2595.0) - 1.0);
        const double fSp = 200.0 / 3, minLogHz = 1000.0, minLogMel = minLogHz / fSp;
        double logStep = Math.Log(6.4) / 27.0;
        return mel >= minLogMel ? minLogHz * Math.Exp(logStep * (mel - minLogMel)) : fSp * mel;
    }

    /// <summary>Centre frequency in Hz of each mel band (the peaks of the triangles), length NMels.</summary>
    public double[] BandCentersHz()
    {
        var pts = MelPointsHz();
        return pts.Skip(1).Take(NMels).ToArray();
    }

    double[] MelPointsHz()
    {
        double mMin = HzToMel(FMin, Scale), mMax = HzToMel(FMax, Scale);
        var hz = new double[NMels + 2];
        for (int i = 0; i < hz.Length; i++) hz[i] = MelToHz(mMin + (mMax - mMin) * i / (NMels + 1), Scale);
        return hz;
    }

    /// <summary>The triangular filter bank, [NFreqs, NMels] row-major in float64, built as torchaudio's
    /// <c>melscale_fbanks</c> builds it: bin k sits at k·(SampleRate div 2)/(NFreqs − 1) Hz.</summary>
    public double[,] FilterBank()
    {
        Validate();
        int nF = NFreqs, nM = NMels;
        var pts = MelPointsHz();
        var fb = new double[nF, nM];
        double top = SampleRate / 2; // integer division, as torchaudio does
        for (int k = 0; k < nF; k++)
        {
            double f = top * k / (nF - 1);
            for (int m = 0; m < nM; m++)
            {
                double down = (f - pts[m]) / (pts[m + 1] - pts[m]);
                double up = (pts[m + 2] - f) / (pts[m + 2] - pts[m + 1]);
                double w = Math.Max(0.0, Math.Min(down, up));
                if (Norm == MelNorm.Slaney) w *= 2.0 / (pts[m + 2] - pts[m]);
                fb[k, m] = w;
            }
        }
        return fb;
    }
}
