using System.Collections;
using System.Text.Json.Nodes;
using TorchSharp.PyBridge;
using WaveGradSharp.Audio;
using WaveGradSharp.Diffusion;
using static TorchSharp.torch;
using WaveGradSharp.Core;

namespace WaveGradSharp.Vocoder;

/// <summary>
/// Reads PyTorch checkpoints of lmnt-com/wavegrad's layout: <c>{'model': state_dict, ...}</c> or a bare state dict,
/// in torch's zip format (torch ≥ 1.6). The unpickler is TorchSharp.PyBridge's restricted one: it maps the few
/// globals a state dict needs to .NET constructors and never runs pickled code.
/// </summary>
public static class PyTorchImport
{
    /// <summary>The named tensors of the checkpoint's model.</summary>
    public static Dictionary<string, Tensor> ReadStateDict(string path)
    {
        using (var fs = InputFile.Open(path, "PyTorch checkpoint"))
        {
            var magic = new byte[4];
            if (fs.Read(magic) < 4 || magic[0] != 'P' || magic[1] != 'K')
                throw new WaveGradException($"{path}: not a PyTorch zip checkpoint (expected torch.save's zip format, torch ≥ 1.6)");
        }
        Hashtable root;
        try { root = PyTorchUnpickler.UnpickleStateDict(path); }
        catch (Exception e) { throw new WaveGradException($"{path}: cannot read the checkpoint ({e.Message.Split('\n')[0]})", e); }
        var dict = root["model"] is IDictionary inner ? inner : root;
        var result = new Dictionary<string, Tensor>();
        foreach (DictionaryEntry kv in dict)
            if (kv.Key is string k && kv.Value is Tensor t) result[k] = t;
        if (result.Count == 0) throw new WaveGradException($"{path}: holds no tensors (expected a state dict or {{'model': state_dict}})");
        return result;
    }

    /// <summary>
    /// Writes a voice bundle from an lmnt-layout checkpoint: the network shape is read off the tensors' shapes
    /// (channels, mel bands); the hop, dilation order (lmnt's), level scale (1) and interpolation (nearest) are lmnt's.
    /// </summary>
    public static Voice ImportVoice(string checkpoint, string preset, string outputDir, string? name = null)
    {
        var mel = MelConfig.Preset(preset);
        var sd = ReadStateDict(checkpoint);
        int Dim(string key, int axis) => sd.TryGetValue(key, out var t) ? (int)t.shape[axis]
            : throw new WaveGradException($"{checkpoint}: missing '{key}': not a WaveGrad (lmnt-com/wavegrad layout) checkpoint");
        var cfg = new WaveGradConfig
        {
            NMels = Dim("first_conv.weight", 1),
            FirstChannels = Dim("first_conv.weight", 0),
            UpChannels = Enumerable.Range(0, 5).Select(i => Dim($"upsample.{i}.block1.weight", 0)).ToArray(),
            DownChannels = [Dim("downsample.0.weight", 0), .. Enumerable.Range(1, 4).Select(i => Dim($"downsample.{i}.residual_dense.weight", 0))],
            UpFactors = WaveGradConfig.FactorsForHop(mel.Hop),
            Dilations = DilationOrder.Lmnt,
            NoiseEncodingScale = 1,
            Interpolation = "nearest",
        };
        using (var net = new WaveGradNet(cfg)) TensorFiles.LoadInto(net, sd, checkpoint);
        var card = new JsonObject { ["imported_from"] = Path.GetFileName(checkpoint), ["training"] = new JsonObject { ["source"] = "PyTorch checkpoint " +
            "(lmnt-com/wavegrad layout)" } };
        Voice.Save(outputDir, name ?? Path.GetFileName(Path.GetFullPath(outputDir).TrimEnd('/')), mel, WaveGradArchitecture.Name,
            WaveGradArchitecture.ToCard(cfg.Check(mel, checkpoint)), sd, card, half: false);
        return Voice.Load(outputDir);
    }
}
