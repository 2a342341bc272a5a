using System.Buffers.Binary;
using Concentus;
using Concentus.Enums;
using WaveGradSharp.Core;

namespace WaveGradSharp.Audio;

/// <summary>
/// Mono speech compressed with Opus (Concentus, managed) in this project's minimal container, <c>.wgopus</c>: the magic
/// <c>WGOPUS1\n</c>; the original sample rate (int32), sample count (int64), codec rate (int32), bitrate (int32) and
/// encoder lookahead (int32); then 20 ms packets, each a uint16 length and its bytes. It carries a training corpus to a
/// machine whose upload is small (at 32 kb/s an hour of speech is 14.4 MB); training reads it like a WAV.
/// </summary>
public static class OpusAudio
{
    /// <summary>The file extension.</summary>
    public const string Extension = ".wgopus";
    /// <summary>Rate the codec runs at (the input is resampled to it and back).</summary>
    public const int CodecRate = 24000;
    const int Frame = CodecRate / 50;   // 20 ms
    static ReadOnlySpan<byte> Magic => "WGOPUS1\n"u8;

    /// <summary>Compresses mono samples at <paramref name="sampleRate"/> and writes them atomically.</summary>
    public static void Write(string path, float[] samples, int sampleRate, int bitrate = 28_000)
    {
        if (samples.Length == 0) throw new WaveGradException($"{path}: refusing to write no samples");
        if (bitrate is < 6000 or > 256_000) throw WaveGradException.About($"Bitrate {bitrate}: must be 6,000–256,000 b/s", "Bitrate");
        var enc = OpusCodecFactory.CreateEncoder(CodecRate, 1, OpusApplication.OPUS_APPLICATION_AUDIO, null);
        enc.Bitrate = bitrate;
        enc.Complexity = 10;
        enc.UseVBR = true;
        enc.ForceMode = OpusMode.MODE_CELT_ONLY;   // SILK and hybrid at low rates came out near silent through Concentus
        int lookahead = enc.Lookahead;
        var x = sampleRate == CodecRate ? samples : Wav.Resample(samples, sampleRate, CodecRate);
        int frames = (x.Length + lookahead + Frame - 1) / Frame;   // the lookahead's worth more, so the end comes out
        var padded = new float[frames * Frame];
        x.CopyTo(padded, 0);
        using var body = new MemoryStream();
        var packet = new byte[4000];
        Span<byte> len = stackalloc byte[2];
        for (int f = 0; f < frames; f++)
        {
            int n = enc.Encode(padded.AsSpan(f * Frame, Frame), Frame, packet, packet.Length);
            BinaryPrimitives.WriteUInt16LittleEndian(len, (ushort)n);
            body.Write(len);
            body.Write(packet, 0, n);
        }
        AtomicFile.Write(path, tmp =>
        {
            using var fs = File.Create(tmp);
            Span<byte> head = stackalloc byte[28];
            Magic.CopyTo(head);
            BinaryPrimitives.WriteInt32LittleEndian(head[8..], sampleRate);
            BinaryPrimitives.WriteInt64LittleEndian(head[12..], samples.Length);
            BinaryPrimitives.WriteInt32LittleEndian(head[20..], CodecRate);
            BinaryPrimitives.WriteInt32LittleEndian(head[24..], bitrate);
            fs.Write(head);
            Span<byte> la = stackalloc byte[4];
            BinaryPrimitives.WriteInt32LittleEndian(la, lookahead);
            fs.Write(la);
            body.Position = 0;
            body.CopyTo(fs);
        });
    }

    /// <summary>Decodes a file to mono samples at <paramref name="targetRate"/>; a file longer than <paramref name="maxSeconds"/>
    /// or damaged anywhere is one <see cref="WaveGradException"/> naming it.</summary>
    public static float[] Read(string path, int targetRate, double maxSeconds = Wav.DefaultMaxSeconds)
    {
        byte[] data;
        using (var fs = InputFile.Open(path, "Opus file", 1L << 30)) { data = new byte[fs.Length]; fs.ReadExactly(data); }
        if (data.Length < 32 || !data.AsSpan(0, 8).SequenceEqual(Magic)) throw new WaveGradException($"{path}: not a {Extension} file");
        int rate = BinaryPrimitives.ReadInt32LittleEndian(data.AsSpan(8));
        long count = BinaryPrimitives.ReadInt64LittleEndian(data.AsSpan(12));
        int codecRate = BinaryPrimitives.ReadInt32LittleEndian(data.AsSpan(20));
        int lookahead = BinaryPrimitives.ReadInt32LittleEndian(data.AsSpan(28));
        if (rate is < Wav.MinSampleRate or > Wav.MaxSampleRate || codecRate != CodecRate || lookahead is < 0 or > Frame || count < 1)
            throw new WaveGradException($"{path}: corrupt {Extension} header");
        if (count / (double)rate > maxSeconds)
            throw WaveGradException.About($"{path}: {count / (double)rate:F0} s of audio is longer than the limit of {maxSeconds:G} s " +
                "(MaxSeconds)", "MaxSeconds");
        long atCodec = (long)Math.Ceiling(count * (double)CodecRate / rate);
        var dec = OpusCodecFactory.CreateDecoder(CodecRate, 1, null);
        var y = new float[((atCodec + lookahead) / Frame + 2) * Frame];
        int pos = 32, got = 0;
        try
        {
            while (pos < data.Length)
            {
                if (pos + 2 > data.Length) throw new WaveGradException($"{path}: truncated packet header at byte {pos}");
                int n = BinaryPrimitives.ReadUInt16LittleEndian(data.AsSpan(pos));
                if (n == 0 || pos + 2 + n > data.Length) throw new WaveGradException($"{path}: truncated or empty packet at byte {pos}");
                if (got + Frame > y.Length) throw new WaveGradException($"{path}: more packets than its {count} samples need");
                got += dec.Decode(data.AsSpan(pos + 2, n), y.AsSpan(got, Frame), Frame, false);
                pos += 2 + n;
            }
        }
        catch (OpusException e) { throw new WaveGradException($"{path}: damaged Opus packet ({Text.FirstLine(e.Message)})"); }
        catch (Exception e) when (e is IndexOutOfRangeException or ArgumentException)
        {
            throw new WaveGradException($"{path}: damaged Opus packet ({e.GetType().Name})");
        }
        if (got < atCodec + lookahead) throw new WaveGradException($"{path}: holds {got} samples of the {atCodec + lookahead} its header promises");
        var x = y.AsSpan(lookahead, (int)atCodec).ToArray();
        var r = targetRate == CodecRate ? x : Wav.Resample(x, CodecRate, targetRate);
        long want = (long)Math.Round(count * (double)targetRate / rate);
        if (r.Length != want) Array.Resize(ref r, (int)want);
        for (int i = 0; i < r.Length; i++) r[i] = Math.Clamp(r[i], -1f, 1f);
        return r;
    }
}
