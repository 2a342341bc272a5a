using TorchSharp;
using static TorchSharp.torch;

namespace WaveGradSharp.Audio;

/// <summary>
/// Pulls a rendered waveform's spectral envelope onto the mel it was rendered from, keeping its own fine structure
/// (harmonics) and phase: per frame and mel band, the gain target / rendered is spread over the band's STFT bins
/// (geometric mean of the overlapping bands' gains, weighted by the filter bank), the STFT is scaled and inverted.
/// The rendered mel is clamped exactly as the target was (the preset's log floor, and lmnt's 0–1 range), so a band
/// where both sit at a clamp keeps gain 1. Bins no band covers (above f_max) are left alone. A few passes converge,
/// since the inverse STFT of a scaled STFT is not exactly that STFT; each pass reaches one window length
/// (<see cref="ReachFrames"/>) further along time. This removes a vocoder's noise floor where the mel says silence
/// and corrects the level of each band, where Griffin-Lim has to invent the phase from scratch. With a momentum β, each pass
/// starts from its predecessor's output carried on by β times the step that pass made (as fast Griffin-Lim, Perraudin et al.
/// 2013, accelerates its projections), and the last pass's output is returned as it is: it converges in fewer passes.
/// </summary>
public static class MelPostFilter
{
    /// <summary>Largest gain applied to a band (+20 dB): the filter corrects levels, it does not make sound out of silence.</summary>
    public const double MaxGain = 10;

    /// <summary>The default number of passes.</summary>
    public const int DefaultPasses = 4;

    /// <summary>How many mel frames on each side of a sample can influence it after <paramref name="passes"/> passes.</summary>
    public static int ReachFrames(MelConfig cfg, int passes) => passes * ((cfg.WinLength + cfg.Hop - 1) / cfg.Hop);

    /// <summary>Returns <paramref name="audio"/> (T samples) with its mel pulled onto <paramref name="logMel"/>
    /// [n_mels, frames] made with <paramref name="cfg"/>, where frames is T/hop or T/hop + 1; same length;
    /// <paramref name="passes"/> 0 returns a copy. With HiFi-GAN's framing the render's mel is measured in that framing, and
    /// the gains scale the centred STFT of the waveform advanced by <see cref="MelConfig.FrameOffset"/> (whose frames are
    /// the same, edges aside); the first hop/2 samples stay as they are.</summary>
    public static float[] Apply(ReadOnlySpan<float> audio, Tensor logMel, MelConfig cfg, int passes = DefaultPasses, double momentum = 0)
    {
        if (passes < 0) throw new ArgumentOutOfRangeException(nameof(passes), "passes must be 0 or more");
        if (!(momentum >= 0 && momentum < 1)) throw new ArgumentOutOfRangeException(nameof(momentum), "momentum must be in [0, 1)");
        var all = audio.ToArray();
        int offset = cfg.FrameOffset;
        if (passes == 0 || all.Length - offset <= cfg.NFft / 2) return all;
        var samples = all[offset..];
        using var scope = NewDisposeScope();
        var mel = logMel.dim() == 3 && logMel.shape[0] == 1 ? logMel[0] : logMel;
        if (mel.dim() != 2) throw new ArgumentException("the post-filter takes one mel [n_mels, frames], got " +
            $"[{string.Join(", ", mel.shape)}]", nameof(logMel));
        MelFile.CheckNMels(mel, cfg.NMels, "post-filter mel");
        long stftFrames = samples.Length / cfg.Hop + 1;
        if (Math.Abs(mel.shape[1] - stftFrames) > 1)
            throw new ArgumentException($"the mel has {mel.shape[1]} frames but {samples.Length} samples make {stftFrames}", nameof(logMel));
        using var ms = new MelSpectrogram(cfg);
        var (win, fbT) = ms.Buffers(CPU);
        var target = ms.Decompress(mel.to(CPU).to_type(float32)); // clamped as made, in the config's power
        // Each bin's share of each band: column-normalised filter bank; bins that no band covers keep gain 1.
        var weight = fbT.t(); // [F, M]
        var cover = weight.sum(1, keepdim: true);
        var spread = weight / cover.clamp_min(1e-12);
        var covered = cover.gt(0).to_type(float32);
        var y = tensor(samples);
        var head = tensor(all[..offset]);
        long length = samples.Length;
        // torch.stft's centred frames and torch.istft's inverse, with the window's envelope computed once for all passes.
        var transform = new FrameStft(cfg, win, length / cfg.Hop + 1, length);
        Tensor? output = null;   // the last pass's output; y is where the next pass starts
        for (int p = 0; p < passes; p++)
        {
            using var pass = NewDisposeScope();
            var frames = transform.Forward(y);   // [N, F]
            var spec = frames.t();               // [F, N]
            var renderedLin = offset == 0 ? ms.MelOfStft(spec) : RenderedMel(ms, spec, head, y);
            var rendered = ms.Decompress(ms.Compress(renderedLin)); // [M, N], clamped like the target
            var ratio = AlignFrames(target, spec.shape[1]) / rendered;
            if (cfg.Power == 2) ratio = ratio.sqrt();
            var logGain = ratio.clamp(1e-6, MaxGain).log();
            var binGain = (matmul(spread, logGain) * covered).exp(); // [F, N]
            // A real gain scales both parts: multiplying them as reals spares the complex product's promotion of the gains.
            var scaled = view_as_complex(view_as_real(frames) * binGain.t().unsqueeze(-1));
            var next = transform.Inverse(scaled).MoveToOuterDisposeScope();
            y = momentum == 0 || output is null ? next : (next + (next - output) * momentum).MoveToOuterDisposeScope();
            output = next;
        }
        output!.data<float>().CopyTo(all, offset);
        return all;
    }

    /// <summary>
    /// The linear mel [n_mels, N] of the waveform <paramref name="head"/> then <paramref name="y"/> in HiFi-GAN's framing, from
    /// <paramref name="spec"/>, the centred STFT of <paramref name="y"/> (N frames), cut or extended to N frames as
    /// <see cref="AlignFrames"/> does. Frame f of either is centred at the same sample and windows the same samples, except the
    /// first n_fft/(2·hop) frames, which reach before y's start: the STFT reflects y there, the mel the whole waveform. Those are
    /// measured on the waveform's start alone, so a pass takes one STFT of the whole render, not two.
    /// </summary>
    internal static Tensor RenderedMel(MelSpectrogram ms, Tensor spec, Tensor head, Tensor y)
    {
        var cfg = ms.Config;
        long n = spec.shape[1], melFrames = cfg.Frames(head.shape[0] + y.shape[0]);
        int edge = (int)Math.Min(n, (cfg.NFft / 2 + cfg.Hop - 1) / cfg.Hop);
        long start = (edge + 1) * cfg.Hop + cfg.NFft;   // enough samples that the start's own end padding is not reached
        if (start >= y.shape[0]) return AlignFrames(ms.ComputeLinear(cat([head, y])), n);
        var first = ms.ComputeLinear(cat([head, y.narrow(0, 0, start)]));
        var lin = cat([first.narrow(1, 0, edge), ms.MelOfStft(spec).narrow(1, edge, n - edge)], 1);
        return n > melFrames ? AlignFrames(lin.narrow(1, 0, melFrames), n) : lin;
    }

    /// <summary>A mel's frames cut or extended (last frame repeated) to <paramref name="n"/>.</summary>
    static Tensor AlignFrames(Tensor target, long n)
    {
        long have = target.shape[1];
        if (have >= n) return target[.., ..(int)n];
        return cat([target, target[.., ^1..].expand(target.shape[0], n - have)], 1);
    }
}
