using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using TorchSharp;
using WaveGradSharp.Diffusion;
using static TorchSharp.torch;
using WaveGradSharp.Core;

namespace WaveGradSharp.Imaging;

/// <summary>
/// An image model: a <see cref="ModelBundle"/> whose manifest is <c>model.json</c> (kind, network, training schedule or
/// σ range, card) with <c>model.safetensors</c> (EMA weights). Kind <c>unet</c> is a diffusion or score model, kind
/// <c>classifier</c> a digit classifier (noise-aware for guidance, or a judge of clean images).
/// </summary>
public sealed class ImageModel
{
    internal static readonly JsonSerializerOptions JsonOpts = new()
    {
        WriteIndented = true,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower, allowIntegerValues: false) },
    };

    /// <summary>Where models are found by name: <c>$WAVEGRAD_MODELS</c>, <c>./models</c>, the user's data folder,
    /// <c>models/</c> beside the program, then a source checkout's <c>samples/models</c>.</summary>
    public static BundleLibrary Library { get; } = new("model", "model.json", "WAVEGRAD_MODELS", "models", Path.Combine("samples", "models"));

    /// <summary>The bundle on disk.</summary>
    public ModelBundle Bundle { get; }
    /// <summary>The bundle folder.</summary>
    public string Directory => Bundle.Directory;
    /// <summary>"unet" or "classifier".</summary>
    public string Kind => Bundle.Kind;
    /// <summary>The whole model.json.</summary>
    public JsonObject Card => Bundle.Manifest;
    /// <summary>The weights file.</summary>
    public string WeightsPath => Bundle.WeightsPath;

    ImageModel(ModelBundle bundle) { Bundle = bundle; }

    /// <summary>UNet configuration (kind unet).</summary>
    public UNetConfig Network => NetworkAs<UNetConfig>();
    /// <summary>Classifier configuration (kind classifier).</summary>
    public ClassifierConfig Classifier => NetworkAs<ClassifierConfig>();

    T NetworkAs<T>()
    {
        try { return Card["network"].Deserialize<T>(JsonOpts) ?? throw new WaveGradException($"{Bundle.ManifestPath}: lacks 'network'"); }
        catch (JsonException e) { throw new WaveGradException($"{Bundle.ManifestPath}: malformed network ({Text.Escape(Text.FirstLine(e.Message))})"); }
    }

    /// <summary>The variance-preserving schedule an ε/hybrid network was trained on.</summary>
    public NoiseSchedule Schedule => NoiseSchedule.Resolve(ModelBundle.String(Card, "schedule", Bundle.ManifestPath) ?? "ddpm-linear");
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

    /// <summary>Loads a bundle by folder path or by name on the search path; checks that the kind is one of <paramref name="expectKinds"/>.</summary>
    public static ImageModel Load(string nameOrPath, params string[] expectKinds) =>
        new(ModelBundle.Load(nameOrPath, Library, defaultKind: null, defaultArchitecture: "unet", expectKinds));

    /// <summary>The UNet with the bundle's weights, on a device, in eval mode.</summary>
    public UNet CreateUNet(Device? device = null)
    {
        if (Kind != "unet") throw new WaveGradException($"{Directory}: is a {Kind} model, not a unet");
        return Loaded(new UNet(Network.Checked(Bundle.ManifestPath)), device);
    }

    /// <summary>The classifier with the bundle's weights, on a device, in eval mode.</summary>
    public DigitClassifier CreateClassifier(Device? device = null)
    {
        if (Kind != "classifier") throw new WaveGradException($"{Directory}: is a {Kind} model, not a classifier");
        return Loaded(new DigitClassifier(Classifier.Checked(Bundle.ManifestPath)), device);
    }

    T Loaded<T>(T net, Device? device) where T : nn.Module
    {
        NativeTuning.DisableNnpack();   // it only warns on CPUs it does not support
        TensorFiles.LoadInto(net, TensorFiles.Load(WeightsPath), WeightsPath);
        if (device is not null && device.type != DeviceType.CPU) net.to(device);
        net.eval();
        return net;
    }

    /// <summary>Writes a bundle (see <see cref="ModelBundle.Save"/>): the card with kind and network set, and the weights
    /// (fp16 when <paramref name="half"/>).</summary>
    public static void Save(string dir, string kind, object network, IReadOnlyDictionary<string, Tensor> weights, JsonObject? card = null, bool half = false)
    {
        var c = card is null ? new JsonObject() : (JsonObject)card.DeepClone();
        c["network"] = JsonSerializer.SerializeToNode(network, network.GetType(), JsonOpts);
        ModelBundle.Save(dir, Library.ManifestName, kind, kind == "unet" ? "unet" : "digit-classifier", c, weights, half);
    }
}
