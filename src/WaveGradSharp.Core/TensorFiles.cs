using TorchSharp;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace WaveGradSharp.Core;

/// <summary>Named-tensor files (safetensors) and module state, with clear errors.</summary>
public static class TensorFiles
{
    /// <summary>Writes named tensors as safetensors, atomically. <paramref name="half"/> stores floating tensors as fp16.</summary>
    public static void Save(string path, IReadOnlyDictionary<string, Tensor> tensors, bool half = false)
    {
        using var scope = NewDisposeScope();
        var d = tensors.ToDictionary(kv => kv.Key, kv =>
        {
            var t = kv.Value.detach().cpu();
            return half && t.is_floating_point() ? t.to_type(ScalarType.Float16) : t.contiguous();
        });
        AtomicFile.Write(path, tmp => Safetensors.SaveStateDict(tmp, d));
    }

    /// <summary>Reads a safetensors file; a missing or malformed file is a <see cref="WaveGradException"/> naming it.</summary>
    public static Dictionary<string, Tensor> Load(string path)
    {
        if (!File.Exists(path)) throw new WaveGradException($"{path}: no such file");
        var len = new FileInfo(path).Length;
        if (len < 8) throw new WaveGradException($"{path}: not a safetensors file (only {len} bytes)");
        using (var fs = File.OpenRead(path))
        {
            var hdr = new byte[8];
            fs.ReadExactly(hdr);
            ulong n = BitConverter.ToUInt64(hdr);
            if (n == 0 || n > (ulong)(len - 8) || n > 100_000_000)
                throw new WaveGradException($"{path}: not a safetensors file (header length {n} does not fit the {len}-byte file)");
        }
        try { return Safetensors.LoadStateDict(path); }
        catch (Exception e) when (e is not WaveGradException)
        {
            throw new WaveGradException($"{path}: corrupt safetensors file ({e.Message.Split('\n')[0]})", e);
        }
    }

    /// <summary>The module's parameters and buffers by name.</summary>
    public static Dictionary<string, Tensor> StateOf(nn.Module module) => module.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value);

    /// <summary>
    /// Copies named tensors into a module; every key must be present with the same shape, and no key may be
    /// left over. Differences are listed (up to six) in one error that names <paramref name="source"/>.
    /// </summary>
    public static void LoadInto(nn.Module module, IReadOnlyDictionary<string, Tensor> tensors, string source)
    {
        var own = module.state_dict();
        var problems = new List<string>();
        foreach (var (name, t) in own)
        {
            if (!tensors.TryGetValue(name, out var v)) problems.Add($"missing '{name}' [{string.Join(", ", t.shape)}]");
            else if (!v.shape.SequenceEqual(t.shape)) problems.Add($"'{name}' is [{string.Join(", ", v.shape)}], the network needs [{string.Join(", ", t.shape)}]");
        }
        foreach (var name in tensors.Keys.Where(k => !own.ContainsKey(k))) problems.Add($"unexpected '{name}'");
        if (problems.Count > 0)
            throw new WaveGradException($"{source}: weights do not match the network config ({problems.Count} difference(s): {string.Join("; ", problems.Take(6))}{(problems.Count > 6 ? "; …" : "")})");
        using var _ = no_grad();
        foreach (var (name, t) in own) t.copy_(tensors[name].to_type(t.dtype).to(t.device));
    }
}
