using System.Text.Json;
using System.Text.Json.Serialization;
using WaveGradSharp.Core;

namespace WaveGradSharp.Diffusion;

/// <summary>Raised for a schedule that is not a valid variance-preserving diffusion (β outside (0, 1), empty, ...).</summary>
public sealed class ScheduleException(string message) : WaveGradException(message);

/// <summary>
/// A discrete variance-preserving noise schedule: β_1..β_T in float64 and every quantity derived from it,
/// named after the DDPM / improved-DDPM papers' symbols. Index t = 0 is the first (least noisy) step.
/// </summary>
public sealed class NoiseSchedule
{
    /// <summary>Human-readable name ("wg-6", "ddpm-linear", "custom", ...).</summary>
    public string Name { get; }
    /// <summary>β_t, the per-step noise variance. Length T.</summary>
    public double[] Betas { get; }
    /// <summary>α_t = 1 − β_t.</summary>
    public double[] Alphas { get; }
    /// <summary>ᾱ_t = Π_{s≤t} α_s.</summary>
    public double[] AlphasCumprod { get; }
    /// <summary>ᾱ_{t−1}, with ᾱ_{−1} = 1.</summary>
    public double[] AlphasCumprodPrev { get; }
    /// <summary>√ᾱ_t: the signal scale, and WaveGrad's continuous noise level.</summary>
    public double[] SqrtAlphasCumprod { get; }
    /// <summary>√(1 − ᾱ_t): the noise standard deviation.</summary>
    public double[] SqrtOneMinusAlphasCumprod { get; }
    /// <summary>β̃_t = β_t (1 − ᾱ_{t−1}) / (1 − ᾱ_t), the variance of q(x_{t−1} | x_t, x_0).</summary>
    public double[] PosteriorVariance { get; }
    /// <summary>log β̃_t with β̃_0 replaced by β̃_1 (β̃_0 is 0), as in improved-DDPM.</summary>
    public double[] PosteriorLogVarianceClipped { get; }
    /// <summary>Coefficient of x_0 in the posterior mean: β_t √ᾱ_{t−1} / (1 − ᾱ_t).</summary>
    public double[] PosteriorMeanCoef1 { get; }
    /// <summary>Coefficient of x_t in the posterior mean: (1 − ᾱ_{t−1}) √α_t / (1 − ᾱ_t).</summary>
    public double[] PosteriorMeanCoef2 { get; }
    /// <summary>
    /// For a respaced schedule, the index in the original schedule that each step corresponds to (what a
    /// network conditioned on the timestep is given); otherwise 0..T−1.
    /// </summary>
    public int[] Timesteps { get; }

    /// <summary>Number of steps T.</summary>
    public int Steps => Betas.Length;

    /// <summary>Signal-to-noise ratio ᾱ_T / (1 − ᾱ_T) at the last step.</summary>
    public double TerminalSnr => AlphasCumprod[^1] / (1 - AlphasCumprod[^1]);

    /// <summary>The longest schedule accepted.</summary>
    public const int MaxSteps = 100_000;

    /// <summary>Builds a schedule from β values; every β must lie in (0, 1).</summary>
    public NoiseSchedule(IReadOnlyList<double> betas, string name = "custom", int[]? timesteps = null)
    {
        if (betas.Count == 0) throw new ScheduleException($"schedule '{name}': β list is empty");
        if (betas.Count > MaxSteps) throw new ScheduleException($"schedule '{name}': {betas.Count} steps; at most {MaxSteps} are supported");
        for (int i = 0; i < betas.Count; i++)
        {
            double b = betas[i];
            if (!(b > 0 && b < 1)) throw new ScheduleException($"schedule '{name}': β[{i}] = {b} is outside (0, 1)");
        }
        if (timesteps != null && timesteps.Length != betas.Count)
            throw new ScheduleException($"schedule '{name}': {timesteps.Length} timesteps for {betas.Count} β values");
        Name = name;
        int n = betas.Count;
        Betas = betas.ToArray();
        Alphas = new double[n]; AlphasCumprod = new double[n]; AlphasCumprodPrev = new double[n];
        SqrtAlphasCumprod = new double[n]; SqrtOneMinusAlphasCumprod = new double[n];
        PosteriorVariance = new double[n]; PosteriorLogVarianceClipped = new double[n];
        PosteriorMeanCoef1 = new double[n]; PosteriorMeanCoef2 = new double[n];
        double cum = 1;
        for (int t = 0; t < n; t++)
        {
            Alphas[t] = 1 - Betas[t];
            AlphasCumprodPrev[t] = cum;
            cum *= Alphas[t];
            AlphasCumprod[t] = cum;
            SqrtAlphasCumprod[t] = Math.Sqrt(cum);
            SqrtOneMinusAlphasCumprod[t] = Math.Sqrt(1 - cum);
            PosteriorVariance[t] = Betas[t] * (1 - AlphasCumprodPrev[t]) / (1 - cum);
            PosteriorMeanCoef1[t] = Betas[t] * Math.Sqrt(AlphasCumprodPrev[t]) / (1 - cum);
            PosteriorMeanCoef2[t] = (1 - AlphasCumprodPrev[t]) * Math.Sqrt(Alphas[t]) / (1 - cum);
        }
        for (int t = 0; t < n; t++)
            PosteriorLogVarianceClipped[t] = Math.Log(t == 0 ? (n > 1 ? PosteriorVariance[1] : Betas[0]) : PosteriorVariance[t]);
        Timesteps = timesteps?.ToArray() ?? Enumerable.Range(0, n).ToArray();
    }

