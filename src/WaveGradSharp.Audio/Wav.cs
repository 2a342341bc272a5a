using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;
using NAudio.Dsp;
using NAudio.Wave;
using WaveGradSharp.Core;

namespace WaveGradSharp.Audio;

/// <summary>What a WAV file's header says.</summary>
/// <param name="SampleRate">Hz.</param>
/// <param name="Channels">Interleaved channels.</param>
/// <param name="BitsPerSample">Container bits per sample.</param>
/// <param name="IsFloat">IEEE float samples (otherwise integer PCM).</param>
/// <param name="Frames">Samples per channel.</param>
public sealed record WavInfo(int SampleRate, int Channels, int BitsPerSample, bool IsFloat, long Frames)
{
    /// <summary>Duration in seconds.</summary>
    public double Seconds => (double)Frames / SampleRate;
}

/// <summary>WAV reading (PCM 8/16/24/32-bit, IEEE float 32/64, WAVE_FORMAT_EXTENSIBLE; any channel count, mixed down to
/// mono; any rate, resampled with NAudio's WDL resampler in windowed-sinc mode) and writing (PCM16 or float32, atomic).
/// Every problem with a file is a <see cref="WaveGradException"/> whose message starts with the path.</summary>
public static class Wav
{
    const int MaxChannels = 64;
    internal const int MaxSampleRate = 1_536_000;
    const int MaxFmtChunk = 1 << 16;

    /// <summary>The lowest sample rate read: below it a file holds no speech, and resampling it up would turn a few kB into hours.</summary>
    public const int MinSampleRate = 1000;

    /// <summary>The longest input read by default (one hour); pass another limit where longer input is meant.</summary>
    public const double DefaultMaxSeconds = 3600;

    /// <summary>Reads <paramref name="path"/> as mono float samples in [-1, 1], resampled to <paramref name="targetSampleRate"/> Hz.
    /// A file longer than <paramref name="maxSeconds"/> is an error, found in its header before anything is read.</summary>
    public static float[] Read(string path, int targetSampleRate, double maxSeconds = DefaultMaxSeconds)
    {
        if (targetSampleRate <= 0) throw new ArgumentOutOfRangeException(nameof(targetSampleRate));
        var x = Read(path, out int sr, maxSeconds);
        return sr == targetSampleRate ? x : Resample(x, sr, targetSampleRate);
    }

    /// <summary>Reads <paramref name="path"/> as mono float samples at the file's own rate (at most <paramref name="maxSeconds"/>).</summary>
    public static float[] Read(string path, out int sampleRate, double maxSeconds = DefaultMaxSeconds)
    {
        using var fs = Open(path);
        var (info, dataOffset, tag) = ParseHeader(fs, path);
        if (info.Seconds > maxSeconds)
            throw WaveGradException.About($"{path}: {info.Seconds:F0} s of audio is longer than the limit of {maxSeconds:G} s (MaxSeconds)", "MaxSeconds");
        sampleRate = info.SampleRate;
        int blockAlign = info.Channels * info.BitsPerSample / 8;
        long bytes = info.Frames * blockAlign;
        var raw = GC.AllocateUninitializedArray<byte>(checked((int)bytes));
        fs.Position = dataOffset;
        fs.ReadExactly(raw);
        return Decode(raw, info, path);
    }

    /// <summary>Reads only the header of <paramref name="path"/> and checks it.</summary>
    public static WavInfo Probe(string path)
    {
        using var fs = Open(path);
        return ParseHeader(fs, path).Info;
    }

    static FileStream Open(string path)
    {
        return InputFile.Open(path, "WAV file");
    }

    static string Sniff(ReadOnlySpan<byte> head)
    {
        if (head.Length >= 3 && head[..3].SequenceEqual("ID3"u8)) return " (it looks like an MP3 file with an ID3 tag)";
        if (head.Length >= 2 && head[0] == 0xFF && (head[1] & 0xE0) == 0xE0) return " (it looks like an MPEG audio/MP3 stream)";
        if (head.Length >= 4 && head[..4].SequenceEqual("fLaC"u8)) return " (it looks like a FLAC file)";
        if (head.Length >= 4 && head[..4].SequenceEqual("OggS"u8)) return " (it looks like an Ogg file)";
        if (head.Length >= 4 && head[..4].SequenceEqual("FORM"u8)) return " (it looks like an AIFF file)";
        if (head.Length >= 4 && head[..4].SequenceEqual("RF64"u8)) return " (it is RF64, the >4 GB WAV variant, which is not supported)";
        if (head.Length >= 6 && head[..6].SequenceEqual(Npy.Magic)) return " (it looks like a .npy array)";
        return "";
    }

