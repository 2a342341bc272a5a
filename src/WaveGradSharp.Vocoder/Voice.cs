using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using TorchSharp;
using WaveGradSharp.Audio;
using WaveGradSharp.Diffusion;
using static TorchSharp.torch;

namespace WaveGradSharp.Vocoder;

/// <summary>
/// A voice bundle: a folder with <c>voice.json</c> (sample rate, mel preset, network config, default and searched
/// schedules, and a free-form card: corpus, steps, hardware, wall time, measured quality) and
/// <c>model.safetensors</c> (EMA weights, fp16 or fp32).
/// </summary>
public sealed class Voice
{
    /// <summary>Folder of the bundle.</summary>
    public string Directory { get; }
    /// <summary>Bundle name (the folder name unless the card says otherwise).</summary>
    public string Name { get; }
    /// <summary>Mel frontend the voice was trained with.</summary>
    public MelConfig Mel { get; }
    /// <summary>Output sample rate (Hz).</summary>
    public int SampleRate => Mel.SampleRate;
    /// <summary>Network shape.</summary>
    public WaveGradConfig Network { get; }
    /// <summary>Schedule used when none is asked for.</summary>
    public NoiseSchedule DefaultSchedule { get; }
    /// <summary>Schedules found by <c>schedule search</c>, by step count.</summary>
    public IReadOnlyDictionary<int, NoiseSchedule> SearchedSchedules { get; }
    /// <summary>The whole voice.json, including the card fields.</summary>
    public JsonObject Card { get; }

    /// <summary>Path of the weights.</summary>
    public string WeightsPath => Path.Combine(Directory, "model.safetensors");

    Voice(string dir, JsonObject card)
    {
        Directory = dir;
        Card = card;
        string src = Path.Combine(dir, "voice.json");
        Name = card["name"]?.GetValue<string>() ?? Path.GetFileName(dir.TrimEnd('/', '\\'));
        string preset = card["mel_preset"]?.GetValue<string>() ?? throw new WaveGradException($"{src}: no \"mel_preset\"");
        Mel = MelConfig.Preset(preset);
        Network = (card["network"]?.Deserialize<WaveGradConfig>(JsonOpts) ?? throw new WaveGradException($"{src}: no \"network\"")).Validate(src);
        if (Network.NMels != Mel.NMels) throw new WaveGradException($"{src}: network has {Network.NMels} mel bands but preset '{preset}' has {Mel.NMels}");
        if (Network.Hop != Mel.Hop) throw new WaveGradException($"{src}: network upsamples by {Network.Hop} but preset '{preset}' has hop {Mel.Hop}");
        var searched = new Dictionary<int, NoiseSchedule>();
        if (card["schedules"] is JsonObject so)
            foreach (var (k, v) in so)
                if (v is not null) searched[int.Parse(k)] = NoiseSchedule.FromJson(v.ToJsonString(), $"{src} schedules.{k}");
        SearchedSchedules = searched;
        DefaultSchedule = card["default_schedule"] is JsonNode ds
            ? ds.GetValueKind() == JsonValueKind.String ? ResolveSchedule(ds.GetValue<string>()) : NoiseSchedule.FromJson(ds.ToJsonString(), $"{src} default_schedule")
            : searched.TryGetValue(6, out var s6) ? s6 : NoiseSchedule.Named("wg-6");
    }