    /// <summary>Builds the schedule whose ᾱ values are the given ones (strictly decreasing, in (0, 1)).</summary>
    public static NoiseSchedule FromAlphasCumprod(IReadOnlyList<double> alphasCumprod, string name = "custom", int[]? timesteps = null)
    {
        if (alphasCumprod.Count == 0) throw new ScheduleException($"schedule '{name}': ᾱ list is empty");
        var betas = new double[alphasCumprod.Count];
        double prev = 1;
        for (int i = 0; i < betas.Length; i++)
        {
            double a = alphasCumprod[i];
            if (!(a > 0 && a < prev))
                throw new ScheduleException($"schedule '{name}': ᾱ must decrease strictly inside (0, 1), but ᾱ[{i}] = {a} after {prev}");
            betas[i] = 1 - a / prev;
            prev = a;
        }
        return new NoiseSchedule(betas, name, timesteps);
    }

    // ---------------------------------------------------------------- named schedules

    /// <summary>The names accepted by <see cref="Named"/>.</summary>
    public static IReadOnlyList<string> Names { get; } =
        ["ddpm-linear", "cosine", "wavegrad-train", "wg-1000", "wg-50", "wg-25", "wg-6", "wg-3", "diffwave-fast"];

    /// <summary>
    /// A named schedule: <c>ddpm-linear</c> (β 1e-4→0.02, T = 1000), <c>cosine</c> (improved-DDPM, s = 0.008,
    /// β ≤ 0.999, T = 1000), <c>wavegrad-train</c> / <c>wg-1000</c> (linspace(1e-6, 0.01, 1000)), <c>wg-50</c>
    /// (linspace(1e-4, 0.05, 50)), <c>wg-25</c> (Fibonacci from 1e-6, 2e-6), <c>wg-6</c>, <c>wg-3</c>,
    /// <c>diffwave-fast</c> (6 steps).
    /// </summary>
    public static NoiseSchedule Named(string name) => name.ToLowerInvariant() switch
    {
        "ddpm-linear" => new NoiseSchedule(Linspace(1e-4, 0.02, 1000), "ddpm-linear"),
        "cosine" => Cosine(1000),
        "wavegrad-train" or "wg-1000" => new NoiseSchedule(Linspace(1e-6, 0.01, 1000), name.ToLowerInvariant()),
        "wg-50" => new NoiseSchedule(Linspace(1e-4, 0.05, 50), "wg-50"),
        "wg-25" => new NoiseSchedule(Fibonacci(1e-6, 2e-6, 25), "wg-25"),
        "wg-6" => new NoiseSchedule([7e-6, 1.4e-4, 2.1e-3, 2.8e-2, 0.35, 0.7], "wg-6"),
        "wg-3" => new NoiseSchedule([3e-4, 6e-2, 0.9], "wg-3"),
        "diffwave-fast" => new NoiseSchedule([1e-4, 1e-3, 1e-2, 0.05, 0.2, 0.5], "diffwave-fast"),
        _ => throw new ScheduleException($"unknown schedule '{name}'; known: {string.Join(", ", Names)}"),
    };

    /// <summary>Loads a named schedule, or a JSON file when <paramref name="nameOrPath"/> ends in .json.</summary>
    public static NoiseSchedule Resolve(string nameOrPath) =>
        nameOrPath.EndsWith(".json", StringComparison.OrdinalIgnoreCase) || File.Exists(nameOrPath)
            ? Load(nameOrPath) : Named(nameOrPath);

    /// <summary>improved-DDPM cosine schedule: ᾱ(t) = f(t)/f(0), f(t) = cos²((t/T + s)/(1 + s)·π/2), β clipped at 0.999.</summary>
    public static NoiseSchedule Cosine(int steps, double s = 0.008)
    {
        double F(double t) { double c = Math.Cos((t / steps + s) / (1 + s) * Math.PI / 2); return c * c; }
        var betas = new double[steps];
        for (int i = 0; i < steps; i++) betas[i] = Math.Min(1 - F(i + 1) / F(i), 0.999);
        return new NoiseSchedule(betas, "cosine");
    }

    /// <summary>n evenly spaced values from a to b inclusive (numpy.linspace).</summary>
    public static double[] Linspace(double a, double b, int n)
    {
        var r = new double[n];
        for (int i = 0; i < n; i++) r[i] = n == 1 ? a : a + (b - a) * i / (n - 1);
        return r;
    }

