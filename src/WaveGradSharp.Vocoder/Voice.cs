using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using WaveGradSharp.Audio;
using WaveGradSharp.Core;
using WaveGradSharp.Diffusion;
using static TorchSharp.torch;

namespace WaveGradSharp.Vocoder;

/// <summary>
/// A voice: a <see cref="ModelBundle"/> whose manifest is <c>voice.json</c> (kind <c>vocoder</c>; its architecture,
/// sample rate, mel preset, network config, noise prior, default and searched schedules, and a free-form card:
/// corpus, steps, hardware, measured quality) with <c>model.safetensors</c> (EMA weights, fp16 or fp32).
/// </summary>
public sealed class Voice
{
    /// <summary>Where voices are found by name: <c>$WAVEGRAD_VOICES</c>, <c>./voices</c>, the user's data folder,
    /// <c>voices/</c> beside the program (the NuGet voice package's content), then a source checkout's <c>voices/</c>.</summary>
    public static BundleLibrary Library { get; } = new("voice", "voice.json", "WAVEGRAD_VOICES", "voices", "voices");

    /// <summary>The voice loaded when none is named, and carried by the package and the tool: <c>DefaultVoice</c> in
    /// src/Directory.Build.props, read from this assembly's metadata.</summary>
    public static string DefaultName { get; } = typeof(Voice).Assembly.GetCustomAttributes(typeof(System.Reflection.AssemblyMetadataAttribute), false)
        .Cast<System.Reflection.AssemblyMetadataAttribute>().FirstOrDefault(a => a.Key == "DefaultVoice")?.Value
        ?? throw new InvalidOperationException("WaveGradSharp.Vocoder was built without DefaultVoice (src/Directory.Build.props)");

    /// <summary>The longest schedule a card may name (the training schedule's length).</summary>
    public const int MaxScheduleSteps = 1000;

    /// <summary>The manifest's kind.</summary>
    public const string Kind = "vocoder";

    /// <summary>The bundle on disk.</summary>
    public ModelBundle Bundle { get; }
    /// <summary>Folder of the bundle.</summary>
    public string Directory => Bundle.Directory;
    /// <summary>Bundle name (the folder name unless the card says otherwise).</summary>
    public string Name { get; }
    /// <summary>Mel frontend the voice was trained with, framing included: its mels are what the voice expects.</summary>
    public MelConfig Mel { get; }
    /// <summary>Output sample rate (Hz).</summary>
    public int SampleRate => Mel.SampleRate;
    /// <summary>Which vocoder reads the voice (<see cref="VocoderArchitectures"/>); voices written before it was recorded are WaveGrad's.</summary>
    public string Architecture => Bundle.Architecture;
    /// <summary>The network's config as the card stores it; the architecture reads it.</summary>
    public JsonObject Network { get; }
    /// <summary>The noise the sampler starts from and adds (see <see cref="NoisePrior"/>).</summary>
    public NoisePrior Prior { get; }
    /// <summary>Schedule used when none is asked for.</summary>
    public NoiseSchedule DefaultSchedule { get; }
    /// <summary>The sampler used when none is asked for: the card's <c>default_sampler</c> ({"name", "steps", "eta"}, see
    /// <see cref="Sampler"/>), else WaveGrad's over <see cref="DefaultSchedule"/>.</summary>
    public ISampler DefaultSampler { get; }
    /// <summary>
    /// The render settings for this voice: <paramref name="context"/>'s (default: <c>new SynthesisOptions()</c>; <c>speak</c> and
    /// <c>serve</c> pass <see cref="SynthesisOptions.LowLatency"/>) with the voice's <see cref="DefaultSampler"/> and what the card's
    /// <c>default_render</c> sets: <c>start</c> (noise or griffin-lim), <c>start_iterations</c>, <c>start_noise</c> (the largest
    /// noise std a Griffin-Lim start enters the sampler at, in (0, 1]), <c>start_phase</c> (gradient or random), <c>consistency</c> (as
    /// <see cref="ConsistencySteps.Parse"/> reads it), <c>post_filter</c> and <c>post_filter_momentum</c>. A network kind whose best render differs from
    /// WaveGrad's (the <c>stft</c> kind needs no consistency steps after a Griffin-Lim start) says so once, in its card. The CPU
    /// piece size is the network kind's (<see cref="IVocoderArchitecture.CpuPieceFrames"/>).
    /// </summary>
    public SynthesisOptions RenderDefaults(SynthesisOptions? context = null)
    {
        var o = (context ?? new SynthesisOptions()) with { Sampler = DefaultSampler };
        return o with
        {
            Start = defaultStart ?? o.Start,
            StartIterations = defaultStartIterations ?? o.StartIterations,
            StartNoise = defaultStartNoise ?? o.StartNoise,
            StartPhase = defaultStartPhase ?? o.StartPhase,
            Consistency = defaultConsistency ?? o.Consistency,
            PostFilterPasses = defaultPostFilter ?? o.PostFilterPasses,
            PostFilterMomentum = defaultPostFilterMomentum ?? o.PostFilterMomentum,
            CpuPieceFrames = VocoderArchitectures.Get(Architecture, Bundle.ManifestPath).CpuPieceFrames ?? o.CpuPieceFrames,
        };
    }