    internal static readonly JsonSerializerOptions JsonOpts = new()
    {
        WriteIndented = true,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.KebabCaseLower) },
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
                _ => throw new WaveGradException($"--steps {steps}: no schedule of that length; use 1000, 50, 25, 6, 3, a searched length ({string.Join(", ", SearchedSchedules.Keys)}) or a JSON file"),
            };
        }
        return NoiseSchedule.Resolve(spec);
    }

    /// <summary>Folders searched for voices by name: $WAVEGRAD_VOICES, ./voices, and voices/ above the program.</summary>
    public static IEnumerable<string> SearchPath()
    {
        if (Environment.GetEnvironmentVariable("WAVEGRAD_VOICES") is { Length: > 0 } env) yield return env;
        yield return Path.GetFullPath("voices");
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d != null; d = d.Parent)
            if (System.IO.Directory.Exists(Path.Combine(d.FullName, "voices")) && File.Exists(Path.Combine(d.FullName, "WaveGradSharp.sln")))
            { yield return Path.Combine(d.FullName, "voices"); break; }
    }

    /// <summary>Voice bundles found on the search path.</summary>
    public static IEnumerable<string> Available() =>
        SearchPath().Where(System.IO.Directory.Exists)
            .SelectMany(d => System.IO.Directory.GetDirectories(d).Where(v => File.Exists(Path.Combine(v, "voice.json"))))
            .DistinctBy(Path.GetFileName).Order();

    /// <summary>Loads voice.json from a folder, or finds a bundle by name on the search path.</summary>
    public static Voice Load(string nameOrPath)
    {
        string? dir = System.IO.Directory.Exists(nameOrPath) ? nameOrPath
            : SearchPath().Select(p => Path.Combine(p, nameOrPath)).FirstOrDefault(System.IO.Directory.Exists);
        if (dir is null)
        {
            var known = Available().Select(Path.GetFileName).ToArray();
            throw new WaveGradException($"voice '{nameOrPath}': not found (looked in {string.Join(", ", SearchPath().Distinct())}; available: {(known.Length > 0 ? string.Join(", ", known) : "none")})");
        }
        string json = Path.Combine(dir, "voice.json");
        if (!File.Exists(json)) throw new WaveGradException($"{json}: missing (a voice folder needs voice.json and model.safetensors)");
        JsonObject card;
        try { card = JsonNode.Parse(File.ReadAllText(json)) as JsonObject ?? throw new WaveGradException($"{json}: not a JSON object"); }
        catch (JsonException e) { throw new WaveGradException($"{json}: invalid JSON ({e.Message.Split('.')[0]})"); }
        Voice voice;
        try { voice = new Voice(dir, card); }
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException or KeyNotFoundException)
        {
            throw new WaveGradException($"{json}: malformed ({e.Message.Split('\n')[0]})", e);
        }
        if (!File.Exists(voice.WeightsPath)) throw new WaveGradException($"{voice.WeightsPath}: missing (the voice has no weights)");
        return voice;
    }

    /// <summary>Builds the network on a device and loads the weights, checking they match the config.</summary>
    public WaveGradNet CreateNetwork(Device? device = null)
    {
        var net = new WaveGradNet(Network);
        using (var scope = NewDisposeScope())
            TensorFiles.LoadInto(net, TensorFiles.Load(WeightsPath), WeightsPath);
        net.eval();
        if (device is not null && device.type != DeviceType.CPU) net.to(device);
        return net;
    }

    /// <summary>
    /// Writes a bundle folder atomically (built in a temporary folder beside it, then renamed into place).
    /// <paramref name="card"/> holds the free-form fields (training, quality); the typed fields are set here.
    /// </summary>
    public static void Save(string dir, string name, MelConfig mel, WaveGradConfig network, IReadOnlyDictionary<string, Tensor> weights,
        JsonObject? card = null, NoiseSchedule? defaultSchedule = null, IReadOnlyDictionary<int, NoiseSchedule>? schedules = null, bool half = true)
    {
        var c = card is null ? new JsonObject() : (JsonObject)card.DeepClone();
        c["name"] = name;
        c["sample_rate"] = mel.SampleRate;
        c["mel_preset"] = mel.Name;
        c["network"] = JsonSerializer.SerializeToNode(network, JsonOpts);
        c["parameters"] = weights.Values.Sum(t => t.numel());
        if (defaultSchedule is not null) c["default_schedule"] = JsonNode.Parse(defaultSchedule.ToJson());
        if (schedules is not null)
        {
            var so = new JsonObject();
            foreach (var (k, s) in schedules.OrderBy(kv => kv.Key)) so[k.ToString()] = JsonNode.Parse(s.ToJson());
            c["schedules"] = so;
        }
        WriteFolder(dir, tmp =>
        {
            TensorFiles.Save(Path.Combine(tmp, "model.safetensors"), weights, half);
            File.WriteAllText(Path.Combine(tmp, "voice.json"), c.ToJsonString(JsonOpts));
        });
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
        var weights = TensorFiles.Load(WeightsPath);
        Save(dir, name ?? Path.GetFileName(Path.GetFullPath(dir).TrimEnd('/')), Mel, Network, weights, card, DefaultSchedule, SearchedSchedules, half);
    }

    /// <summary>Rewrites voice.json only (for example after a schedule search), atomically.</summary>
    public void SaveCard(JsonObject card) => AtomicFile.WriteAllText(Path.Combine(Directory, "voice.json"), card.ToJsonString(JsonOpts));

    /// <summary>Writes a bundle folder atomically (see <see cref="AtomicFile.WriteFolder"/>).</summary>
    public static void WriteFolder(string dir, Action<string> fill, string marker = "voice.json") => AtomicFile.WriteFolder(dir, fill, marker);
}
