using WaveGradSharp.Audio;
using WaveGradSharp.Diffusion;
using static TorchSharp.torch;
using WaveGradSharp.Core;

namespace WaveGradSharp.Vocoder;

/// <summary>What a schedule search minimises.</summary>
public enum ScheduleMetric
{
    /// <summary>Log-mel L1 of the network's raw render against the clip's mel (the paper's criterion; dominated by
    /// the quiet parts, so it mostly rewards a lower noise floor).</summary>
    LogMelL1,
    /// <summary>Multi-resolution spectral convergence of the render from noise with the post-filter on against the
    /// clip's waveform (dominated by the loud, voiced parts).</summary>
    SpectralConvergence,
    /// <summary>Multi-resolution spectral convergence of the network's raw render from noise (no post-filter): the network
    /// alone, as the held-out tables score it.</summary>
    RawSpectralConvergence,
}

/// <summary>One scored candidate of a schedule search.</summary>
public readonly record struct SearchStep(int Evaluated, double[] Betas, double Score, double BestScore);

/// <summary>One scored candidate of a DDIM level search: the training schedule's timesteps it visits.</summary>
public readonly record struct LevelSearchStep(int Evaluated, int[] Timesteps, double Score, double BestScore);

/// <summary>
/// The paper's few-step schedule search: each β_i is a mantissa 1–9 times a fixed power of ten (the start
/// schedule's own, or evenly spaced from 10⁻⁶ to 10⁻¹ without one), scored by the log-mel L1 of renders of validation clips against their references
/// (or by their
/// spectral convergence, see <see cref="ScheduleMetric"/>). The full grid
/// has 9^N candidates; this searches it by coordinate descent (every mantissa of one step with the others
/// fixed, last step first, repeated for a number of sweeps), which needs only 9·N per sweep.
/// </summary>
public static class ScheduleSearch
{
    /// <summary>Powers of ten per step: evenly spaced exponents from −6 to −1.</summary>
    public static double[] Exponents(int steps) =>
        Enumerable.Range(0, steps).Select(i => Math.Pow(10, Math.Round(-6 + 5.0 * i / Math.Max(steps - 1, 1)))).ToArray();

    /// <summary>Mean score of renders of the clips with a schedule and a fixed seed, started from noise (WaveGrad's
    /// start: from the Griffin-Lim start the steps above its noise level never run, so their β could not be scored).
    /// Log-mel L1 is taken on the network's raw output (the post-filter would pull every candidate onto the mel and
    /// hide the differences); spectral convergence with the post-filter on.</summary>
    public static double Score(Vocoder vocoder, IReadOnlyList<Utterance> clips, NoiseSchedule schedule,
        ScheduleMetric metric = ScheduleMetric.LogMelL1, long seed = 7) =>
        Score(vocoder, clips, DdpmSampler.WaveGrad(schedule), metric, seed);

    /// <summary>The same score for any sampler, from noise.</summary>
    public static double Score(Vocoder vocoder, IReadOnlyList<Utterance> clips, ISampler sampler,
        ScheduleMetric metric = ScheduleMetric.LogMelL1, long seed = 7)
    {
        using var spec = new MelSpectrogram(vocoder.Voice.Mel);
        bool sc = metric != ScheduleMetric.LogMelL1;
        var options = new SynthesisOptions
        {
            Sampler = sampler, Seed = seed, Start = SamplerStart.Noise,
            PostFilterPasses = metric == ScheduleMetric.SpectralConvergence ? SynthesisOptions.DefaultPostFilterPasses : 0,
        };
        double total = 0;
        foreach (var clip in clips)
        {
            using var scope = NewDisposeScope();
            var m = clip.Mel;
            var audio = vocoder.Synthesize(m, options);
            if (sc)
            {
                total += Metrics.Compute(clip.Audio.data<float>().ToArray(), audio, vocoder.SampleRate, vocoder.Voice.Mel).SpectralConvergence;
                continue;
            }
            total += Metrics.LogMelL1(spec.Compute(tensor(audio)), m);
        }
        return total / clips.Count;
    }