    /// <summary>The fields a card's <c>default_render</c> may set.</summary>
    public static IReadOnlyList<string> DefaultRenderFields { get; } =
        ["start", "start_iterations", "start_noise", "start_phase", "consistency", "post_filter", "post_filter_momentum"];

    readonly SamplerStart? defaultStart;
    readonly int? defaultStartIterations, defaultPostFilter;
    readonly double? defaultStartNoise, defaultPostFilterMomentum;
    readonly PhaseStart? defaultStartPhase;
    readonly ConsistencySteps? defaultConsistency;

    /// <summary>Schedules found by <c>schedule search</c>, by step count.</summary>
    public IReadOnlyDictionary<int, NoiseSchedule> SearchedSchedules { get; }
    /// <summary>The whole voice.json, including the card fields.</summary>
    public JsonObject Card => Bundle.Manifest;
    /// <summary>Path of the weights.</summary>
    public string WeightsPath => Bundle.WeightsPath;

    Voice(ModelBundle bundle)
    {
        Bundle = bundle;
        var card = bundle.Manifest;
        string src = bundle.ManifestPath;
        Name = ModelBundle.String(card, "name", src) ?? Path.GetFileName(Path.GetFullPath(bundle.Directory).TrimEnd('/', '\\'));
        string preset = ModelBundle.String(card, "mel_preset", src) ?? throw new WaveGradException($"{src}: no \"mel_preset\"");
        string? framing = ModelBundle.String(card, "mel_framing", src);
        // Voices written before the framing was recorded were trained on centred frames.
        if (preset == "hifigan-22k" && framing is null) preset = "hifigan-22k-centered";
        Mel = MelConfig.Preset(preset, src);
        if (framing is not null && framing != FramingName(Mel.Framing))
            throw new WaveGradException($"{src}: mel_framing '{Text.Escape(framing)}' does not match preset {preset} ({FramingName(Mel.Framing)})");
        if (card["sample_rate"] is not JsonValue sr || sr.GetValueKind() != JsonValueKind.Number || !sr.TryGetValue(out int rate) || rate != Mel.SampleRate)
            throw new WaveGradException($"{src}: \"sample_rate\" {Text.Escape(card["sample_rate"]?.ToJsonString() ?? "(missing)", 40)} " +
                $"does not match preset {preset} ({Mel.SampleRate} Hz)");
        Network = card["network"] as JsonObject ?? throw new WaveGradException($"{src}: no \"network\" object");
        Prior = NoisePrior.FromCard(card["prior"], Mel, src);
        var searched = new Dictionary<int, NoiseSchedule>();
        if (card["schedules"] is JsonObject so)
            foreach (var (k, v) in so)
            {
                if (!int.TryParse(k, out int steps) || v is null) throw new WaveGradException($"{src}: schedules.{Text.Escape(k)} is not a step count " +
                    "with a schedule");
                searched[steps] = NoiseSchedule.FromJson(v.ToJsonString(), $"{src} schedules.{k}");
            }
        SearchedSchedules = searched;
        DefaultSchedule = card["default_schedule"] is JsonNode ds
            ? ds.GetValueKind() == JsonValueKind.String
                ? ResolveSchedule(ds.GetValue<string>())
                : NoiseSchedule.FromJson(ds.ToJsonString(), $"{src} default_schedule")
            : searched.TryGetValue(6, out var s6) ? s6 : NoiseSchedule.Named("wg-6");
        foreach (var s in SearchedSchedules.Values.Append(DefaultSchedule))
            if (s.Steps > MaxScheduleSteps) throw new WaveGradException($"{src}: a schedule of {s.Steps} steps; a voice's may have at most {MaxScheduleSteps}");
        if (card["default_sampler"] is JsonNode dsn)
        {
            if (dsn is not JsonObject so2 || ModelBundle.String(so2, "name", src) is not string samplerName)
                throw new WaveGradException($"{src}: default_sampler must be an object with a \"name\"");
            double eta = so2["eta"] is JsonValue ev && ev.TryGetValue(out double e) ? e : 0;
            try { DefaultSampler = Sampler(samplerName, so2["steps"]?.ToString(), eta); }
            catch (WaveGradException ex) { throw new WaveGradException($"{src}: default_sampler: {ex.Message}"); }
        }
        else DefaultSampler = DdpmSampler.WaveGrad(DefaultSchedule);
        if (card["default_render"] is JsonNode drn)
        {
            if (drn is not JsonObject dr) throw new WaveGradException($"{src}: default_render must be an object");
            foreach (var (k, _) in dr)
                if (!DefaultRenderFields.Contains(k))
                    throw new WaveGradException($"{src}: default_render.{Text.Escape(k, 40)} is unknown; use {string.Join(", ", DefaultRenderFields)}");
            int? Count(string field, int min, int max) => dr[field] is not JsonNode n ? null
                : n is JsonValue v && v.GetValueKind() == JsonValueKind.Number && v.TryGetValue(out int i) && i >= min && i <= max ? i
                : throw new WaveGradException($"{src}: default_render.{field} must be a whole number from {min} to {max}");
            defaultStart = ModelBundle.String(dr, "start", $"{src}: default_render") switch
            {
                null => null,
                "noise" => SamplerStart.Noise,
                "griffin-lim" => SamplerStart.GriffinLim,
                var other => throw new WaveGradException($"{src}: default_render.start '{Text.Escape(other, 40)}' must be noise or griffin-lim"),
            };
            defaultStartPhase = ModelBundle.String(dr, "start_phase", $"{src}: default_render") switch
            {
                null => null,
                var name => SynthesisOptions.ParseStartPhase(name) ?? throw new WaveGradException(
                    $"{src}: default_render.start_phase '{Text.Escape(name, 40)}' must be gradient or random"),
            };
            defaultStartIterations = Count("start_iterations", 1, 10_000);
            defaultPostFilter = Count("post_filter", 0, 64);
            double? Number(string field, Func<double, bool> inRange, string range) => dr[field] is not JsonNode n ? null
                : n is JsonValue v && v.GetValueKind() == JsonValueKind.Number && v.TryGetValue(out double d) && inRange(d) ? d
                : throw new WaveGradException($"{src}: default_render.{field} must be a number in {range}");
            defaultStartNoise = Number("start_noise", d => d > 0 && d <= 1, "(0, 1]");
            defaultPostFilterMomentum = Number("post_filter_momentum", m => m >= 0 && m < 1, "[0, 1)");
            if (ModelBundle.String(dr, "consistency", $"{src}: default_render") is string cs)
                defaultConsistency = ConsistencySteps.Parse(cs, $"{src}: default_render.consistency");
        }
        VocoderArchitectures.Get(Architecture, src).Validate(this);
    }

