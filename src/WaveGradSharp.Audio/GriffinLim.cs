using System.Numerics;
using TorchSharp;
using static TorchSharp.torch;
using WaveGradSharp.Core;

namespace WaveGradSharp.Audio;

/// <summary>Where Griffin-Lim's phase starts: random (the classic algorithm) or <see cref="GriffinLim.PhaseFromGradients"/>.</summary>
public enum PhaseStart
{
    /// <summary>Uniform phases from a fixed seed.</summary>
    Random,
    /// <summary>The phase the magnitude's own gradients imply (phase gradient heap integration).</summary>
    PhaseGradient,
}

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
    /// Returns <see cref="Samples"/> samples at cfg.SampleRate. Deterministic: a random start's phase comes from a fixed seed,
    /// and a start from the phase gradients is a function of the mel.
    /// Mels longer than <see cref="GriffinLimStream.WindowFrames"/> are inverted window by window (see <see cref="GriffinLimStream"/>).</summary>
    /// <param name="logMel">Log-mel in the config's compression, on any device.</param>
    /// <param name="cfg">The mel settings the log-mel was made with.</param>
    /// <param name="iters">Griffin-Lim iterations (each one ISTFT + STFT).</param>
    /// <param name="momentum">0 gives classic Griffin-Lim; 0.99 is the 'fast' variant.</param>
    /// <param name="start">The phase the iterations start from: random, or the magnitude's phase gradients.</param>
    public static float[] FromMel(Tensor logMel, MelConfig cfg, int iters = 64, double momentum = 0.99, PhaseStart start = PhaseStart.Random)
    {
        var mel = Checked(logMel, cfg, iters, momentum);
        if (mel.shape[1] <= GriffinLimStream.WindowFrames) return Invert(mel, cfg, iters, momentum, start);
        var stream = new GriffinLimStream(mel, cfg, iters, momentum, start: start);
        return stream.Read(0, stream.Length);
    }

    /// <summary>The mel as [n_mels, frames] after every check a Griffin-Lim input gets.</summary>
    internal static Tensor Checked(Tensor logMel, MelConfig cfg, int iters, double momentum)
    {
        CheckIterations(iters, momentum);
        var mel = logMel.dim() == 3 && logMel.shape[0] == 1 ? logMel[0] : logMel;
        MelFile.CheckNMels(mel, cfg.NMels, "griffin-lim input");
        if (mel.dim() != 2) throw new ArgumentException("Griffin-Lim takes one mel at a time", nameof(logMel));
        cfg.CheckLogMel(mel, "griffin-lim input");
        if (mel.shape[1] < MinFrames(cfg))
            throw new WaveGradException($"griffin-lim input: {mel.shape[1]} frames is too short; {cfg.Name} needs at least {MinFrames(cfg)}");
        return mel;
    }

    static void CheckIterations(int iters, double momentum)
    {
        if (iters < 0) throw WaveGradException.About($"Iterations {iters}: must be 0 or more", "Iterations");
        if (!(momentum >= 0 && momentum < 1)) throw WaveGradException.About($"Momentum {momentum}: must be in [0, 1)", "Momentum");
    }

    /// <summary>Griffin-Lim over a whole (checked) mel at once.</summary>
    internal static float[] Invert(Tensor mel, MelConfig cfg, int iters, double momentum, PhaseStart start, Tensor? leadingPhase = null)
    {
        using var scope = NewDisposeScope();
        return FromMagnitude(Magnitude(mel, cfg), cfg, iters, momentum, start, leadingPhase);
    }

    /// <summary>
    /// Griffin-Lim from a linear STFT magnitude [bins, frames] in the scale <see cref="Magnitude"/> gives, from the same random
    /// phase as <see cref="FromMel"/>: <see cref="Samples"/> samples. Given a recording's own magnitude (<see cref="Analyse"/>) it
    /// measures what phase retrieval alone costs, apart from what the mel loses. With <see cref="PhaseStart.PhaseGradient"/>, a
    /// <paramref name="leadingPhase"/> [bins, K] fixes the first K frames' phase and the rest is integrated from it (a window
    /// continuing the waveform before it, see <see cref="GriffinLimStream"/>).
    /// </summary>
    public static float[] FromMagnitude(Tensor magnitude, MelConfig cfg, int iters = 64, double momentum = 0.99, PhaseStart start = PhaseStart.Random,
        Tensor? leadingPhase = null)
    {
        using var scope = NewDisposeScope();
        if (magnitude.dim() != 2 || magnitude.shape[0] != cfg.NFreqs || magnitude.shape[1] < MinFrames(cfg))
            throw new ArgumentException($"a magnitude must be [{cfg.NFreqs}, at least {MinFrames(cfg)}], got [{string.Join(", ", magnitude.shape)}]",
                nameof(magnitude));
        CheckIterations(iters, momentum);
        var spec = magnitude.to_type(float32);
        var phase = start == PhaseStart.PhaseGradient ? PhaseFromGradients(spec, cfg, leadingPhase)
            : rand(spec.shape, generator: new Generator(RandomPhaseSeed)).to(spec.device) * (2 * Math.PI);
        return Iterated(polar(spec, phase), spec, cfg, iters, momentum);
    }

    /// <summary>
    /// Griffin-Lim from a complex spectrogram [bins, frames] (the preset's frames and <see cref="Magnitude"/>'s scale) whose
    /// magnitude is the target and whose phase is the start: <see cref="Samples"/> samples. A caller that already holds the
    /// magnitude and its phase-gradient phase (a network's phase prior) skips computing them again.
    /// </summary>
    public static float[] FromSpectrum(Tensor spectrum, MelConfig cfg, int iters = 64, double momentum = 0.99)
    {
        using var scope = NewDisposeScope();
        if (spectrum.dim() != 2 || !spectrum.is_complex() || spectrum.shape[0] != cfg.NFreqs || spectrum.shape[1] < MinFrames(cfg))
            throw new ArgumentException($"a spectrum must be complex [{cfg.NFreqs}, at least {MinFrames(cfg)}], got [{string.Join(", ", spectrum.shape)}]",
                nameof(spectrum));
        CheckIterations(iters, momentum);
        var shaped = spectrum.to_type(complex64);
        return Iterated(shaped, shaped.abs(), cfg, iters, momentum);
    }

    /// <summary><see cref="Iterate"/> from <paramref name="shaped"/> towards <paramref name="magnitude"/>, as <see cref="Samples"/> samples.</summary>
    static float[] Iterated(Tensor shaped, Tensor magnitude, MelConfig cfg, int iters, double momentum, Tensor? held = null)
    {
        using var ms = new MelSpectrogram(cfg);
        var wave = Iterate(shaped, magnitude, cfg, ms.Buffers(magnitude.device).Window, iters, momentum, held);
        var result = new float[Samples(cfg, magnitude.shape[1])];
        wave.to(CPU).data<float>().CopyTo(result, cfg.FrameOffset);
        return result;
    }

    const int RandomPhaseSeed = 20240917;

    /// <summary>
    /// A phase for a magnitude [bins, frames] (as <see cref="Magnitude"/> gives) from the magnitude alone, by phase gradient heap
    /// integration (Průša, Balazs and Søndergaard 2017). For a Gaussian window exp(−πt²/γ) the STFT's log-magnitude s fixes the
    /// phase's gradient: per hop a the phase advances by 2πam/M + (aM/γ)·∂s/∂m (the bin's frequency plus the deviation the
    /// magnitude's slope across bins tells), and per bin by −(γ/(aM))·∂s/∂n (the group delay). Integrated outward from the
    /// largest coefficients first, where the gradients are most reliable. A Hann window of length L is taken as the Gaussian of
    /// γ = 0.25645·L². Coefficients more than 100 dB under the largest keep a fixed pseudo-random phase. The result follows
    /// torch.stft's convention (phase relative to each frame's first sample), hence a final π per bin. A
    /// <paramref name="leading"/> phase [bins, K] (same convention) is kept for the first K frames and integrated onward from.
    /// </summary>
    public static Tensor PhaseFromGradients(Tensor magnitude, MelConfig cfg, Tensor? leading = null)
    {
        using var scope = NewDisposeScope();
        if (magnitude.dim() != 2 || magnitude.shape[0] != cfg.NFreqs || magnitude.shape[1] < 1)
            throw new ArgumentException($"a magnitude must be [{cfg.NFreqs}, frames], got [{string.Join(", ", magnitude.shape)}]", nameof(magnitude));
        int bins = (int)magnitude.shape[0], frames = (int)magnitude.shape[1];
        if (leading is not null && (leading.dim() != 2 || leading.shape[0] != bins || leading.shape[1] > frames))
            throw new ArgumentException($"a leading phase must be [{bins}, at most {frames}], got [{string.Join(", ", leading.shape)}]", nameof(leading));
        int known = leading is null ? 0 : (int)leading.shape[1];
        var given = new float[bins * known];
        if (leading is not null) leading.to(CPU).to_type(float32).contiguous().data<float>().CopyTo(given, 0);
        var log = new float[bins * frames];   // [bins, frames]
        magnitude.to(CPU).to_type(float32).clamp_min(1e-30f).log().contiguous().data<float>().CopyTo(log, 0);
        // M (channels) is n_fft; the bin index is k.
        double a = cfg.Hop, channels = cfg.NFft, gamma = 0.25645 * cfg.WinLength * (double)cfg.WinLength;
        float max = log.Max(), floor = max + MathF.Log(1e-5f);
        // The plane with a border of one blocked coefficient all round, so that a step to a neighbour needs no bounds check:
        // coefficient (k, n) is at (k + 1)·w + n + 1.
        int w = frames + 2, size = (bins + 2) * w;
        var s = new float[size];
        var state = new byte[size];   // Open, Set or Blocked (the border and everything under the floor)
        const byte Open = 0, Set = 1, Blocked = 2;
        Array.Fill(state, Blocked);
        for (int k = 0; k < bins; k++)
            for (int n = 0; n < frames; n++)
            {
                // The log is not clamped at the floor: next to an exact zero (bins past f_max, gaps the least-squares
                // magnitude empties) the slope is steep and the phase integrated there as good as random, which scored better
                // on the training speakers than clamping did (README, "The Griffin-Lim start").
                float v = log[k * frames + n];
                int i = (k + 1) * w + n + 1;
                s[i] = v;
                if (v > floor) state[i] = Open;
            }
        // Per coefficient: the phase's advance to the next frame (time direction) and to the next bin (frequency direction).
        var perHop = new float[size];
        var perBin = new float[size];
        for (int k = 0; k < bins; k++)
            for (int n = 0; n < frames; n++)
            {
                int i = (k + 1) * w + n + 1;
                float dk = k == 0 ? s[i + w] - s[i] : k == bins - 1 ? s[i] - s[i - w] : (s[i + w] - s[i - w]) / 2;
                float dn = n == 0 ? s[i + 1] - s[i] : n == frames - 1 ? s[i] - s[i - 1] : (s[i + 1] - s[i - 1]) / 2;
                perHop[i] = (float)(2 * Math.PI * a * k / channels + a * channels / gamma * dk);
                perBin[i] = (float)(-gamma / (a * channels) * dn);
            }
        // Largest first, through bucket queues of 1/32 neper (a quarter of a dB) per bucket: a heap's order to within that, at
        // constant cost per coefficient. The seeds are every open coefficient, largest first; the frontier holds those whose phase
        // is set and whose neighbours are not yet reached.
        const int bucketsPerNeper = 32;
        int buckets = (int)((max - floor) * bucketsPerNeper) + 1;
        int Bucket(int i) => Math.Min(buckets - 1, (int)((s[i] - floor) * bucketsPerNeper));
        var count = new int[buckets + 1];
        for (int i = 0; i < size; i++) if (state[i] == Open) count[Bucket(i)]++;
        for (int b = buckets - 1; b >= 0; b--) count[b] += count[b + 1];   // count[b]: coefficients in buckets b and above
        var seeds = new int[count[0]];
        for (int i = size - 1; i >= 0; i--) if (state[i] == Open) seeds[--count[Bucket(i)]] = i;
        var frontier = new int[buckets];
        Array.Fill(frontier, -1);
        var link = new int[size];
        var phase = new double[size];   // double: the sums reach 10⁵ rad over a window
        int top = -1;
        void Push(int i)
        {
            state[i] = Set;
            int b = Bucket(i);
            link[i] = frontier[b];
            frontier[b] = i;
            top = Math.Max(top, b);
        }
        void Reach(int from, int to, double step)
        {
            if (state[to] != Open) return;
            phase[to] = phase[from] + step;
            Push(to);
        }
        // The leading frames' phases, in the centred convention, are where the integration begins.
        for (int k = 0; k < bins; k++)
            for (int n = 0; n < known; n++)
            {
                int i = (k + 1) * w + n + 1;
                phase[i] = given[k * known + n] - Math.PI * k;
                if (state[i] == Open) Push(i);
            }
        foreach (int seed in seeds.Prepend(-1))
        {
            if (seed >= 0)
            {
                if (state[seed] != Open) continue;
                phase[seed] = Unreached(seed);   // an island's largest coefficient: the rest follow from it
                Push(seed);
            }
            while (true)
            {
                while (top >= 0 && frontier[top] < 0) top--;
                if (top < 0) break;
                int i = frontier[top];
                frontier[top] = link[i];
                Reach(i, i + 1, 0.5 * (perHop[i] + perHop[i + 1]));
                Reach(i, i - 1, -0.5 * (perHop[i] + perHop[i - 1]));
                Reach(i, i + w, 0.5 * (perBin[i] + perBin[i + w]));
                Reach(i, i - w, -0.5 * (perBin[i] + perBin[i - w]));
            }
        }
        var result = new float[bins * frames];
        for (int k = 0; k < bins; k++)
            for (int n = 0; n < frames; n++)
            {
                int i = (k + 1) * w + n + 1;
                double p = state[i] == Set || n < known ? phase[i] + Math.PI * k : Unreached(i);
                result[k * frames + n] = (float)(p - 2 * Math.PI * Math.Floor(p * (0.5 / Math.PI)));
            }
        return tensor(result, [bins, frames]).to(magnitude.device).MoveToOuterDisposeScope();
    }

    /// <summary>The phase of a coefficient no gradient reaches (an island's first, those under the floor): a fixed
    /// pseudo-random phase from the golden-ratio sequence, uniform over the circle.</summary>
    static double Unreached(int i)
    {
        double t = i * 0.6180339887498949;
        return 2 * Math.PI * (t - Math.Floor(t));
    }

    /// <summary>
    /// The complex STFT [bins, frames] of <paramref name="waveform"/> laid out as <paramref name="frames"/> frames of a mel in
    /// <paramref name="cfg"/> and as <see cref="FromMagnitude"/> inverts them: the centred STFT of samples [offset, offset + (frames − 1)·hop)
    /// (offset: <see cref="MelConfig.FrameOffset"/>), unnormalised, with the preset's window.
    /// </summary>
    public static Tensor Analyse(ReadOnlySpan<float> waveform, long frames, MelConfig cfg)
    {
        long length = (frames - 1) * cfg.Hop;
        if (frames < MinFrames(cfg) || waveform.Length < cfg.FrameOffset + length)
            throw new ArgumentException($"{waveform.Length} samples do not hold {frames} frames of {cfg.Name}", nameof(waveform));
        using var scope = NewDisposeScope();
        using var ms = new MelSpectrogram(cfg);
        var y = tensor(waveform.Slice(cfg.FrameOffset, (int)length).ToArray());
        return stft(y, cfg.NFft, cfg.Hop, cfg.WinLength, ms.Buffers(CPU).Window, center: true, pad_mode: PaddingModes.Reflect, normalized: false,
            onesided: true, return_complex: true).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The waveform of a magnitude [bins, frames] (as <see cref="Magnitude"/> gives) with the phase of <paramref name="waveform"/>'s own
    /// STFT (<see cref="Analyse"/>): <see cref="Samples"/> samples. Given a mel's <see cref="Magnitude"/> it measures what the mel's
    /// magnitude alone costs, with no phase to retrieve.
    /// </summary>
    public static float[] WithPhaseOf(Tensor magnitude, ReadOnlySpan<float> waveform, MelConfig cfg)
    {
        using var scope = NewDisposeScope();
        long frames = magnitude.shape[^1];
        var own = Analyse(waveform, frames, cfg);
        if (!own.shape.SequenceEqual(magnitude.shape))
            throw new ArgumentException($"a magnitude must be [{cfg.NFreqs}, {frames}], got [{string.Join(", ", magnitude.shape)}]", nameof(magnitude));
        using var ms = new MelSpectrogram(cfg);
        var transform = new FrameStft(cfg, ms.Buffers(CPU).Window, frames, (frames - 1) * cfg.Hop);
        var wave = transform.Inverse((own * magnitude.to(CPU).to_type(float32).div(own.abs().add(1e-16))).t());
        var result = new float[Samples(cfg, frames)];
        wave.data<float>().CopyTo(result, cfg.FrameOffset);
        return result;
    }

    /// <summary>
    /// The waveform of a magnitude [bins, frames] (as <see cref="WithPhaseOf"/> takes it) with <paramref name="waveform"/>'s own
    /// phase in the frames its pitch track voices (<see cref="Pitch.Track"/>) and in those within n_fft / (2·hop) frames of
    /// one (whose windows reach a voiced frame's centre), and elsewhere a phase that <paramref name="iters"/> Griffin-Lim
    /// iterations retrieve from a random start while the kept frames hold theirs: <see cref="Samples"/> samples. It renders
    /// speech right in and around every voiced frame and draws noise of the right spectrum, but not the recording's own noise,
    /// in the unvoiced and silent ones: what the periodicity error over every frame charges a vocoder that is perfect on
    /// voiced speech.
    /// </summary>
    public static float[] WithVoicedPhaseOf(Tensor magnitude, ReadOnlySpan<float> waveform, MelConfig cfg, int iters = 64)
    {
        CheckIterations(iters, 0);
        using var scope = NewDisposeScope();
        long frames = magnitude.shape[^1];
        var own = Analyse(waveform, frames, cfg);
        if (!own.shape.SequenceEqual(magnitude.shape))
            throw new ArgumentException($"a magnitude must be [{cfg.NFreqs}, {frames}], got [{string.Join(", ", magnitude.shape)}]", nameof(magnitude));
        var track = Pitch.Track(waveform, cfg.SampleRate);
        double pitchHop = Math.Round(cfg.SampleRate * Pitch.HopSeconds);
        var voiced = new bool[frames];
        for (long f = 0; f < frames; f++)   // frame f is centred on sample offset + f·hop; the track's frame k on k·pitchHop
            voiced[f] = track.Voiced[(int)Math.Min(track.Voiced.Length - 1, Math.Round((cfg.FrameOffset + f * cfg.Hop) / pitchHop))];
        int reach = cfg.NFft / (2 * cfg.Hop);
        var kept = new bool[frames];
        for (long f = 0; f < frames; f++)
            for (long g = Math.Max(0, f - reach); g <= Math.Min(frames - 1, f + reach) && !kept[f]; g++) kept[f] = voiced[g];
        var target = magnitude.to(CPU).to_type(float32);
        var random = rand([frames, target.shape[0]], generator: new Generator(RandomPhaseSeed)).t() * (2 * Math.PI);
        var phase = where(tensor(kept).unsqueeze(0), own.angle(), random);
        return Iterated(polar(target, phase), target, cfg, iters, momentum: 0, held: tensor(kept));
    }

    /// <summary>
    /// The linear STFT magnitude [bins, frames] a log-mel [n_mels, frames] asks for, on the mel's device: non-negative least squares
    /// for |S| in mel = Fᵀ·|S|, started from the clipped pseudo-inverse and refined by multiplicative (Lee–Seung) updates, which keep
    /// |S| ≥ 0 and lower ‖mel − Fᵀ|S|‖ at every step (they halve the log-mel error of the pseudo-inverse alone on hifigan-22k's 80
    /// bands). Scaled as the preset's STFT is (power, window normalisation). The updates multiply by F and Fᵀ through F's nonzero
    /// entries alone (each bin lies under at most two triangular filters: about 40 times fewer multiply-adds than dense
    /// products). They run on the CPU whatever the mel's device, on all its cores and vector units with one frame per lane:
    /// frames are independent, and a block of them stays in cache through all the updates.
    /// </summary>
    public static Tensor Magnitude(Tensor mel, MelConfig cfg)
    {
        using var scope = NewDisposeScope();
        using var ms = new MelSpectrogram(cfg);
        var dev = mel.device;
        var (win, _) = ms.Buffers(dev);
        var lin = ms.Decompress(mel.to_type(float32)); // [M, N] mel magnitude (or power)
        var bank = SparseFilterBank.Of(cfg);
        // On the CPU, a block of frames at a time, one frame per vector lane: the layout [bins, frames] with the frames padded to
        // whole vectors puts a block's value of one bin in one vector, and a block's few tens of kB stay in cache.
        int n = (int)lin.shape[1], lanes = Vector<float>.Count, width = (n + lanes - 1) / lanes * lanes;
        var padded = nn.functional.pad(lin, [0, width - n]);
        var y = new float[cfg.NMels * width];
        var x = new float[cfg.NFreqs * width];
        using (var t = padded.contiguous().to(CPU)) t.data<float>().CopyTo(y, 0);
        using (var t = matmul(bank.PseudoInverse.to(dev), padded).clamp_min(0).add(1e-6).contiguous().to(CPU)) t.data<float>().CopyTo(x, 0);
        Parallel.For(0, width / lanes, () => new SparseFilterBank.Scratch(cfg), (b, _, scratch) =>
        {
            bank.Refine(y, x, width, b * lanes, scratch);
            return scratch;
        }, _ => { });
        var spec = tensor(x, [cfg.NFreqs, width]).narrow(1, 0, n).to(dev);
        if (cfg.Power == 2) spec = spec.sqrt();
        if (cfg.NormalizedWindow) spec = spec * (win * win).sum().sqrt();
        return spec.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// A filter bank by its bands, each a run of contiguous bins with its weights (a triangular filter is nonzero over a few
    /// bins), with its pseudo-inverse: what <see cref="Magnitude"/> needs, made once per mel configuration.
    /// </summary>
    sealed class SparseFilterBank
    {
        static readonly System.Collections.Concurrent.ConcurrentDictionary<MelConfig, SparseFilterBank> Made = new();
        readonly int[] start, offset;   // band m covers bins [start[m], start[m] + length) with weights [offset[m], offset[m + 1])
        readonly float[] weights;

        /// <summary>The pseudo-inverse of the filter bank, [bins, n_mels], on the CPU.</summary>
        public Tensor PseudoInverse { get; }

        SparseFilterBank(MelConfig cfg)
        {
            var fb = cfg.FilterBank();
            var rows = new double[cfg.NMels * cfg.NFreqs];
            start = new int[cfg.NMels];
            offset = new int[cfg.NMels + 1];
            List<float> all = [];
            for (int m = 0; m < cfg.NMels; m++)
            {
                int lo = 0, hi = -1;
                for (int k = 0; k < cfg.NFreqs; k++)
                {
                    rows[m * cfg.NFreqs + k] = fb[k, m];
                    if (fb[k, m] == 0) continue;
                    if (hi < 0) lo = k;
                    hi = k;
                }
                start[m] = lo;
                for (int k = lo; k <= hi; k++) all.Add((float)fb[k, m]);
                offset[m + 1] = all.Count;
            }
            weights = [.. all];
            PseudoInverse = linalg.pinv(tensor(rows, [cfg.NMels, cfg.NFreqs])).to_type(float32).DetachFromDisposeScope();
        }

        public static SparseFilterBank Of(MelConfig cfg) => Made.GetOrAdd(cfg, c => new SparseFilterBank(c));

        /// <summary>Working memory for <see cref="Refine"/>: one vector per bin or band.</summary>
        public sealed class Scratch(MelConfig cfg)
        {
            public readonly Vector<float>[] X = new Vector<float>[cfg.NFreqs], Num = new Vector<float>[cfg.NFreqs],
                Back = new Vector<float>[cfg.NFreqs], MelOfX = new Vector<float>[cfg.NMels];
        }

        /// <summary><see cref="NnlsIterations"/> multiplicative updates x ← x ⊙ F·y / F·Fᵀ·x of the magnitudes x [bins, width]
        /// toward their mels y [n_mels, width], for the frames [<paramref name="from"/>, from + vector width): one per lane.</summary>
        public void Refine(float[] y, float[] x, int width, int from, Scratch s)
        {
            int bands = start.Length, bins = s.X.Length;
            var eps = new Vector<float>(1e-12f);
            Array.Clear(s.Num);
            for (int k = 0; k < bins; k++) s.X[k] = new Vector<float>(x, k * width + from);
            for (int m = 0; m < bands; m++)
            {
                var ym = new Vector<float>(y, m * width + from);
                for (int j = 0, k = start[m]; j < offset[m + 1] - offset[m]; j++, k++) s.Num[k] += ym * weights[offset[m] + j];
            }
            for (int i = 0; i < NnlsIterations; i++)
            {
                for (int m = 0; m < bands; m++)
                {
                    var sum = Vector<float>.Zero;
                    for (int j = 0, k = start[m]; j < offset[m + 1] - offset[m]; j++, k++) sum += s.X[k] * weights[offset[m] + j];
                    s.MelOfX[m] = sum;
                }
                Array.Clear(s.Back);
                for (int m = 0; m < bands; m++)
                    for (int j = 0, k = start[m]; j < offset[m + 1] - offset[m]; j++, k++) s.Back[k] += s.MelOfX[m] * weights[offset[m] + j];
                for (int k = 0; k < bins; k++) s.X[k] *= s.Num[k] / (s.Back[k] + eps);
            }
            for (int k = 0; k < bins; k++) s.X[k].CopyTo(x, k * width + from);
        }
    }

    /// <summary>
    /// The STFT phase [bins, K] (torch.stft's convention) of frames <paramref name="firstFrame"/> onward of a waveform held from
    /// absolute sample <paramref name="from"/> on, as many of <paramref name="count"/> frames as lie whole in it (frame f centred
    /// at f·hop plus the framing's offset); null when not even the first does.
    /// </summary>
    internal static Tensor? PhaseOfFrames(float[] samples, long from, long firstFrame, int count, MelConfig cfg)
    {
        long Begin(long f) => f * cfg.Hop + cfg.FrameOffset - cfg.NFft / 2;
        int k = 0;
        while (k < count && Begin(firstFrame + k) >= from && Begin(firstFrame + k) + cfg.NFft <= from + samples.Length) k++;
        if (k == 0) return null;
        using var scope = NewDisposeScope();
        using var ms = new MelSpectrogram(cfg);
        var window = FrameStft.Centred(ms.Buffers(CPU).Window, cfg.NFft);
        var segment = tensor(samples.AsSpan((int)(Begin(firstFrame) - from), (k - 1) * cfg.Hop + cfg.NFft).ToArray());
        var frames = segment.unfold(0, cfg.NFft, cfg.Hop).mul(window);   // [k, n_fft]
        return fft.rfft(frames, cfg.NFft, 1).angle().t().contiguous().MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Projects a waveform onto a magnitude [bins, frames] (from <see cref="Magnitude"/>): fast Griffin-Lim started from the
    /// waveform's own phase instead of a random one (GLA-Grad's consistency step, Liu et al. 2024). The frames cover the
    /// samples [offset, offset + (frames − 1)·hop) of <paramref name="wave"/> [T] (offset: the framing's, see
    /// <see cref="MelConfig.FrameOffset"/>); samples outside keep their values. Returns a new waveform [T].
    /// </summary>
    public static Tensor Project(Tensor wave, Tensor magnitude, MelConfig cfg, int iters, double momentum = 0.99)
    {
        using var scope = NewDisposeScope();
        long frames = magnitude.shape[1], length = (frames - 1) * cfg.Hop;
        if (wave.dim() != 1 || wave.shape[0] < cfg.FrameOffset + length)
            throw new ArgumentException($"the waveform has {wave.shape[^1]} samples; {frames} frames cover {cfg.FrameOffset + length}", nameof(wave));
        using var ms = new MelSpectrogram(cfg);
        var (win, _) = ms.Buffers(wave.device);
        var y = wave.narrow(0, cfg.FrameOffset, length).to_type(float32);
        var own = stft(y, cfg.NFft, cfg.Hop, cfg.WinLength, win, center: true, pad_mode: PaddingModes.Reflect, normalized: false, onesided: true,
            return_complex: true);
        var projected = Iterate(own * magnitude.div(own.abs().add(1e-16)), magnitude, cfg, win, iters, momentum);
        var result = wave.to_type(float32).clone();
        result.narrow(0, cfg.FrameOffset, length).copy_(projected);
        return result.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Fast Griffin-Lim's loop (analysis window <paramref name="win"/>) from a spectrogram with the target magnitude
    /// (<paramref name="shaped"/>, [bins, frames]), returning the waveform of its last iterate, (frames − 1)·hop samples.
    /// The loop carries S·e^{iφ} (the next inverse transform's input) rather than the phases alone. Fast Griffin-Lim's
    /// extrapolation t = c_n + m(c_n − c_{n−1}) (m the momentum) is taken divided by 1 + m, as c_n − m/(1 + m)·c_{n−1}: only
    /// its phase is kept. Frames where <paramref name="held"/> [frames] is true keep <paramref name="shaped"/>'s coefficients
    /// throughout.
    /// </summary>
    static Tensor Iterate(Tensor shaped, Tensor spec, MelConfig cfg, Tensor win, int iters, double momentum, Tensor? held = null)
    {
        using var scope = NewDisposeScope();
        long frames = spec.shape[1];
        var transform = new FrameStft(cfg, win, frames, (frames - 1) * cfg.Hop);
        var target = spec.t().contiguous();   // [frames, bins], as the FFTs lay spectrograms out
        var current = shaped.t().contiguous();
        var start = held is null ? null : current.clone();
        var hold = held?.unsqueeze(1);
        Tensor? prev = null;
        double prevWeight = -momentum / (1 + momentum);
        for (int i = 0; i < iters; i++)
        {
            using var step = NewDisposeScope();
            var rebuilt = transform.Forward(transform.Inverse(current));
            var next = prev is null || momentum == 0 ? rebuilt : rebuilt.add(prev, prevWeight);
            var s = next * target.div(next.abs().add_(1e-16));
            if (hold is not null) s = where(hold, start!, s);
            prev?.Dispose();
            prev = rebuilt.MoveToOuterDisposeScope();
            current.Dispose();
            current = s.MoveToOuterDisposeScope();
        }
        return transform.Inverse(current).MoveToOuterDisposeScope();
    }
}

/// <summary>
/// The STFT pair of Griffin-Lim's loop: torch.stft and torch.istft (centred with reflect padding, onesided, not normalized,
/// the inverse with a length), frame-major. Spectrograms are [frames, bins], the layout the FFTs make and take, so each
/// magnitude and product in the loop is one pass over contiguous memory; torch.stft's [bins, frames] is a transposed view,
/// over which those passes were strided. The inverse overlap-adds with the window's envelope
/// Σ w²[n − j·hop] computed once: libtorch's istft recomputes and checks it on every call, which cost the loop more than
/// its inverse FFTs. Frames are zero-padded to k = ⌈n_fft / hop⌉ hops, so that the overlap-add is k shifted sums of
/// [frames, hop] blocks.
/// </summary>
sealed class FrameStft
{
    readonly Tensor window;   // [n_fft]: the analysis window, centred in n_fft as torch pads it
    readonly Tensor scale;    // [length]: 1 / envelope
    readonly int nFft, hop, k;
    readonly long frames, length;

    public FrameStft(MelConfig cfg, Tensor win, long frames, long length)
    {
        nFft = cfg.NFft; hop = cfg.Hop; k = (nFft + hop - 1) / hop;
        this.frames = frames; this.length = length;
        window = Centred(win, nFft);
        var envelope = OverlapAdd((window * window).expand(frames, nFft));
        if (envelope.min().item<float>() < 1e-11) throw new WaveGradException($"{cfg.Name}: the window does not overlap-add to a nonzero envelope");
        scale = envelope.reciprocal();
    }

    /// <summary>The analysis window zero-padded to <paramref name="nFft"/> in the middle, as torch.stft pads it.</summary>
    public static Tensor Centred(Tensor win, int nFft)
    {
        long left = (nFft - win.shape[0]) / 2;
        return nn.functional.pad(win, [left, nFft - win.shape[0] - left]);
    }

    /// <summary>The complex spectrogram [frames, bins] of a waveform [length]: torch.stft's, transposed.</summary>
    public Tensor Forward(Tensor y)
    {
        var padded = nn.functional.pad(y.view(1, 1, -1), [nFft / 2, nFft / 2], PaddingModes.Reflect).view(-1);
        return fft.rfft(padded.unfold(0, nFft, hop).mul(window), nFft, 1);
    }

    /// <summary>The waveform [length] of a complex spectrogram [frames, bins].</summary>
    public Tensor Inverse(Tensor spec) => OverlapAdd(fft.irfft(spec, nFft, 1).mul_(window)).mul_(scale);

    /// <summary>Frames [frames, n_fft] laid hop apart and summed, the centre padding of n_fft / 2 dropped: [length].</summary>
    Tensor OverlapAdd(Tensor f)
    {
        if (k * hop > nFft) f = nn.functional.pad(f, [0, k * hop - nFft]);
        var blocks = f.reshape(frames, k, hop);
        var y = zeros([frames + k - 1, hop], f.dtype, f.device);
        for (int j = 0; j < k; j++) y.narrow(0, j, frames).add_(blocks[.., j]);
        return y.view(-1).narrow(0, nFft / 2, length);
    }
}

/// <summary>
/// Griffin-Lim over a mel of any length with memory bound by one window: windows of <see cref="WindowFrames"/> frames
/// (after an optional shorter first window, windows doubling up to that) overlapping by <see cref="OverlapFrames"/> are
/// inverted as samples are asked for, cross-faded over the middle half of their overlap (the edges of a window are its
/// least certain part), and dropped once read past. A mel of at most one window gives exactly
/// <see cref="GriffinLim.FromMel"/>'s waveform.
/// </summary>
public sealed class GriffinLimStream
{
    /// <summary>Frames inverted at once (about 12 s at hop 256).</summary>
    public const int WindowFrames = 1024;
    /// <summary>Frames two neighbouring windows share.</summary>
    public const int OverlapFrames = 64;

    readonly Tensor mel;
    readonly MelConfig cfg;
    readonly int iters;
    readonly double momentum;
    readonly PhaseStart phaseStart;
    readonly long frames;
    readonly int first;
    readonly NativeHeapWatch heap = new();
    float[] buffer = [];
    long bufferStart, next;   // absolute sample of buffer[0]; first window not yet inverted
    int window;

    /// <summary>Prepares the stream over a log-mel [n_mels, frames]; nothing is inverted yet. A <paramref name="firstWindowFrames"/>
    /// shorter than <see cref="WindowFrames"/> (at least twice <see cref="OverlapFrames"/>) makes the first samples sooner, for a
    /// quick first sound: the first window is that long, and the later ones double up to <see cref="WindowFrames"/>.</summary>
    public GriffinLimStream(Tensor logMel, MelConfig cfg, int iters = 64, double momentum = 0.99, int firstWindowFrames = WindowFrames,
        PhaseStart start = PhaseStart.Random)
    {
        mel = GriffinLim.Checked(logMel, cfg, iters, momentum);
        if (firstWindowFrames < 2 * OverlapFrames || firstWindowFrames > WindowFrames)
            throw new ArgumentOutOfRangeException(nameof(firstWindowFrames), $"{firstWindowFrames}: must be in [{2 * OverlapFrames}, {WindowFrames}]");
        first = firstWindowFrames;
        this.cfg = cfg; this.iters = iters; this.momentum = momentum; phaseStart = start;
        frames = mel.shape[1];
        Length = GriffinLim.Samples(cfg, frames);
    }

    /// <summary>The shortest first window (within the allowed range) whose samples are final through frame
    /// <paramref name="frames"/>: those before the second window's cross-fade, which starts a quarter overlap into it.</summary>
    public static int FirstWindowFor(long frames) => (int)Math.Clamp(frames + 3 * OverlapFrames / 4, 2 * OverlapFrames, WindowFrames);

    /// <summary>Samples held in memory now (at most a window and the span of the last read).</summary>
    public long BufferedSamples => buffer.Length;

    /// <summary>Samples the whole waveform has (<see cref="GriffinLim.Samples"/>).</summary>
    public long Length { get; }

    /// <summary>Samples [<paramref name="from"/>, <paramref name="to"/>) of the waveform (zeros past its end). Calls must not go
    /// back before an earlier call's <paramref name="from"/>: what lies before it has been dropped.</summary>
    public float[] Read(long from, long to)
    {
        if (from < bufferStart || to < from) throw new ArgumentOutOfRangeException(nameof(from), $"samples before {bufferStart} were dropped");
        // Samples are final up to where the next window's cross-fade begins.
        while (Final < Math.Min(to, Length) && next < frames) Append();
        var r = new float[to - from];
        long have = Math.Min(to, bufferStart + buffer.Length) - from;
        if (have > 0) Array.Copy(buffer, from - bufferStart, r, 0, have);
        // Drop what no later read can ask for: everything before this read's start, but for what the next window's leading
        // phase is measured on (from the phase gradients: see Append).
        long keep = phaseStart == PhaseStart.PhaseGradient && next < frames ? Math.Min(from, LeadingFrom(window)) : from;
        long drop = Math.Clamp(keep - bufferStart, 0, buffer.Length);
        if (drop > 0) { buffer = buffer[(int)drop..]; bufferStart += drop; }
        return r;
    }

    /// <summary>The end of the samples no later window changes: the start of the next window's cross-fade, or the buffer's end.</summary>
    long Final => window == 0 ? 0 : next < frames ? FadeFrom(window) : bufferStart + buffer.Length;

    /// <summary>Window <paramref name="k"/>'s frames [start, end) as laid out: the first window, then windows twice as long as
    /// the one before (up to <see cref="WindowFrames"/>) each starting <see cref="OverlapFrames"/> before the previous one's
    /// end. Doubling bounds the inversion a reader waits for to about the length it has read so far, so a stream with a short
    /// first window does not invert the rest of a sentence at once.</summary>
    (long Start, long End) Nominal(int k)
    {
        long start = 0, size = first;
        for (int i = 0; i < k; i++) (start, size) = (start + size - OverlapFrames, Math.Min(2 * size, WindowFrames));
        return (start, Math.Min(frames, start + size));
    }

    /// <summary>First frame of window <paramref name="k"/> (a too-short last window reaches back to Griffin-Lim's minimum).</summary>
    long WindowStart(int k)
    {
        var (start, end) = Nominal(k);
        return end - start < GriffinLim.MinFrames(cfg) ? Math.Max(0, end - GriffinLim.MinFrames(cfg)) : start;
    }

    long FadeFrom(int k) => (WindowStart(k) + OverlapFrames / 4) * cfg.Hop;

    /// <summary>The first sample of window <paramref name="k"/>'s first frame (its n_fft samples about the frame's centre).</summary>
    long LeadingFrom(int k) => WindowStart(k) * cfg.Hop + cfg.FrameOffset - cfg.NFft / 2;

    void Append()
    {
        long first = WindowStart(window), end = Nominal(window).End;
        float[] w;
        using (var scope = NewDisposeScope())
        {
            // From the phase gradients, a window continues the phase of the waveform before it over its first frames, so
            // that the two agree where they are cross-faded (each window's integration otherwise starts at its own phase).
            bool continues = window > 0 && phaseStart == PhaseStart.PhaseGradient;
            var leading = continues ? GriffinLim.PhaseOfFrames(buffer, bufferStart, first, OverlapFrames / 2, cfg) : null;
            w = GriffinLim.Invert(mel[.., (int)first..(int)end], cfg, iters, momentum, phaseStart, leading);
        }
        heap.Check();
        long at = first * cfg.Hop;   // absolute sample of w[0], for either framing
        if (window == 0) { buffer = w; bufferStart = 0; }
        else
        {
            // Cross-fade over the middle half of the overlap: [at + O/4·hop, at + 3O/4·hop).
            long fadeFrom = FadeFrom(window), fadeTo = at + 3 * OverlapFrames / 4 * cfg.Hop;
            long keep = fadeFrom - bufferStart;
            var merged = new float[keep + (w.Length - (fadeFrom - at))];
            Array.Copy(buffer, merged, Math.Min(keep, buffer.Length));
            for (long i = fadeFrom; i < at + w.Length; i++)
            {
                float x = w[i - at];
                if (i < fadeTo && i - bufferStart < buffer.Length)
                {
                    float a = (float)(i - fadeFrom + 0.5) / (fadeTo - fadeFrom);
                    x = buffer[i - bufferStart] * (1 - a) + x * a;
                }
                merged[i - bufferStart] = x;
            }
            buffer = merged;
        }
        window++;
        next = end;
    }
}