    static string Tag(ReadOnlySpan<byte> b)
    {
        var sb = new StringBuilder();
        foreach (var c in b) sb.Append(c is >= 32 and < 127 ? (char)c : '?');
        return sb.ToString();
    }

    static string EncodingName(int tag) => tag switch
    {
        0x0002 => "Microsoft ADPCM",
        0x0006 => "A-law",
        0x0007 => "µ-law",
        0x0011 => "IMA ADPCM",
        0x0031 => "GSM 6.10",
        0x0050 => "MPEG",
        0x0055 => "MP3",
        0x00FF or 0x1610 => "AAC",
        _ => "unknown",
    };

    /// <summary>Walks every RIFF chunk and checks every size against the file before anything is allocated; a second fmt
    /// or data chunk is an error. Bytes after both that are not a chunk end the walk (some writers leave a tail).</summary>
    static (WavInfo Info, long DataOffset, int FormatTag) ParseHeader(FileStream fs, string path)
    {
        long length = fs.Length;
        Span<byte> head = stackalloc byte[12];
        int got = fs.ReadAtLeast(head, 12, throwOnEndOfStream: false);
        if (got < 12 || !head[..4].SequenceEqual("RIFF"u8) || !head[8..12].SequenceEqual("WAVE"u8))
        {
            if (length == 0) throw new WaveGradException($"{path}: not a RIFF/WAVE file (the file is empty)");
            throw new WaveGradException($"{path}: not a RIFF/WAVE file{Sniff(head[..got])}");
        }

        byte[]? fmt = null;
        long dataOffset = -1, dataSize = -1;
        long pos = 12;
        Span<byte> ch = stackalloc byte[8];
        while (pos + 8 <= length)
        {
            fs.Position = pos;
            fs.ReadExactly(ch);
            string id = Tag(ch[..4]);
            long size = BinaryPrimitives.ReadUInt32LittleEndian(ch[4..]);
            long body = pos + 8, remain = length - body;
            // Two fmt (or data) chunks would make two readers see two different files: refuse them instead of picking one.
            if ((id == "fmt " && fmt != null) || (id == "data" && dataOffset >= 0))
                throw new WaveGradException($"{path}: corrupt header: a second '{id.TrimEnd()}' chunk at byte {pos} (a WAVE file has one)");
            if (id == "data")
            {
                if (size > remain)
                    throw new WaveGradException($"{path}: truncated data chunk: the header says {size} bytes of audio but only {remain} bytes follow " +
                        "(the file was cut short or its header is corrupt)");
                dataOffset = body; dataSize = size;
            }
            else if (id == "fmt ")
            {
                if (size < 16) throw new WaveGradException($"{path}: fmt chunk of {size} bytes is too small (a WAVE format needs at least 16)");
                if (size > MaxFmtChunk || size > remain)
                    throw new WaveGradException($"{path}: corrupt header: fmt chunk claims {size} bytes but {Math.Min(remain, (long)MaxFmtChunk)} is " +
                        "the most possible");
                fmt = new byte[size];
                fs.ReadExactly(fmt);
            }
            else if (size > remain)
            {
                if (fmt != null && dataOffset >= 0) break;   // bytes after the audio that are not a chunk (a writer's tail)
                throw new WaveGradException($"{path}: corrupt header: chunk '{id}' claims {size} bytes but only {remain} bytes remain in the file");
            }
            pos = body + size + (size & 1);
        }
        if (fmt == null) throw new WaveGradException($"{path}: RIFF/WAVE file without a fmt chunk");
        if (dataOffset < 0) throw new WaveGradException($"{path}: RIFF/WAVE file without a data chunk");

        int tag = BinaryPrimitives.ReadUInt16LittleEndian(fmt);
        int channels = BinaryPrimitives.ReadUInt16LittleEndian(fmt.AsSpan(2));
        long rate = BinaryPrimitives.ReadUInt32LittleEndian(fmt.AsSpan(4));
        int align = BinaryPrimitives.ReadUInt16LittleEndian(fmt.AsSpan(12));
        int bits = BinaryPrimitives.ReadUInt16LittleEndian(fmt.AsSpan(14));
        int effective = tag;
        if (tag == 0xFFFE)
        {
            if (fmt.Length < 40) throw new WaveGradException($"{path}: WAVE_FORMAT_EXTENSIBLE fmt chunk of {fmt.Length} bytes is too small (needs 40)");
            effective = BinaryPrimitives.ReadUInt16LittleEndian(fmt.AsSpan(24)); // first two bytes of the SubFormat GUID
        }
        bool isFloat = effective == 3;
        if (effective != 1 && effective != 3)
            throw new WaveGradException($"{path}: unsupported encoding {EncodingName(effective)} (format tag 0x{effective:X4}); only PCM and IEEE float " +
                "WAV are read — convert it first, e.g. 'sox IN -e signed -b 16 OUT.wav'");
        if (channels < 1 || channels > MaxChannels) throw new WaveGradException($"{path}: corrupt header: {channels} channels (expected 1 to {MaxChannels})");
        if (rate < MinSampleRate || rate > MaxSampleRate)
            throw new WaveGradException($"{path}: sample rate {rate} Hz is outside {MinSampleRate}–{MaxSampleRate} Hz");
        bool bitsOk = isFloat ? bits is 32 or 64 : bits is 8 or 16 or 24 or 32;
        if (!bitsOk)
            throw new WaveGradException($"{path}: unsupported encoding: {bits}-bit " +
                $"{(isFloat ? "IEEE float" : "PCM")} (read: PCM 8/16/24/32-bit, float 32/64-bit)");
        if (align != channels * bits / 8)
            throw new WaveGradException($"{path}: corrupt header: block align {align} does not match {channels} channel(s) × {bits} bits");
        long frames = dataSize / align;
        if (frames == 0) throw new WaveGradException($"{path}: contains zero samples");
        if (frames * channels > Array.MaxLength / 8)
            throw new WaveGradException($"{path}: {frames} frames × {channels} channels is too long to read into memory at once");
        return (new WavInfo((int)rate, channels, bits, isFloat, frames), dataOffset, effective);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static float[] Decode(byte[] raw, WavInfo info, string path)
    {
        int c = info.Channels;
        long n = info.Frames;
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("big-endian hosts are not supported");
        if (info.IsFloat && info.BitsPerSample == 32) CheckFloatSamples(MemoryMarshal.Cast<byte, float>(raw), info, path);
        else if (info.IsFloat) CheckFloatSamples(MemoryMarshal.Cast<byte, double>(raw), info, path);
        var interleaved = info.BitsPerSample switch
        {
            _ when info.IsFloat && info.BitsPerSample == 32 => MemoryMarshal.Cast<byte, float>(raw).ToArray(),
            _ when info.IsFloat => ToFloat(MemoryMarshal.Cast<byte, double>(raw)),
            8 => ToFloat8(raw),
            16 => ToFloat16(MemoryMarshal.Cast<byte, short>(raw)),
            24 => ToFloat24(raw),
            _ => ToFloat32(MemoryMarshal.Cast<byte, int>(raw)),
        };
        if (c == 1) return interleaved;
        var mono = new float[n];
        float inv = 1f / c;
        for (long f = 0; f < n; f++)
        {
            float s = 0;
            long b = f * c;
            for (int k = 0; k < c; k++) s += interleaved[b + k];
            mono[f] = s * inv;
        }
        return mono;
    }

    /// <summary>
    /// The largest magnitude of a float sample read: 10,000 (80 dB above full scale). Float audio lives in [-1, 1] and may
    /// overshoot it a little; far larger values are damage, or integers stored as floats, and from about 1e15 on the STFT's
    /// power overflows float32, so that every mel frame becomes NaN or infinite and every later stage works on it.
    /// </summary>
    public const double MaxFloatSample = 1e4;

    /// <summary>Refuses the first NaN, infinite or absurd (beyond ±<see cref="MaxFloatSample"/>) sample of a float WAV,
    /// in the file's own precision (a float64 1e300 is absurd, not infinite), naming its frame, channel and time.</summary>
    static void CheckFloatSamples<T>(ReadOnlySpan<T> s, WavInfo info, string path) where T : System.Numerics.IFloatingPointIeee754<T>
    {
        T max = T.CreateChecked(MaxFloatSample);
        for (int i = 0; i < s.Length; i++)
        {
            if (T.Abs(s[i]) <= max) continue;   // false for NaN too
            long frame = i / info.Channels;
            string what = T.IsNaN(s[i]) ? "NaN" : T.IsInfinity(s[i]) ? "infinite" : $"{double.CreateChecked(s[i]):G4}, beyond ±{MaxFloatSample:G} " +
                "(float samples belong in [-1, 1])";
            throw new WaveGradException($"{path}: sample {frame} (channel {i % info.Channels}, at {(double)frame / info.SampleRate:F3} s) is {what}; " +
                "the audio is corrupt");
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static float[] ToFloat(ReadOnlySpan<double> d)
    {
        var r = new float[d.Length];
        for (int i = 0; i < d.Length; i++) r[i] = (float)d[i];
        return r;
    }
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static float[] ToFloat8(byte[] b)
    {
        var r = new float[b.Length];
        for (int i = 0; i < b.Length; i++) r[i] = (b[i] - 128) / 128f;
        return r;
    }
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static float[] ToFloat16(ReadOnlySpan<short> s)
    {
        var r = new float[s.Length];
        const float k = 1f / 32768f;
        for (int i = 0; i < s.Length; i++) r[i] = s[i] * k;
        return r;
    }
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static float[] ToFloat24(byte[] b)
    {
        var r = new float[b.Length / 3];
        const float k = 1f / 8388608f;
        for (int i = 0, j = 0; i < r.Length; i++, j += 3)
            r[i] = ((b[j] << 8 | b[j + 1] << 16 | b[j + 2] << 24) >> 8) * k;
        return r;
    }
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static float[] ToFloat32(ReadOnlySpan<int> s)
    {
        var r = new float[s.Length];
        const double k = 1.0 / 2147483648.0;
        for (int i = 0; i < s.Length; i++) r[i] = (float)(s[i] * k);
        return r;
    }

    /// <summary>Resamples mono <paramref name="x"/> from <paramref name="fromRate"/> to <paramref name="toRate"/> Hz with
    /// NAudio's WDL resampler in windowed-sinc mode (64 taps, anti-aliasing low-pass when downsampling).
    /// The output has round(len·to/from) samples and output i sits at time i/toRate. Long inputs are cut into blocks that
    /// start on exact common sample instants, resampled in parallel with overlapping margins, and joined.</summary>
    public static float[] Resample(float[] x, int fromRate, int toRate)
    {
        if (fromRate <= 0 || toRate <= 0) throw new ArgumentOutOfRangeException(nameof(fromRate), "sample rates must be positive");
        if (fromRate == toRate) return (float[])x.Clone();
        long outLen = (long)Math.Round((double)x.Length * toRate / fromRate);
        var result = new float[outLen];
        int g = (int)Gcd(fromRate, toRate);
        long pin = fromRate / g, pout = toRate / g; // pin input samples span exactly pout output samples
        long margin = (SincTaps * 2 + pin - 1) / pin * pin;
        // Blocks of at least 2^15 samples, about 8 of them for long inputs; pairs of blocks run as the two channels of
        // one stereo resampler (WDL's two-channel kernel is faster per sample), pairs in parallel.
        long per = Math.Max(1, Math.Max(1L << 15, (x.Length + 7) / 8) / pin) * pin;
        long blocks = (x.Length + per - 1) / per;
        if (blocks <= 1 || pin > (1 << 20)) { ResampleBlocks(x, [new Block(0, x.Length, 0, 0, outLen)], fromRate, toRate, result); return result; }
        Block Make(long bi)
        {
            long s = bi * per, e = Math.Min(x.Length, s + per);
            long s0 = Math.Max(0, s - margin), e0 = Math.Min(x.Length, e + margin);
            long outStart = s / pin * pout, outEnd = bi == blocks - 1 ? outLen : e / pin * pout;
            return new Block((int)s0, (int)(e0 - s0), (s - s0) / pin * pout, outStart, outEnd - outStart);
        }
        Parallel.For(0, (blocks + 1) / 2, pi =>
        {
            long a = 2 * pi, b = a + 1;
            ResampleBlocks(x, b < blocks ? [Make(a), Make(b)] : [Make(a)], fromRate, toRate, result);
        });
        return result;
    }

    static long Gcd(long a, long b) { while (b != 0) (a, b) = (b, a % b); return a; }

    /// <summary>Input x[Start..Start+Count) whose outputs, after dropping <c>Skip</c>, go to dst[DstAt..DstAt+Take).</summary>
    readonly record struct Block(int Start, int Count, long Skip, long DstAt, long Take);

    /// <summary>Resamples one block, or two blocks at once as the channels of a stereo stream.</summary>
    static void ResampleBlocks(float[] x, Block[] blocks, int fromRate, int toRate, float[] dst)
    {
        int nch = blocks.Length;
        var r = new WdlResampler();
        r.SetMode(true, 0, true, SincTaps, 32);
        r.SetFeedMode(true); // input-driven: hand over everything at once, then flush
        r.SetRates(fromRate, toRate);
        int count = blocks.Max(b => b.Count);
        long want = blocks.Max(b => b.Skip + b.Take);
        int frames = (int)(want + SincTaps * 4 + 16);
        var y = System.Buffers.ArrayPool<float>.Shared.Rent(frames * nch);
        try
        {
            int n = r.ResamplePrepare(count, nch, out Span<float> inBuf);
            if (n != count) throw new InvalidOperationException($"WDL resampler accepted {n} of {count} frames");
            if (nch == 1) x.AsSpan(blocks[0].Start, count).CopyTo(inBuf);
            else
            {
                inBuf[..(2 * count)].Clear();
                for (int c = 0; c < 2; c++)
                {
                    var src = x.AsSpan(blocks[c].Start, blocks[c].Count);
                    for (int i = 0; i < src.Length; i++) inBuf[2 * i + c] = src[i];
                }
            }
            int produced = r.ResampleOut(y.AsSpan(0, frames * nch), n, frames, nch);
            if (produced < want)
            {
                r.ResamplePrepare(SincTaps * 2, nch, out _);
                produced += r.ResampleOut(y.AsSpan(produced * nch, (frames - produced) * nch), 0, frames - produced, nch); // fewer inputs than asked: flush
            }
            // WDL pre-rolls its own filter delay: output i is at time i/toRate from the block's first input.
            for (int c = 0; c < nch; c++)
            {
                var b = blocks[c];
                long avail = Math.Max(0, Math.Min(b.Take, produced - b.Skip));
                var d = dst.AsSpan((int)b.DstAt, (int)avail);
                for (int i = 0; i < d.Length; i++) d[i] = y[(b.Skip + i) * nch + c];
            }
        }
        finally { System.Buffers.ArrayPool<float>.Shared.Return(y); }
    }

    internal const int SincTaps = 64;

    /// <summary>Mono samples as little-endian 16-bit PCM into <paramref name="bytes"/> (2 per sample): x·32768 rounded and clamped
    /// to the 16-bit range, the inverse of the reader's s/32768.</summary>
    public static void ToPcm16(ReadOnlySpan<float> samples, Span<byte> bytes)
    {
        var pcm = MemoryMarshal.Cast<byte, short>(bytes[..(samples.Length * 2)]);
        for (int i = 0; i < samples.Length; i++) pcm[i] = (short)Math.Clamp(Math.Round(samples[i] * 32768.0), -32768, 32767);
    }

    /// <summary>
    /// The 44-byte header of a mono 16-bit PCM WAV whose length is unknown when it starts, as a server streaming audio writes
    /// it: the RIFF and data sizes are 0xFFFFFFFF, so readers that honour them read the data to the end of the stream.
    /// </summary>
    public static byte[] StreamingHeader(int sampleRate)
    {
        if (sampleRate < MinSampleRate || sampleRate > MaxSampleRate) throw new WaveGradException($"cannot stream a sample rate of {sampleRate} Hz");
        var h = new byte[44];
        "RIFF"u8.CopyTo(h); BinaryPrimitives.WriteUInt32LittleEndian(h.AsSpan(4), uint.MaxValue);
        "WAVEfmt "u8.CopyTo(h.AsSpan(8));
        BinaryPrimitives.WriteUInt32LittleEndian(h.AsSpan(16), 16);
        BinaryPrimitives.WriteUInt16LittleEndian(h.AsSpan(20), 1);                   // PCM
        BinaryPrimitives.WriteUInt16LittleEndian(h.AsSpan(22), 1);                   // mono
        BinaryPrimitives.WriteUInt32LittleEndian(h.AsSpan(24), (uint)sampleRate);
        BinaryPrimitives.WriteUInt32LittleEndian(h.AsSpan(28), (uint)sampleRate * 2);
        BinaryPrimitives.WriteUInt16LittleEndian(h.AsSpan(32), 2);
        BinaryPrimitives.WriteUInt16LittleEndian(h.AsSpan(34), 16);
        "data"u8.CopyTo(h.AsSpan(36)); BinaryPrimitives.WriteUInt32LittleEndian(h.AsSpan(40), uint.MaxValue);
        return h;
    }

    /// <summary>Writes mono <paramref name="samples"/> to <paramref name="path"/> atomically (see <see cref="WavStreamWriter"/>).</summary>
    public static void Write(string path, ReadOnlySpan<float> samples, int sampleRate, bool float32 = false)
    {
        using var w = new WavStreamWriter(path, sampleRate, float32);
        w.Write(samples);
        w.Commit();
    }
}

/// <summary>
/// Writes a mono WAV file chunk by chunk, so that memory does not grow with its length: PCM16 (x·32768 rounded and clamped
/// to the 16-bit range, the inverse of the reader's s/32768) or IEEE float32. The file is written under a temporary name
/// beside <c>path</c> and renamed into place by <see cref="Commit"/>; disposed without it, nothing is left behind.
/// </summary>
public sealed class WavStreamWriter : IDisposable
{
    readonly string path, tmp;
    readonly bool float32;
    WaveFileWriter? writer;
    byte[] bytes = [];

    /// <summary>Samples written so far.</summary>
    public long Samples { get; private set; }

    /// <summary>Starts the file (its header is completed at <see cref="Commit"/>).</summary>
    public WavStreamWriter(string path, int sampleRate, bool float32 = false)
    {
        if (sampleRate <= 0 || sampleRate > Wav.MaxSampleRate) throw new WaveGradException($"{path}: cannot write a sample rate of {sampleRate} Hz");
        this.path = path; this.float32 = float32;
        tmp = AtomicFile.TempPath(path);
        try { writer = new WaveFileWriter(tmp, float32 ? WaveFormat.CreateIeeeFloatWaveFormat(sampleRate, 1) : new WaveFormat(sampleRate, 16, 1)); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw AtomicFile.Failed(path, tmp, e); }
    }

    /// <summary>Appends samples; a NaN or infinite one is an error naming its position.</summary>
    public void Write(ReadOnlySpan<float> samples)
    {
        var w = writer ?? throw new InvalidOperationException("the WAV file is already committed");
        for (int i = 0; i < samples.Length; i++)
            if (!float.IsFinite(samples[i]))
                throw new WaveGradException($"{path}: refusing to write: sample {Samples + i} is {(float.IsNaN(samples[i]) ? "NaN" : "infinite")}");
        int n = samples.Length * (float32 ? 4 : 2);
        if (bytes.Length < n) bytes = new byte[n];
        if (float32) MemoryMarshal.AsBytes(samples).CopyTo(bytes);
        else Wav.ToPcm16(samples, bytes);
        try { w.Write(bytes, 0, n); }
        catch (IOException e) { throw AtomicFile.Failed(path, tmp, e); }   // a full disk
        Samples += samples.Length;
    }

    /// <summary>Completes the header and renames the file into place.</summary>
    public void Commit()
    {
        var w = writer ?? throw new InvalidOperationException("the WAV file is already committed");
        if (Samples == 0) throw new WaveGradException($"{path}: refusing to write a WAV file with zero samples");
        try
        {
            w.Dispose();
            writer = null;
            File.Move(tmp, Path.GetFullPath(path), overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw AtomicFile.Failed(path, tmp, e); }
    }

    /// <summary>Removes the temporary file unless committed.</summary>
    public void Dispose()
    {
        writer?.Dispose();
        writer = null;
        if (File.Exists(tmp)) File.Delete(tmp);
    }
}