    /// <summary>How a card names a framing: "centered" or "hifigan".</summary>
    public static string FramingName(MelFraming f) => f == MelFraming.HifiGan ? "hifigan" : "centered";

    /// <summary>The framing of a mel given to this voice by name: <c>hifigan</c>, <c>centered</c> or <c>voice</c> (its own); null:
    /// HiFi-GAN's for the hifigan-22k settings (what acoustic models and <c>wavegrad mel</c> emit), else the voice's.</summary>
    public MelFraming InputFraming(string? name) => name switch
    {
        "hifigan" => MelFraming.HifiGan,
        "centered" => MelFraming.Centered,
        "voice" => Mel.Framing,
        null => Mel.Name.StartsWith("hifigan-22k", StringComparison.Ordinal) ? MelFraming.HifiGan : Mel.Framing,
        _ => throw WaveGradException.About($"Framing '{Text.Escape(name, 40)}': use hifigan, centered or voice", "Framing"),
    };

    /// <summary>
    /// A schedule for this voice: a step count (a searched schedule of that length, else the named WaveGrad one:
    /// 1000, 50, 25, 6, 3), a schedule name, or a JSON file.
    /// </summary>
    public NoiseSchedule ResolveSchedule(string? spec)
    {
        if (string.IsNullOrEmpty(spec)) return DefaultSchedule;
        if (int.TryParse(spec, out int steps))
        {
            if (SearchedSchedules.TryGetValue(steps, out var s)) return s;
            return steps switch
            {
                1000 => NoiseSchedule.Named("wavegrad-train"),
                50 or 25 or 6 or 3 => NoiseSchedule.Named($"wg-{steps}"),
                _ => throw WaveGradException.About($"Steps {steps}: no schedule of that length; use " +
                    string.Join(", ", new[] { 1000, 50, 25, 6, 3 }.Concat(SearchedSchedules.Keys).Distinct().OrderDescending()) +
                    " or a JSON file", "Steps"),
            };
        }
        return NoiseSchedule.Resolve(spec);
    }

