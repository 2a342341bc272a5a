using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using TorchSharp;
using WaveGradSharp.Diffusion;
using static TorchSharp.torch;

namespace WaveGradSharp.Imaging;

/// <summary>
/// An image model bundle: a folder with <c>model.json</c> (kind, network, training schedule or σ range, card) and
/// <c>model.safetensors</c> (EMA weights). Kind <c>unet</c> is a diffusion or score model, kind <c>classifier</c> a
/// digit classifier (noise-aware for guidance, or a judge of clean images).
/// </summary>
public sealed class ImageModel
{
    internal static readonly JsonSerializerOptions JsonOpts = new()
    {
        WriteIndented = true,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower) },
    };

    /// <summary>The bundle folder.</summary>
    public string Directory { get; }
    /// <summary>"unet" or "classifier".</summary>
    public string Kind { get; }
    /// <summary>The whole model.json.</summary>
    public JsonObject Card { get; }
    /// <summary>The weights file.</summary>
    public string WeightsPath => Path.Combine(Directory, "model.safetensors");

    ImageModel(string dir, string kind, JsonObject card) { Directory = dir; Kind = kind; Card = card; }

    /// <summary>UNet configuration (kind unet).</summary>
    public UNetConfig Network => Card["network"].Deserialize<UNetConfig>(JsonOpts) ?? throw new WaveGradException($"{Directory}/model.json: lacks 'network'");
    /// <summary>Classifier configuration (kind classifier).</summary>
    public ClassifierConfig Classifier => Card["network"].Deserialize<ClassifierConfig>(JsonOpts) ?? throw new WaveGradException($"{Directory}/model.json: lacks 'network'");
    /// <summary>The variance-preserving schedule an ε/hybrid network was trained on.</summary>
    public NoiseSchedule Schedule => NoiseSchedule.Resolve(Card["schedule"]?.GetValue<string>() ?? "ddpm-linear");
    /// <summary>σ range of a score network (or the one equivalent to the schedule), largest first.</summary>
    public (double Max, double Min) SigmaRange
    {
        get
        {
            if (Card["sigma_max"] is JsonNode mx && Card["sigma_min"] is JsonNode mn) return (mx.GetValue<double>(), mn.GetValue<double>());
            var s = Schedule;
            return (s.SqrtOneMinusAlphasCumprod[^1] / s.SqrtAlphasCumprod[^1], s.SqrtOneMinusAlphasCumprod[0] / s.SqrtAlphasCumprod[0]);
        }
    }

    /// <summary>Folders searched for models by name: $WAVEGRAD_MODELS, ./samples/models, and samples/models above the program.</summary>
    public static IEnumerable<string> SearchPath()
    {
        if (Environment.GetEnvironmentVariable("WAVEGRAD_MODELS") is { Length: > 0 } env) yield return env;
        yield return Path.GetFullPath(Path.Combine("samples", "models"));
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d != null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "WaveGradSharp.sln")) && System.IO.Directory.Exists(Path.Combine(d.FullName, "samples", "models")))
            { yield return Path.Combine(d.FullName, "samples", "models"); break; }
    }

    /// <summary>Loads a bundle by folder path or by name on the search path; checks that the kind matches.</summary>
    public static ImageModel Load(string nameOrPath, string? expectKind = null)
    {
        string? dir = System.IO.Directory.Exists(nameOrPath) ? nameOrPath
            : SearchPath().Select(p => Path.Combine(p, nameOrPath)).FirstOrDefault(System.IO.Directory.Exists);
        if (dir is null)
        {
            var known = SearchPath().Where(System.IO.Directory.Exists)
                .SelectMany(d => System.IO.Directory.GetDirectories(d).Where(v => File.Exists(Path.Combine(v, "model.json")))).Select(Path.GetFileName).Distinct().Order().ToArray();
            throw new WaveGradException($"model '{nameOrPath}': not found (looked in {string.Join(", ", SearchPath().Distinct())}; available: {(known.Length > 0 ? string.Join(", ", known) : "none")})");
        }
        string json = Path.Combine(dir, "model.json");
        if (!File.Exists(json)) throw new WaveGradException($"{dir}: not a model bundle (no model.json)");
        JsonObject card;
        try { card = JsonNode.Parse(File.ReadAllText(json)) as JsonObject ?? throw new JsonException("not an object"); }
        catch (JsonException e) { throw new WaveGradException($"{json}: malformed JSON ({e.Message.Split('\n')[0]})"); }
        string kind = card["kind"]?.GetValue<string>() ?? throw new WaveGradException($"{json}: lacks 'kind'");
        if (expectKind is not null && kind != expectKind) throw new WaveGradException($"{dir}: is a {kind} model, a {expectKind} is needed here");
        return new ImageModel(dir, kind, card);
    }

    /// <summary>The UNet with the bundle's weights, on a device, in eval mode.</summary>
    public UNet CreateUNet(Device? device = null)
    {
        if (Kind != "unet") throw new WaveGradException($"{Directory}: is a {Kind} model, not a unet");
        NativeTuning.DisableNnpack();   // it only warns on CPUs it does not support
        var net = new UNet(Network);
        TensorFiles.LoadInto(net, TensorFiles.Load(WeightsPath), WeightsPath);
        if (device is not null && device.type != DeviceType.CPU) net.to(device);
        net.eval();
        return net;
    }

    /// <summary>The classifier with the bundle's weights, on a device, in eval mode.</summary>
    public DigitClassifier CreateClassifier(Device? device = null)
    {
        if (Kind != "classifier") throw new WaveGradException($"{Directory}: is a {Kind} model, not a classifier");
        NativeTuning.DisableNnpack();
        var net = new DigitClassifier(Classifier);
        TensorFiles.LoadInto(net, TensorFiles.Load(WeightsPath), WeightsPath);
        if (device is not null && device.type != DeviceType.CPU) net.to(device);
        net.eval();
        return net;
    }

    /// <summary>
    /// Writes a bundle: weights (fp16 when <paramref name="half"/>), then the card (with kind and network set), each
    /// file atomically. A training run writes its bundle beside its checkpoint/ folder. A non-empty folder that holds
    /// neither model.json nor checkpoint/ is refused, so a mistyped path never overwrites unrelated files.
    /// </summary>
    public static void Save(string dir, string kind, object network, IReadOnlyDictionary<string, Tensor> weights, JsonObject? card = null, bool half = false)
    {
        if (System.IO.Directory.Exists(dir) && System.IO.Directory.EnumerateFileSystemEntries(dir).Any()
            && !File.Exists(Path.Combine(dir, "model.json")) && !System.IO.Directory.Exists(Path.Combine(dir, "checkpoint")))
            throw new WaveGradException($"{dir}: exists and is not a model bundle (no model.json); choose another output folder");
        var c = card is null ? new JsonObject() : (JsonObject)card.DeepClone();
        c["kind"] = kind;
        c["network"] = JsonSerializer.SerializeToNode(network, network.GetType(), JsonOpts);
        TensorFiles.Save(Path.Combine(dir, "model.safetensors"), weights, half);
        AtomicFile.WriteAllText(Path.Combine(dir, "model.json"), c.ToJsonString(JsonOpts));
    }
}
