using System.Text.Json;
using System.Text.Json.Nodes;
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

    /// <summary>The largest safetensors header read (a few kB per thousand tensors).</summary>
    public const int MaxHeaderBytes = 16 << 20;

    /// <summary>safetensors' dtype names: the element type each reads as, and its size in bytes.</summary>
    static readonly Dictionary<string, (ScalarType Type, int Size)> Dtypes = new()
    {
        ["F64"] = (ScalarType.Float64, 8), ["F32"] = (ScalarType.Float32, 4), ["F16"] = (ScalarType.Float16, 2),
        ["BF16"] = (ScalarType.BFloat16, 2), ["I64"] = (ScalarType.Int64, 8), ["I32"] = (ScalarType.Int32, 4),
        ["I16"] = (ScalarType.Int16, 2), ["I8"] = (ScalarType.Int8, 1), ["U8"] = (ScalarType.Byte, 1), ["BOOL"] = (ScalarType.Bool, 1),
    };

    /// <summary>
    /// Reads a safetensors file. Before any tensor is read the header is checked: its length, its JSON, every tensor's
    /// dtype and shape, and its data offsets (in bounds, the size its shape and dtype make, in order and not
    /// overlapping), so a crafted file can neither make the reader take header bytes as weights nor allocate more
    /// than it holds. A missing or malformed file is a <see cref="WaveGradException"/> naming it. The checked header then
    /// gives each tensor's place, and its bytes are read into the tensor's storage: no second parse, no copy.
    /// </summary>
    public static Dictionary<string, Tensor> Load(string path)
    {
        using var fs = InputFile.Open(path, "safetensors file");
        long len = fs.Length;
        if (len < 8) throw new WaveGradException($"{path}: not a safetensors file (only {len} bytes)");
        var hdr = new byte[8];
        fs.ReadExactly(hdr);
        ulong n = BitConverter.ToUInt64(hdr);
        if (n < 2 || n > (ulong)(len - 8) || n > MaxHeaderBytes)
            throw new WaveGradException($"{path}: not a safetensors file (header length {n} does not fit the {len}-byte file)");
        var json = new byte[n];
        fs.ReadExactly(json);
        List<Entry> entries;
        try { entries = CheckHeader(json, len - 8 - (long)n, path); }
        catch (Exception e) when (e is InvalidOperationException or FormatException or JsonException or ArgumentException)
        {
            throw new WaveGradException($"{path}: corrupt safetensors header ({Text.Escape(Text.FirstLine(e.Message))})");   // e.g. invalid UTF-8 names
        }
        // Each tensor's bytes are read straight into its storage: safetensors is little-endian, as this machine is (checked).
        if (!BitConverter.IsLittleEndian) throw new WaveGradException($"{path}: safetensors files are read on little-endian machines only");
        var tensors = new Dictionary<string, Tensor>();
        try
        {
            foreach (var e in entries)
            {
                var t = empty(e.Shape, e.Type);
                tensors[e.Name] = t;
                fs.Position = 8 + (long)n + e.Begin;
                fs.ReadExactly(t.bytes);
            }
        }
        catch (Exception)
        {
            foreach (var t in tensors.Values) t.Dispose();
            throw;
        }
        return tensors;
    }

    /// <summary>One tensor of a safetensors header: its name, type, shape and byte range in the data section.</summary>
    readonly record struct Entry(string Name, ScalarType Type, long[] Shape, long Begin, long End);

    static List<Entry> CheckHeader(byte[] json, long dataBytes, string path)
    {
        JsonObject header;
        try { header = InputFile.ParseJsonObject(json, "header"); }
        catch (WaveGradException e) { throw new WaveGradException($"{path}: corrupt safetensors {e.Message}"); }
        var spans = new List<Entry>();
        foreach (var (name, node) in header)
        {
            if (name == "__metadata__") continue;
            string what = $"{path}: tensor '{Text.Escape(name, 80)}'";
            if (node is not JsonObject t || t["dtype"]?.GetValueKind() != JsonValueKind.String
                || t["shape"] is not JsonArray shape || t["data_offsets"] is not JsonArray offs || offs.Count != 2)
                throw new WaveGradException($"{what}: needs a dtype, a shape and two data_offsets");
            string dtype = t["dtype"]!.GetValue<string>();
            if (!Dtypes.TryGetValue(dtype, out var type))
                throw new WaveGradException($"{what}: unsupported dtype '{Text.Escape(dtype, 16)}'");
            int item = type.Size;
            long count = 1;
            var dims = new long[shape.Count];
            for (int k = 0; k < dims.Length; k++)
            {
                if (shape[k] is not JsonValue v || !v.TryGetValue(out long dim) || dim < 0 || dim > int.MaxValue)
                    throw new WaveGradException($"{what}: bad shape {Text.Escape(shape.ToJsonString(), 80)}");
                dims[k] = dim;
                count = dim == 0 ? 0 : count > dataBytes / dim ? dataBytes + 1 : count * dim;   // past the data: a mismatch below
            }
            long Offset(int i) => offs[i] is JsonValue v && v.TryGetValue(out long o) ? o : -1;
            long begin = Offset(0), end = Offset(1);
            if (begin < 0 || end < begin || end > dataBytes)
                throw new WaveGradException($"{what}: data_offsets [{begin}, {end}] lie outside the {dataBytes}-byte data section");
            if (end - begin != count * item)
                throw new WaveGradException($"{what}: data_offsets span {end - begin} bytes but its shape and dtype make {count * item}");
            spans.Add(new Entry(name, type.Type, dims, begin, end));
        }
        spans.Sort((a, b) => a.Begin.CompareTo(b.Begin));
        for (int i = 1; i < spans.Count; i++)
            if (spans[i].Begin < spans[i - 1].End)
                throw new WaveGradException($"{path}: tensors '{Text.Escape(spans[i - 1].Name, 80)}' and '{Text.Escape(spans[i].Name, 80)}' overlap");
        return spans;
    }

    /// <summary>The module's parameters and buffers by name.</summary>
    public static Dictionary<string, Tensor> StateOf(nn.Module module) => module.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value);

    /// <summary>
    /// Named tensors laid out for a module that has grown since they were saved: a tensor of the module's shape is kept; a
    /// matrix with the module's rows and fewer columns (a layer that takes more inputs now, added at the end) gets zero columns
    /// after its own; a tensor the module has and <paramref name="tensors"/> lack takes the module's present value (a new layer),
    /// or zeros where <paramref name="zeroWhenNew"/> says so (a new residual branch's output scale); anything else is an error
    /// naming <paramref name="source"/>. With new inputs weighted zero and new layers made to add nothing, the grown module
    /// computes what the saved one did.
    /// </summary>
    public static Dictionary<string, Tensor> Grown(nn.Module module, IReadOnlyDictionary<string, Tensor> tensors, string source,
        Func<string, bool>? zeroWhenNew = null)
    {
        var grown = new Dictionary<string, Tensor>();
        var problems = new List<string>();
        foreach (var (name, t) in module.state_dict())
        {
            if (!tensors.TryGetValue(name, out var v)) grown[name] = zeroWhenNew?.Invoke(name) == true ? zeros_like(t) : t.detach().clone();
            else if (v.shape.SequenceEqual(t.shape)) grown[name] = v;
            else if (v.dim() == 2 && t.dim() == 2 && v.shape[0] == t.shape[0] && v.shape[1] < t.shape[1])
                grown[name] = nn.functional.pad(v.to_type(t.dtype), [0, t.shape[1] - v.shape[1]]);
            else problems.Add($"'{name}' is [{string.Join(", ", v.shape)}], the network needs [{string.Join(", ", t.shape)}]");
        }
        var own = module.state_dict();
        foreach (var name in tensors.Keys.Where(k => !own.ContainsKey(k))) problems.Add($"unexpected '{name}'");
        if (problems.Count > 0)
            throw new WaveGradException($"{source}: weights cannot grow into the network ({problems.Count} difference(s): " +
                $"{string.Join("; ", problems.Take(6))}{(problems.Count > 6 ? "; …" : "")})");
        return grown;
    }

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
            else if (!v.shape.SequenceEqual(t.shape)) problems.Add($"'{name}' is [{string.Join(", ", v.shape)}], the network needs " +
                $"[{string.Join(", ", t.shape)}]");
        }
        foreach (var name in tensors.Keys.Where(k => !own.ContainsKey(k))) problems.Add($"unexpected '{name}'");
        if (problems.Count > 0)
            throw new WaveGradException($"{source}: weights do not match the network config ({problems.Count} difference(s): " +
                $"{string.Join("; ", problems.Take(6))}{(problems.Count > 6 ? "; …" : "")})");
        using var _ = no_grad();
        foreach (var (name, t) in own) t.copy_(tensors[name]);   // copy_ converts the type and moves the device itself, with no temporary
    }
}