    /// <summary>The sampler names <see cref="Sampler"/> takes.</summary>
    public static IReadOnlyList<string> SamplerNames { get; } = ["wavegrad", "respaced", "ddim", "pc", "ode"];

    /// <summary>The schedule the voice's network was trained over, which the samplers other than WaveGrad's respace.</summary>
    public static NoiseSchedule TrainingSchedule => NoiseSchedule.Named("wavegrad-train");

    /// <summary>
    /// A sampler for this voice by name. <c>wavegrad</c>: WaveGrad's ancestral sampler over a β list (<paramref name="steps"/> as
    /// <see cref="ResolveSchedule"/> reads it; default the voice's). The others walk <paramref name="steps"/> (a count, default 6)
    /// evenly spaced timesteps of the training schedule: <c>respaced</c> (ancestral, σ² = β̃, clamped as WaveGrad's),
    /// <c>ddim</c> (η = <paramref name="eta"/>; <paramref name="steps"/> may instead list the training schedule's timesteps, comma-separated,
    /// as <c>schedule search --sampler ddim</c> finds them), <c>pc</c> (variance-preserving predictor–corrector, one corrector step: two
    /// evaluations a level) and <c>ode</c> (the probability-flow ODE by Heun: 2·steps − 1 evaluations).
    /// </summary>
    public ISampler Sampler(string name, string? steps = null, double eta = 0)
    {
        if (name == "wavegrad") return DdpmSampler.WaveGrad(ResolveSchedule(steps));
        if (!(eta >= 0 && eta <= 1)) throw WaveGradException.About($"Eta {eta}: must be in [0, 1]", "Eta");
        if (name == "ddim" && steps is not null && steps.Contains(','))
        {
            var kept = steps.Split(',', StringSplitOptions.TrimEntries).Select(t => int.TryParse(t, out int k) ? k : -1).ToArray();
            if (kept.Length > MaxScheduleSteps || kept.Any(k => k < 0))
                throw WaveGradException.About($"Steps '{Text.Escape(steps, 60)}': ddim takes a count, or up to {MaxScheduleSteps} comma-separated " +
                    "timesteps of the training schedule", "Steps");
            try { return new DdimSampler(TrainingSchedule, kept, eta); }
            catch (ScheduleException e) { throw WaveGradException.About($"Steps '{Text.Escape(steps, 60)}': {e.Message}", "Steps"); }
        }
        int n = 6;
        if (steps is not null && (!int.TryParse(steps, out n) || n < 1 || n > MaxScheduleSteps))
            throw WaveGradException.About($"Steps '{Text.Escape(steps, 40)}': the {Text.Escape(name, 20)} sampler takes a step count from 1 to " +
                $"{MaxScheduleSteps}", "Steps");
        var train = TrainingSchedule;
        return name switch
        {
            "respaced" => new DdpmSampler(train.Respace(n), ReverseVariance.BetaTilde, clampSample: 1.0, name: "respaced"),
            "ddim" => new DdimSampler(train, n, eta),
            "pc" => PredictorCorrectorSampler.VariancePreserving(train.Respace(n)),
            "ode" => ProbabilityFlowSampler.ForSchedule(train, n),
            _ => throw WaveGradException.About($"Sampler '{Text.Escape(name, 40)}': unknown; use {string.Join(", ", SamplerNames)}", "Sampler"),
        };
    }