    /// <summary>Searches an N-step schedule, from <paramref name="start"/> when given (for example the voice's
    /// default); returns the best one and its score.</summary>
    public static (NoiseSchedule Schedule, double Score) Run(Vocoder vocoder, IReadOnlyList<Utterance> clips, int steps, int sweeps = 2,
        IProgress<SearchStep>? progress = null, CancellationToken ct = default, ScheduleMetric metric = ScheduleMetric.LogMelL1,
        NoiseSchedule? start = null)
    {
        if (steps < 2 || steps > 12) throw WaveGradException.About($"Steps {steps}: the search handles 2 to 12 steps", "Steps");
        if (clips.Count == 0) throw new WaveGradException("schedule search needs at least one validation clip");
        // Start from the given schedule when it has the right length (each β's own power of ten, its mantissa
        // rounded to 1–9), else from mantissa 1 at evenly spaced exponents.
        var exps = Exponents(steps);
        var mant = Enumerable.Repeat(1, steps).ToArray();
        bool fromStart = start is not null && start.Steps == steps;
        if (fromStart)
            for (int i = 0; i < steps; i++)
            {
                exps[i] = Math.Pow(10, Math.Floor(Math.Log10(start!.Betas[i])));
                // Round half up on a value cleaned of float noise (0.35 / 0.1 = 3.4999999999999996 → 4); 9.5 and
                // above move to 1 at the next power of ten.
                int m = (int)Math.Round(Math.Round(start.Betas[i] / exps[i], 9), MidpointRounding.AwayFromZero);
                if (m >= 10) { exps[i] *= 10; m = 1; }
                mant[i] = Math.Max(1, m);
            }
        double[] Betas(int[] m) => m.Select((v, i) => v * exps[i]).ToArray();
        var scored = new ScoredCandidates(ct);
        double Eval(int[] m)
        {
            var betas = Betas(m);
            return scored.Of(m, () => Score(vocoder, clips, new NoiseSchedule(betas, "candidate"), metric),
                s => progress?.Report(new SearchStep(scored.Evaluated, betas, s, scored.Best)));
        }
        // A start that is not on the grid is scored as it is too, and kept if nothing on the grid beats it.
        bool offGrid = fromStart && !Betas(mant).Zip(start!.Betas, (g, b) => Math.Abs(g - b) <= 1e-12 * b).All(x => x);
        double startScore = double.PositiveInfinity;
        if (offGrid)
        {
            startScore = Score(vocoder, clips, start!, metric);
            scored.Add(startScore);
            progress?.Report(new SearchStep(scored.Evaluated, start!.Betas, startScore, scored.Best));
        }
        double current = Eval(mant);
        for (int sweep = 0; sweep < sweeps; sweep++)
        {
            bool changed = false;
            for (int i = steps - 1; i >= 0; i--)
            {
                int bestM = mant[i];
                for (int m = 1; m <= 9; m++)
                {
                    if (m == mant[i]) continue;
                    var trial = (int[])mant.Clone();
                    trial[i] = m;
                    double s = Eval(trial);
                    if (s < current) { current = s; bestM = m; changed = true; }
                }
                mant[i] = bestM;
            }
            if (!changed) break;
        }
        if (startScore <= current) return (new NoiseSchedule(start!.Betas, $"searched-{steps}"), startScore);
        return (new NoiseSchedule(Betas(mant), $"searched-{steps}"), current);
    }

    /// <summary>
    /// The same search for DDIM's levels: which <paramref name="steps"/> timesteps of the voice's training schedule DDIM visits,
    /// from evenly spaced ones. Coordinate descent, from the noisiest level down: each level but the last (timestep 0 stays, so
    /// that the walk ends on the data) tries 8 places evenly spread between its neighbours, the others fixed.
    /// </summary>
    public static (int[] Timesteps, double Score) SearchLevels(Vocoder vocoder, IReadOnlyList<Utterance> clips, int steps, int sweeps = 2,
        IProgress<LevelSearchStep>? progress = null, CancellationToken ct = default, ScheduleMetric metric = ScheduleMetric.LogMelL1)
    {
        if (steps < 2 || steps > 12) throw WaveGradException.About($"Steps {steps}: the search handles 2 to 12 steps", "Steps");
        if (clips.Count == 0) throw new WaveGradException("schedule search needs at least one validation clip");
        var train = Voice.TrainingSchedule;
        if (train.Steps < 2 * steps) throw new WaveGradException($"the training schedule's {train.Steps} steps leave no room to search {steps} levels");
        var kept = new DdimSampler(train, steps).Timesteps.ToArray();
        var scored = new ScoredCandidates(ct);
        double Eval(int[] k) => scored.Of(k, () => Score(vocoder, clips, new DdimSampler(train, k), metric),
            s => progress?.Report(new LevelSearchStep(scored.Evaluated, k, s, scored.Best)));
        double current = Eval(kept);
        for (int sweep = 0; sweep < sweeps; sweep++)
        {
            bool changed = false;
            for (int i = steps - 1; i >= 1; i--)
            {
                int lo = kept[i - 1] + 1, hi = i == steps - 1 ? train.Steps - 1 : kept[i + 1] - 1;
                foreach (int t in Enumerable.Range(0, 8).Select(j => lo + (int)Math.Round((hi - lo) * j / 7.0)).Distinct())
                {
                    if (t == kept[i]) continue;
                    var trial = (int[])kept.Clone();
                    trial[i] = t;
                    double s = Eval(trial);
                    if (s < current) { current = s; kept = trial; changed = true; }
                }
            }
            if (!changed) break;
        }
        return (kept, current);
    }

    /// <summary>What a coordinate descent has scored: each candidate once (a sweep comes back to the current one), counted,
    /// with the best score so far.</summary>
    sealed class ScoredCandidates(CancellationToken ct)
    {
        readonly Dictionary<string, double> cache = [];
        public int Evaluated { get; private set; }
        public double Best { get; private set; } = double.PositiveInfinity;

        /// <summary>The score of the candidate <paramref name="key"/>: <paramref name="score"/>'s the first time, when
        /// <paramref name="reported"/> hears of it; the remembered one after.</summary>
        public double Of(int[] key, Func<double> score, Action<double> reported)
        {
            string k = string.Join(",", key);
            if (cache.TryGetValue(k, out var s)) return s;
            ct.ThrowIfCancellationRequested();
            s = cache[k] = score();
            Add(s);
            reported(s);
            return s;
        }

        /// <summary>Counts a candidate scored outside the cache (a start off the grid).</summary>
        public void Add(double s)
        {
            Evaluated++;
            Best = Math.Min(Best, s);
        }
    }
}
