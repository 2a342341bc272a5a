using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using static TorchSharp.torch;

namespace WaveGradSharp.Core;

/// <summary>NumPy .npy files: reads little-endian float16/float32/float64 in C or Fortran order (format versions 1–3),
/// writes float32 C order (version 1.0). Errors are <see cref="WaveGradException"/>s that start with the path.</summary>
public static partial class Npy
{
    const int MaxHeader = 1 << 16;
    /// <summary>The 6 bytes every .npy file starts with.</summary>
    public static ReadOnlySpan<byte> Magic => [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y'];

    /// <summary>Reads <paramref name="path"/>: the data as float32 in C (row-major) order, and the shape.</summary>
    public static (float[] Data, long[] Shape) Read(string path)
    {
        using var fs = InputFile.Open(path, ".npy file");
        return Read(fs, path);
    }

    /// <summary>Reads an .npy image from <paramref name="stream"/>; <paramref name="name"/> names it in errors.</summary>
    public static (float[] Data, long[] Shape) Read(Stream stream, string name)
    {
        Span<byte> pre = stackalloc byte[12];
        int got = stream.ReadAtLeast(pre[..10], 10, throwOnEndOfStream: false);
        if (got < 10 || !pre[..6].SequenceEqual(Magic)) throw new WaveGradException($"{name}: not a .npy file (no \\x93NUMPY magic)");
        int major = pre[6];
        long headerLen;
        if (major == 1) headerLen = BinaryPrimitives.ReadUInt16LittleEndian(pre[8..]);
        else if (major is 2 or 3)
        {
            if (stream.ReadAtLeast(pre[10..12], 2, false) < 2) throw new WaveGradException($"{name}: truncated .npy header");
            headerLen = BinaryPrimitives.ReadUInt32LittleEndian(pre[8..]);
        }
        else throw new WaveGradException($"{name}: unsupported .npy format version {major}.{pre[7]}");
        if (headerLen > MaxHeader) throw new WaveGradException($"{name}: corrupt .npy header length {headerLen}");
        var hb = new byte[headerLen];
        if (stream.ReadAtLeast(hb, hb.Length, false) < hb.Length) throw new WaveGradException($"{name}: truncated .npy header");
        string header = Encoding.Latin1.GetString(hb);

        // numpy evaluates the header as a dict, where the last of two equal keys wins; this reader's matches find the
        // first. A key named twice would make the two read one file two ways: refuse it.
        if (KeyRx().Matches(header).GroupBy(m => m.Groups[1].Value).FirstOrDefault(g => g.Count() > 1) is { } twice)
            throw new WaveGradException($"{name}: corrupt .npy header: the key '{Text.Escape(twice.Key, 40)}' appears {twice.Count()} times");
        var descr = DescrRx().Match(header);
        var order = OrderRx().Match(header);
        var shapeM = ShapeRx().Match(header);
        if (!descr.Success || !order.Success || !shapeM.Success) throw new WaveGradException($"{name}: unreadable .npy header: " +
            $"{Text.Escape(header.Trim(), 120)}");
        string d = descr.Groups[1].Value;
        int itemSize = d switch { "<f4" or "=f4" => 4, "<f8" or "=f8" => 8, "<f2" or "=f2" => 2, _ => 0 };
        if (itemSize == 0)
            throw new WaveGradException($"{name}: unsupported .npy dtype '{Text.Escape(d, 20)}': expected little-endian float16, float32 or float64 (in " +
                "numpy: arr.astype('<f4'))");
        bool fortran = order.Groups[1].Value == "True";
        var shape = shapeM.Groups[1].Value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(s => long.TryParse(s.TrimEnd('L'), NumberStyles.None, CultureInfo.InvariantCulture, out var v) ? v : -1).ToArray();
        if (shape.Any(s => s < 0)) throw new WaveGradException($"{name}: corrupt .npy shape ({Text.Escape(shapeM.Groups[1].Value, 60)})");
        long count = 1;
        foreach (var s in shape)
        {
            if (s != 0 && count > long.MaxValue / s) throw new WaveGradException($"{name}: absurd .npy shape ({string.Join(", ", shape)})");
            count *= s;
        }
        if (stream.CanSeek)
        {
            long remain = stream.Length - stream.Position;
            if (count > remain / itemSize)
                throw new WaveGradException($"{name}: truncated .npy data: shape " +
                    $"({string.Join(", ", shape)}) needs {count * itemSize} bytes but only {remain} follow");
        }
        if (count * itemSize > Array.MaxLength) throw new WaveGradException($"{name}: .npy array of {count} elements is too large");
        var raw = new byte[count * itemSize];
        if (stream.ReadAtLeast(raw, raw.Length, false) < raw.Length)
            throw new WaveGradException($"{name}: truncated .npy data: shape ({string.Join(", ", shape)}) needs {raw.Length} bytes");
        var data = new float[count];
        switch (itemSize)
        {
            case 4: for (int i = 0; i < data.Length; i++) data[i] = BinaryPrimitives.ReadSingleLittleEndian(raw.AsSpan(i * 4)); break;
            case 8: for (int i = 0; i < data.Length; i++) data[i] = (float)BinaryPrimitives.ReadDoubleLittleEndian(raw.AsSpan(i * 8)); break;
            default: for (int i = 0; i < data.Length; i++) data[i] = (float)BinaryPrimitives.ReadHalfLittleEndian(raw.AsSpan(i * 2)); break;
        }
        if (fortran && shape.Length > 1) data = FortranToC(data, shape);
        return (data, shape);
    }

    /// <summary>Column-major (first index fastest) to row-major.</summary>
    static float[] FortranToC(float[] f, long[] shape)
    {
        int nd = shape.Length;
        var c = new float[f.Length];
        var fStride = new long[nd];
        long s = 1;
        for (int k = 0; k < nd; k++) { fStride[k] = s; s *= shape[k]; }
        var idx = new long[nd];
        for (long i = 0; i < c.Length; i++)
        {
            long off = 0;
            for (int k = 0; k < nd; k++) off += idx[k] * fStride[k];
            c[i] = f[off];
            for (int k = nd - 1; k >= 0; k--) { if (++idx[k] < shape[k]) break; idx[k] = 0; }
        }
        return c;
    }

    /// <summary>Reads <paramref name="path"/> as a float32 CPU tensor of the stored shape.</summary>
    public static Tensor ReadTensor(string path)
    {
        var (data, shape) = Read(path);
        return tensor(data, shape);
    }

    /// <summary>Writes float32 <paramref name="data"/> (C order) with <paramref name="shape"/> to <paramref name="path"/> atomically.</summary>
    public static void Write(string path, float[] data, long[] shape)
    {
        long count = shape.Aggregate(1L, (a, b) => a * b);
        if (shape.Any(s => s < 0) || count != data.Length)
            throw new ArgumentException($"shape ({string.Join(", ", shape)}) does not hold {data.Length} values", nameof(shape));
        string dims = shape.Length == 1 ? $"{shape[0]}," : string.Join(", ", shape);
        string dict = $"{{'descr': '<f4', 'fortran_order': False, 'shape': ({dims}), }}";
        int total = 10 + dict.Length + 1;
        int pad = (64 - total % 64) % 64;
        string header = dict + new string(' ', pad) + "\n";
        var bytes = new byte[10 + header.Length + data.Length * 4L];
        Magic.CopyTo(bytes);
        bytes[6] = 1; bytes[7] = 0;
        BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(8), (ushort)header.Length);
        Encoding.Latin1.GetBytes(header, bytes.AsSpan(10));
        var body = bytes.AsSpan(10 + header.Length);
        for (int i = 0; i < data.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(body[(i * 4)..], data[i]);
        AtomicFile.WriteAllBytes(path, bytes);
    }

    /// <summary>Writes a float32 tensor (any device) to <paramref name="path"/> in C order.</summary>
    public static void Write(string path, Tensor t)
    {
        using var scope = NewDisposeScope();
        var c = t.detach().to(CPU).to_type(float32).contiguous();
        Write(path, c.data<float>().ToArray(), c.shape);
    }

    [GeneratedRegex(@"'descr'\s*:\s*'([^']*)'")] private static partial Regex DescrRx();
    [GeneratedRegex(@"'fortran_order'\s*:\s*(True|False)")] private static partial Regex OrderRx();
    [GeneratedRegex(@"'shape'\s*:\s*\(([^)]*)\)")] private static partial Regex ShapeRx();
    [GeneratedRegex(@"'([^']*)'\s*:")] private static partial Regex KeyRx();
}
