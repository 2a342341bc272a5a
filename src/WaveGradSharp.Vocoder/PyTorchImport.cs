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
        CheckPickle(path);
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

    /// <summary>The largest data.pkl read (a state dict's pickle is a few hundred KB; the tensors lie beside it).</summary>
    const long MaxPickleBytes = 64L << 20;

    /// <summary>
    /// Walks the opcodes of the checkpoint's pickle before the unpickler sees it, so that a length it would allocate
    /// (a string or bytes opcode's) can never exceed the bytes that follow: the unpickler allocates first and reads
    /// after, and a fuzzed 1 KB checkpoint made it allocate 1.9 GB. Unknown opcodes are refused here too.
    /// </summary>
    static void CheckPickle(string path)
    {
        byte[] pkl;
        try
        {
            using var zip = new System.IO.Compression.ZipArchive(InputFile.Open(path, "PyTorch checkpoint"));
            var entry = zip.Entries.FirstOrDefault(e => e.FullName == "data.pkl" || e.FullName.EndsWith("/data.pkl", StringComparison.Ordinal))
                ?? throw new WaveGradException($"{path}: no data.pkl in the checkpoint");
            if (entry.Length > MaxPickleBytes) throw new WaveGradException($"{path}: data.pkl is {entry.Length} bytes, more than the {MaxPickleBytes} read");
            using var s = entry.Open();
            var ms = new MemoryStream();
            s.CopyTo(ms);
            if (ms.Length > MaxPickleBytes) throw new WaveGradException($"{path}: data.pkl holds more than the {MaxPickleBytes} bytes read");
            pkl = ms.ToArray();
        }
        catch (Exception e) when (e is InvalidDataException or IOException or NotSupportedException)
        {
            throw new WaveGradException($"{path}: not a readable zip checkpoint ({Text.Escape(Text.FirstLine(e.Message))})");
        }
        string? problem = PickleProblem(pkl);
        if (problem != null) throw new WaveGradException($"{path}: cannot read the checkpoint ({problem})");
    }

    /// <summary>Why a pickle (protocols 0–5) cannot be walked to its STOP within its bytes, or null when it can.</summary>
    internal static string? PickleProblem(ReadOnlySpan<byte> p)
    {
        int i = 0;
        while (i < p.Length)
        {
            byte op = p[i++];
            int fixedArg = op switch
            {
                (byte)'K' or (byte)'h' or (byte)'q' or 0x80 or 0x82 => 1,   // BININT1, BINGET, BINPUT, PROTO, EXT1
                (byte)'M' or 0x83 => 2,                                        // BININT2, EXT2
                (byte)'J' or (byte)'j' or (byte)'r' or 0x84 => 4,              // BININT, LONG_BINGET, LONG_BINPUT, EXT4
                (byte)'G' or 0x95 => 8,                                        // BINFLOAT, FRAME
                _ => -1,
            };
            int lengthBytes = op switch
            {
                (byte)'U' or (byte)'C' or 0x8c or 0x8a => 1,                   // SHORT_BINSTRING, SHORT_BINBYTES, SHORT_BINUNICODE, LONG1
                (byte)'T' or (byte)'X' or (byte)'B' or 0x8b => 4,              // BINSTRING, BINUNICODE, BINBYTES, LONG4
                0x8d or 0x8e or 0x96 => 8,                                     // BINUNICODE8, BINBYTES8, BYTEARRAY8
                _ => 0,
            };
            int lines = op switch
            {
                (byte)'c' or (byte)'i' => 2,                                   // GLOBAL, INST: module and name lines
                (byte)'I' or (byte)'L' or (byte)'S' or (byte)'V' or (byte)'F' or (byte)'P' or (byte)'g' or (byte)'p' => 1,
                _ => 0,
            };
            if (op == (byte)'.') return null;                                  // STOP
            if (fixedArg > 0) { if (i + fixedArg > p.Length) return "the pickle ends inside an opcode"; i += fixedArg; }
            else if (lengthBytes > 0)
            {
                if (i + lengthBytes > p.Length) return "the pickle ends inside an opcode";
                long n = 0;
                for (int k = lengthBytes - 1; k >= 0; k--) n = n << 8 | p[i + k];   // little-endian; 8 bytes may wrap negative
                i += lengthBytes;
                if (n < 0 || n > p.Length - i) return $"a length of {n} bytes where {p.Length - i} remain";
                i += (int)n;
            }
            else if (lines > 0)
                for (int l = 0; l < lines; l++)
                {
                    int nl = p[i..].IndexOf((byte)'\n');
                    if (nl < 0) return "the pickle ends inside an opcode";
                    i += nl + 1;
                }
            else if ("(012N]ael)t\x85\x86\x87}dsubRo\x81\x92Q\x93\x94\x8f\x90\x91\x88\x89\x97\x98".IndexOf((char)op) < 0)
                return $"unknown pickle opcode 0x{op:X2}";
        }
        return "the pickle has no STOP";
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