    static double[] Fibonacci(double first, double second, int n)
    {
        var r = new double[n];
        r[0] = first; if (n > 1) r[1] = second;
        for (int i = 2; i < n; i++) r[i] = r[i - 1] + r[i - 2];
        return r;
    }

    // ---------------------------------------------------------------- respacing and continuous levels

    /// <summary>
    /// improved-DDPM timestep respacing: keeps <paramref name="count"/> evenly spaced steps of this schedule
    /// (the first and the last when <paramref name="count"/> ≥ 2) and recomputes β so that ᾱ at the kept steps is unchanged.
    /// <see cref="Timesteps"/> of the result maps each new step to its index in this schedule.
    /// </summary>
    public NoiseSchedule Respace(int count)
    {
        if (count < 1 || count > Steps) throw new ScheduleException($"schedule '{Name}': cannot respace {Steps} steps to {count}");
        var kept = new int[count];
        for (int i = 0; i < count; i++) kept[i] = count == 1 ? Steps - 1 : (int)Math.Round((double)i * (Steps - 1) / (count - 1));
        return Respace(kept, $"{Name}-respaced-{count}");
    }

    /// <summary>
    /// Keeps the given steps of this schedule (increasing indices in [0, <see cref="Steps"/>)), β recomputed so that ᾱ at
    /// each is unchanged: a schedule searched level by level rather than spaced evenly.
    /// </summary>
    public NoiseSchedule Respace(IReadOnlyList<int> kept, string? name = null)
    {
        if (kept.Count == 0) throw new ScheduleException($"schedule '{Name}': keep at least one step");
        for (int i = 0; i < kept.Count; i++)
            if (kept[i] < 0 || kept[i] >= Steps || (i > 0 && kept[i] <= kept[i - 1]))
                throw new ScheduleException($"schedule '{Name}': kept steps must increase within [0, {Steps - 1}]; got {string.Join(",", kept)}");
        return FromAlphasCumprod(kept.Select(k => AlphasCumprod[k]).ToArray(), name ?? $"{Name}-kept-{string.Join("-", kept)}",
            kept.Select(k => Timesteps[k]).ToArray());
    }

    /// <summary>
    /// WaveGrad's training noise level: given step s ∈ [1, T] and u ∈ [0, 1), √ᾱ drawn uniformly between the
    /// adjacent levels l_{s−1} and l_s, where l_0 = 1 and l_s = √ᾱ_{s} (1-based).
    /// </summary>
    public double ContinuousLevel(int s, double u)
    {
        if (s < 1 || s > Steps) throw new ArgumentOutOfRangeException(nameof(s), $"step {s} is outside [1, {Steps}]");
        double hi = s == 1 ? 1.0 : SqrtAlphasCumprod[s - 2];
        double lo = SqrtAlphasCumprod[s - 1];
        return hi + u * (lo - hi);
    }

    // ---------------------------------------------------------------- JSON

    internal sealed record Dto(
        [property: JsonPropertyName("name")] string? Name,
        [property: JsonPropertyName("betas")] double[]? Betas,
        [property: JsonPropertyName("timesteps")] int[]? Timesteps);

    // Source-generated metadata: reflection-based (de)serialization costs 50-130 ms on first use, in every voice load.
    static readonly JsonSerializerOptions JsonOptions = new() { WriteIndented = true, TypeInfoResolver = ScheduleJson.Default };

    /// <summary>JSON form: <c>{"name": "...", "betas": [...], "timesteps": [...]}</c>.</summary>
    public string ToJson() =>
        JsonSerializer.Serialize(new Dto(Name, Betas, Timesteps.SequenceEqual(Enumerable.Range(0, Steps)) ? null : Timesteps), JsonOptions);

    /// <summary>Parses the JSON form; <paramref name="source"/> names the file in errors.</summary>
    public static NoiseSchedule FromJson(string json, string source = "<json>")
    {
        Dto? dto;
        try { dto = JsonSerializer.Deserialize<Dto>(json, JsonOptions); }
        catch (JsonException e) { throw new ScheduleException($"{source}: not a schedule JSON file ({e.Message.Split('.')[0]})"); }
        if (dto?.Betas == null) throw new ScheduleException($"{source}: no \"betas\" array");
        try { return new NoiseSchedule(dto.Betas, dto.Name ?? Path.GetFileNameWithoutExtension(source), dto.Timesteps); }
        catch (ScheduleException e) { throw new ScheduleException($"{source}: {e.Message}"); }
    }

    /// <summary>Reads a schedule JSON file.</summary>
    public static NoiseSchedule Load(string path)
    {
        return FromJson(InputFile.ReadAllText(path, "schedule file"), path);
    }

    /// <summary>Writes the schedule as JSON, atomically (temporary file, then rename).</summary>
    public void Save(string path) => AtomicFile.WriteAllText(path, ToJson());
}

[JsonSerializable(typeof(NoiseSchedule.Dto))]
internal sealed partial class ScheduleJson : JsonSerializerContext;