    /// <summary>Voice bundles found on the search path.</summary>
    public static IEnumerable<string> Available() => Library.Available();

    /// <summary>Loads voice.json from a folder, or finds a bundle by name on the search path (<see cref="Library"/>).
    /// Every field is checked (the network against the architecture's limits) before any weights are read.</summary>
    public static Voice Load(string nameOrPath)
    {
        var bundle = ModelBundle.Load(nameOrPath, Library, Kind, VocoderArchitectures.Default, Kind);
        try { return new Voice(bundle); }
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException or KeyNotFoundException or ArgumentException)
        {
            throw new WaveGradException($"{bundle.ManifestPath}: malformed ({Text.Escape(Text.FirstLine(e.Message))})", e);
        }
    }

    /// <summary>
    /// Writes a bundle folder (see <see cref="ModelBundle.Save"/>). <paramref name="card"/> holds the free-form fields
    /// (training, quality); the typed fields are set here.
    /// </summary>
    public static void Save(string dir, string name, MelConfig mel, string architecture, JsonNode network, IReadOnlyDictionary<string, Tensor> weights,
        JsonObject? card = null, NoiseSchedule? defaultSchedule = null, IReadOnlyDictionary<int, NoiseSchedule>? schedules = null, bool half = true)
    {
        var c = card is null ? new JsonObject() : (JsonObject)card.DeepClone();
        c["name"] = name;
        c["sample_rate"] = mel.SampleRate;
        c["mel_preset"] = mel.Name;
        c["mel_framing"] = FramingName(mel.Framing);
        c["network"] = network.DeepClone();
        c["parameters"] = weights.Values.Sum(t => t.numel());
        if (defaultSchedule is not null) c["default_schedule"] = JsonNode.Parse(defaultSchedule.ToJson());
        if (schedules is not null)
        {
            var so = new JsonObject();
            foreach (var (k, s) in schedules.OrderBy(kv => kv.Key)) so[k.ToString()] = JsonNode.Parse(s.ToJson());
            c["schedules"] = so;
        }
        ModelBundle.Save(dir, Library.ManifestName, Kind, architecture, c, weights, half);
    }

    /// <summary>
    /// Writes this voice (for example a training run folder) as a shippable bundle: EMA weights (fp16 when
    /// <paramref name="half"/>) and voice.json with the card, without raw weights or checkpoints.
    /// </summary>
    public void Export(string dir, string? name = null, bool half = true, JsonObject? extraCard = null)
    {
        string src = Path.GetFullPath(Directory).TrimEnd('/') + "/", dst = Path.GetFullPath(dir).TrimEnd('/') + "/";
        if (src.StartsWith(dst, StringComparison.Ordinal) || dst.StartsWith(src, StringComparison.Ordinal))
            throw new WaveGradException($"{dir}: the export must go to a folder outside {Directory}");
        var card = (JsonObject)Card.DeepClone();
        if (extraCard is not null)
            foreach (var (k, v) in extraCard) card[k] = v?.DeepClone();
        using var scope = NewDisposeScope();
        Save(dir, name ?? Path.GetFileName(Path.GetFullPath(dir).TrimEnd('/')), Mel, Architecture, Network, Bundle.LoadWeights(), card,
            DefaultSchedule, SearchedSchedules, half);
    }

    /// <summary>Rewrites voice.json only (for example after a schedule search), atomically.</summary>
    public void SaveCard(JsonObject card) => Bundle.SaveManifest(card);
}

/// <summary>Source-generated JSON metadata of the card fields read into records (the noise prior, the stft network's config), in
/// the card's snake case: metadata made by reflection costs every voice load tens of milliseconds of code generation and JIT
/// before its first audio.</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower)]
[JsonSerializable(typeof(NoisePrior))]
[JsonSerializable(typeof(StftDenoiserConfig))]
internal sealed partial class CardJson : JsonSerializerContext;
