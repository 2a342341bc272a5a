using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;
using System.Text.Json;
using WaveGradSharp.Audio;
using WaveGradSharp.Core;

namespace WaveGradSharp.Audio.Tests;

/// <summary>Fixture paths, scratch folders and a byte-level WAV builder for malformed files.</summary>
static class TestData
{
    public static string Fixture(string name) => Path.Combine(AppContext.BaseDirectory, "fixtures", "audio", name);

    public static JsonElement Manifest() => JsonDocument.Parse(File.ReadAllText(Fixture("manifest.json"))).RootElement;

    /// <summary>Reads a gzip-compressed .npy fixture.</summary>
    public static (float[] Data, long[] Shape) ReadNpyGz(string name)
    {
        using var gz = new GZipStream(File.OpenRead(Fixture(name)), CompressionMode.Decompress);
        using var ms = new MemoryStream();
        gz.CopyTo(ms);
        ms.Position = 0;
        return Npy.Read(ms, name);
    }

    /// <summary>A .npy of float64 values stored exactly, for comparisons at 1e-6: decompresses and parses the f8 payload directly.</summary>
    public static (double[] Data, long[] Shape) ReadNpyGzF64(string name)
    {
        using var gz = new GZipStream(File.OpenRead(Fixture(name)), CompressionMode.Decompress);
        using var ms = new MemoryStream();
        gz.CopyTo(ms);
        var b = ms.ToArray();
        int hl = BinaryPrimitives.ReadUInt16LittleEndian(b.AsSpan(8));
        string header = Encoding.Latin1.GetString(b, 10, hl);
        Assert.Contains("'<f8'", header);
        Assert.Contains("'fortran_order': False", header);
        var shape = header[(header.IndexOf("'shape': (") + 10)..].Split(')')[0].Split(',',
            StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(long.Parse).ToArray();
        var d = new double[(b.Length - 10 - hl) / 8];
        for (int i = 0; i < d.Length; i++) d[i] = BinaryPrimitives.ReadDoubleLittleEndian(b.AsSpan(10 + hl + 8 * i));
        return (d, shape);
    }

    public static string TempDir()
    {
        string d = Path.Combine(Path.GetTempPath(), "wgs-audio-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(d);
        return d;
    }

    /// <summary>Files in <paramref name="dir"/> (including temporaries), for "no output appears" checks.</summary>
    public static string[] Files(string dir) => Directory.GetFiles(dir).Select(Path.GetFileName).OfType<string>().OrderBy(x => x).ToArray();

    /// <summary>Builds a RIFF/WAVE image from parts, so tests can make every kind of broken file.</summary>
    public static byte[] BuildWav(int formatTag, int channels, int rate, int bits, byte[] data, bool extensible = false,
        int? dataSizeOverride = null, int? fmtSizeOverride = null, int? blockAlignOverride = null, byte[]? extraChunkBeforeData = null)
    {
        var ms = new MemoryStream();
        var w = new BinaryWriter(ms);
        w.Write("RIFF"u8); w.Write(0); w.Write("WAVE"u8);
        int align = blockAlignOverride ?? channels * bits / 8;
        w.Write("fmt "u8);
        int fmtSize = extensible ? 40 : 16;
        w.Write(fmtSizeOverride ?? fmtSize);
        w.Write((ushort)(extensible ? 0xFFFE : formatTag));
        w.Write((ushort)channels); w.Write(rate); w.Write(rate * align); w.Write((ushort)align); w.Write((ushort)bits);
        if (extensible)
        {
            w.Write((ushort)22); w.Write((ushort)bits); w.Write(channels == 2 ? 3 : 4);
            // SubFormat GUID {0000XXXX-0000-0010-8000-00AA00389B71}: the first two bytes carry the format tag.
            w.Write((ushort)formatTag); w.Write((ushort)0); w.Write((ushort)0); w.Write((ushort)0x0010);
            w.Write(new byte[] { 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71 });
        }
        if (extraChunkBeforeData != null) w.Write(extraChunkBeforeData);
        w.Write("data"u8); w.Write(dataSizeOverride ?? data.Length); w.Write(data);
        if ((data.Length & 1) == 1) w.Write((byte)0);
        w.Flush();
        var b = ms.ToArray();
        BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(4), b.Length - 8);
        return b;
    }

    /// <summary>Interleaved test signal: channel c, frame i = 0.5·sin(2π·440·i/rate + c).</summary>
    public static double Signal(int i, int c, int rate) => 0.5 * Math.Sin(2 * Math.PI * 440 * i / rate + c);
}
