using System.Buffers.Binary;
using static WaveGradSharp.Audio.Tests.TestData;
using WaveGradSharp.Core;

namespace WaveGradSharp.Audio.Tests;

public class WavTests
{
    const int Rate = 16000, Frames = 800;

    static byte[] Encode(int channels, int bits, bool isFloat, Func<int, int, double> f)
    {
        int bps = bits / 8;
        var b = new byte[Frames * channels * bps];
        for (int i = 0; i < Frames; i++)
            for (int c = 0; c < channels; c++)
            {
                double v = f(i, c);
                var s = b.AsSpan((i * channels + c) * bps, bps);
                if (isFloat && bits == 32) BinaryPrimitives.WriteSingleLittleEndian(s, (float)v);
                else if (isFloat) BinaryPrimitives.WriteDoubleLittleEndian(s, v);
                else if (bits == 8) s[0] = (byte)(Math.Round(v * 127) + 128);
                else if (bits == 16) BinaryPrimitives.WriteInt16LittleEndian(s, (short)Math.Round(v * 32767));
                else if (bits == 24) { int q = (int)Math.Round(v * 8388607); s[0] = (byte)q; s[1] = (byte)(q >> 8); s[2] = (byte)(q >> 16); }
                else BinaryPrimitives.WriteInt32LittleEndian(s, (int)Math.Round(v * 2147483647.0));
            }
        return b;
    }

    public static TheoryData<int, int, int, bool, bool, double> Formats() => new()
    {
        // tag, channels, bits, float, extensible, tolerance
        { 1, 1, 8, false, false, 1.0 / 100 },
        { 1, 1, 16, false, false, 1e-4 },
        { 1, 2, 16, false, false, 1e-4 },
        { 1, 1, 24, false, false, 1e-6 },
        { 1, 3, 24, false, true, 1e-6 },
        { 1, 1, 32, false, false, 1e-7 },
        { 3, 1, 32, true, false, 1e-7 },
        { 3, 2, 32, true, true, 1e-7 },
        { 3, 5, 64, true, false, 1e-7 },
        { 3, 1, 64, true, true, 1e-7 },
    };

    [Theory, MemberData(nameof(Formats))]
    public void Reads_every_pcm_and_float_layout_and_mixes_down_to_mono(int tag, int channels, int bits, bool isFloat, bool extensible, double tol)
    {
        string dir = TempDir(), path = Path.Combine(dir, "x.wav");
        File.WriteAllBytes(path, BuildWav(tag, channels, Rate, bits, Encode(channels, bits, isFloat, (i, c) => Signal(i, c, Rate)), extensible,
            extraChunkBeforeData: [.. "LIST"u8, 3, 0, 0, 0, 1, 2, 3, 0])); // an odd-sized chunk before data, with its pad byte
        var info = Wav.Probe(path);
        Assert.Equal(new WavInfo(Rate, channels, bits, isFloat, Frames), info);
        var x = Wav.Read(path, out int sr);
        Assert.Equal(Rate, sr);
        Assert.Equal(Frames, x.Length);
        for (int i = 0; i < Frames; i++)
        {
            double want = Enumerable.Range(0, channels).Average(c => Signal(i, c, Rate));
            Assert.True(Math.Abs(x[i] - want) <= tol, $"frame {i}: {x[i]} vs {want}");
        }
    }

    [Fact]
    public void Pcm16_and_float32_writes_round_trip_and_pcm16_clamps()
    {
        string dir = TempDir();
        float[] s = [0f, 0.25f, -0.5f, 0.999f, 1.5f, -2f, 1e-6f];
        Wav.Write(Path.Combine(dir, "a.wav"), s, 22050);
        Wav.Write(Path.Combine(dir, "b.wav"), s, 24000, float32: true);
        Assert.Equal(["a.wav", "b.wav"], Files(dir)); // no temporaries left behind
        var a = Wav.Read(Path.Combine(dir, "a.wav"), out int ra);
        var b = Wav.Read(Path.Combine(dir, "b.wav"), out int rb);
        Assert.Equal((22050, 24000), (ra, rb));
        Assert.Equal(new WavInfo(22050, 1, 16, false, 7), Wav.Probe(Path.Combine(dir, "a.wav")));
        Assert.Equal(new WavInfo(24000, 1, 32, true, 7), Wav.Probe(Path.Combine(dir, "b.wav")));
        Assert.Equal(s, b);
        float[] clamped = [0f, 0.25f, -0.5f, 0.999f, 1f, -1f, 0f];
        for (int i = 0; i < s.Length; i++) Assert.True(Math.Abs(a[i] - clamped[i]) <= 0.5 / 32768 + 1e-9 || (i == 4 && a[i] == 32767f / 32768f),
            $"{i}: {a[i]}");
        Assert.Equal(32767f / 32768f, a[4]);
    }

    [Fact]
    public void Writing_nan_fails_and_leaves_no_file()
    {
        string dir = TempDir(), path = Path.Combine(dir, "nan.wav");
        var e = Assert.Throws<WaveGradException>(() => Wav.Write(path, [0f, float.NaN], 22050));
        Assert.Contains(path, e.Message);
        Assert.Contains("NaN", e.Message);
        Assert.Empty(Files(dir));
    }

    [Fact]
    public void A_killed_writers_temporaries_go_when_any_file_is_written_into_their_folder()
    {
        // PIDs above the kernel's maximum (2^22) never run; our own process is alive, so its temporary stays; names that
        // are not exactly the writer's pattern are someone else's and stay too.
        string dir = TempDir(), path = Path.Combine(dir, "out.wav"), guid = "0123456789abcdef0123456789abcdef";
        string dead = Path.Combine(dir, $".long.wav.2147483600.{guid}.tmp"), live = Path.Combine(dir, $".out.wav.{Environment.ProcessId}.{guid}.tmp");
        string deadDir = Path.Combine(dir, $".checkpoint.2147483600.{guid}.tmp");
        string[] notOurs = [Path.Combine(dir, ".notes.tmp"), Path.Combine(dir, ".x.wav.2147483600.0a1b.tmp"), Path.Combine(dir, $".x.wav.abc.{guid}.tmp")];
        foreach (var f in new[] { dead, live }.Concat(notOurs)) File.WriteAllBytes(f, new byte[1000]);
        Directory.CreateDirectory(Path.Combine(deadDir, "inner"));
        Wav.Write(path, [0.1f, -0.1f], 22050);   // another output than the killed writer's
        Assert.False(File.Exists(dead));
        Assert.False(Directory.Exists(deadDir));
        Assert.True(File.Exists(live));
        Assert.All(notOurs, f => Assert.True(File.Exists(f), f));
        Assert.True(File.Exists(path));
    }

    [Fact]
    public void A_write_that_the_folder_refuses_names_the_output_not_the_temporary()
    {
        // /sys refuses new files even to root (a folder made read-only with chmod does not stop root).
        if (!OperatingSystem.IsLinux()) return;
        string path = $"/sys/wg-out-{Guid.NewGuid():N}.wav";
        var e = Assert.Throws<WaveGradException>(() => Wav.Write(path, [0.1f], 22050));
        Assert.StartsWith(path + ": cannot write: ", e.Message);
        Assert.DoesNotContain(".tmp", e.Message);
        var n = Assert.Throws<WaveGradException>(() => Npy.Write(path + ".npy", [1f], [1]));
        Assert.StartsWith(path + ".npy: cannot write: ", n.Message);
        Assert.DoesNotContain(".tmp", n.Message);
    }

    [Theory]
    [InlineData(44100, 22050)]
    [InlineData(22050, 24000)]
    [InlineData(24000, 22050)]
    [InlineData(16000, 22050)]
    public void Resampling_a_sine_is_accurate_aligned_and_of_the_right_length(int from, int to)
    {
        int n = from * 7; // 7 s: several parallel blocks
        var x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float)(0.5 * Math.Sin(2 * Math.PI * 1000.0 * i / from));
        var y = Wav.Resample(x, from, to);
        Assert.Equal((long)Math.Round((double)n * to / from), y.Length);
        double max = 0;
        for (int i = 100; i < y.Length - 100; i++) max = Math.Max(max, Math.Abs(y[i] - 0.5 * Math.Sin(2 * Math.PI * 1000.0 * i / to)));
        Assert.True(max < 1e-4, $"max error {max:E2}");
    }

    [Fact]
    public void Downsampling_removes_content_above_the_new_nyquist()
    {
        int n = 44100;
        var x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float)(0.5 * Math.Sin(2 * Math.PI * 15000.0 * i / 44100));
        var y = Wav.Resample(x, 44100, 22050);
        double rms = Math.Sqrt(y.Skip(200).Take(y.Length - 400).Average(v => (double)v * v));
        Assert.True(rms < 0.5 / Math.Sqrt(2) * 0.01, $"alias at 7.05 kHz has rms {rms:E2} (more than -40 dB)");
    }

    [Fact]
    public void Read_resamples_to_the_rate_asked_for()
    {
        string dir = TempDir(), path = Path.Combine(dir, "st.wav");
        var data = Encode(2, 16, false, (i, c) => 0.3 * Math.Sin(2 * Math.PI * 500 * i / Rate));
        File.WriteAllBytes(path, BuildWav(1, 2, Rate, 16, data));
        var y = Wav.Read(path, 24000);
        Assert.Equal(1200, y.Length);
        for (int i = 50; i < 1150; i++) Assert.True(Math.Abs(y[i] - 0.3 * Math.Sin(2 * Math.PI * 500 * i / 24000.0)) < 1e-3);
    }

    public static TheoryData<string, string> BadFiles() => new()
    {
        { "mp3", "not a RIFF/WAVE file (it looks like an MP3" },
        { "empty", "is empty or not a regular file" },
        { "text", "not a RIFF/WAVE file" },
        { "truncated", "truncated data chunk" },
        { "zero", "contains zero samples" },
        { "adpcm", "unsupported encoding Microsoft ADPCM" },
        { "mp3-in-wav", "unsupported encoding MP3" },
        { "pcm12", "unsupported encoding: 12-bit PCM" },
        { "float16", "unsupported encoding: 16-bit IEEE float" },
        { "fmt-huge", "corrupt header: fmt chunk claims" },
        { "chunk-huge", "corrupt header: chunk 'LIST' claims 4294967040 bytes" },
        { "channels0", "corrupt header: 0 channels" },
        { "rate0", "sample rate 0 Hz is outside 1000–1536000 Hz" },
        { "align", "corrupt header: block align" },
        { "nofmt", "without a fmt chunk" },
        { "nan", "is NaN" },
        { "inf", "is infinite" },
        { "huge32", "sample 300 (channel 1, at 0.019 s) is 1E+30, beyond ±10000" },
        { "huge64", "sample 300 (channel 1, at 0.019 s) is 1E+300, beyond ±10000" },
        { "fmt-twice", "a second 'fmt' chunk at byte 36" },
        { "fmt-after-data", "a second 'fmt' chunk at byte" },
        { "data-twice", "a second 'data' chunk at byte" },
    };

    static byte[] MakeBad(string kind)
    {
        var pcm = Encode(1, 16, false, (i, c) => Signal(i, c, Rate));
        switch (kind)
        {
            case "mp3": return [.. "ID3"u8, 3, 0, 0, 0, 0, 0, 10, 0xFF, 0xFB, 0x90, 0x64, .. new byte[400]];
            case "empty": return [];
            case "text": return "hello, this is not audio at all\n"u8.ToArray();
            case "truncated": { var b = BuildWav(1, 1, Rate, 16, pcm); return b[..(b.Length - 500)]; }
            case "zero": return BuildWav(1, 1, Rate, 16, []);
            case "adpcm": return BuildWav(2, 1, Rate, 4, new byte[256], blockAlignOverride: 256);
            case "mp3-in-wav": return BuildWav(0x55, 1, Rate, 0, new byte[256], blockAlignOverride: 1);
            case "pcm12": return BuildWav(1, 1, Rate, 12, pcm, blockAlignOverride: 2);
            case "float16": return BuildWav(3, 1, Rate, 16, pcm);
            case "fmt-huge": { var b = BuildWav(1, 1, Rate, 16, pcm); BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(16), 0x7FFFFFF0); return b; }
            case "chunk-huge": return BuildWav(1, 1, Rate, 16, pcm, extraChunkBeforeData: [.. "LIST"u8, 0x00, 0xFF, 0xFF, 0xFF]);
            case "channels0": return BuildWav(1, 0, Rate, 16, pcm, blockAlignOverride: 2);
            case "rate0": return BuildWav(1, 1, 0, 16, pcm);
            case "align": return BuildWav(1, 1, Rate, 16, pcm, blockAlignOverride: 3);
            case "nofmt": { var b = BuildWav(1, 1, Rate, 16, pcm); "junk"u8.CopyTo(b.AsSpan(12)); return b; }
            case "nan":
            case "inf":
                {
                    var f = Encode(2, 32, true, (i, c) => i == 300 && c == 1 ? (kind == "nan" ? double.NaN : double.PositiveInfinity) : 0.1);
                    return BuildWav(3, 2, Rate, 32, f);
                }
            case "huge32":
            case "huge64":
                {
                    // Finite but absurd: its STFT power overflows float32 and the whole mel was NaN (issue 28).
                    int bits = kind == "huge32" ? 32 : 64;
                    return BuildWav(3, 2, Rate, bits, Encode(2, bits, true, (i, c) => i == 300 && c == 1 ? (bits == 32 ? 1e30 : 1e300) : 0.1));
                }
            case "fmt-twice":
                {
                    // A second fmt chunk that says 8 kHz stereo: readers that take the first or the last would disagree.
                    var other = BuildWav(1, 2, 8000, 16, [])[12..36];
                    return BuildWav(1, 1, Rate, 16, pcm, extraChunkBeforeData: other);
                }
            case "fmt-after-data":
                {
                    var b = BuildWav(1, 1, Rate, 16, pcm);
                    byte[] r = [.. b, .. BuildWav(1, 2, 8000, 16, [])[12..36]];
                    BinaryPrimitives.WriteInt32LittleEndian(r.AsSpan(4), r.Length - 8);
                    return r;
                }
            case "data-twice": return BuildWav(1, 1, Rate, 16, pcm, extraChunkBeforeData: [.. "data"u8, 4, 0, 0, 0, 1, 2, 3, 4]);
            default: throw new ArgumentException(kind);
        }
    }

    [Fact]
    public void Loud_float_samples_up_to_the_limit_and_bytes_after_the_audio_are_still_read()
    {
        // Float audio may overshoot full scale; a tail after the data chunk that is not a chunk (some writers leave one) is ignored.
        string dir = TempDir(), path = Path.Combine(dir, "loud.wav");
        var b = BuildWav(3, 1, Rate, 32, Encode(1, 32, true, (i, c) => i == 10 ? Wav.MaxFloatSample : i == 11 ? -3.5 : 0.1));
        File.WriteAllBytes(path, [.. b, .. "tail"u8, 0xFF, 0xFF, 0xFF, 0xFF]);
        var x = Wav.Read(path, out _);
        Assert.Equal((float)Wav.MaxFloatSample, x[10]);
        Assert.Equal(-3.5f, x[11]);
    }

    [Theory, MemberData(nameof(BadFiles))]
    public void Bad_input_fails_with_one_line_naming_the_file_and_the_problem_and_writes_nothing(string kind, string problem)
    {
        string dir = TempDir(), path = Path.Combine(dir, $"bad-{kind}.wav");
        File.WriteAllBytes(path, MakeBad(kind));
        var e = Assert.Throws<WaveGradException>(() => Wav.Read(path, 22050));
        Assert.StartsWith(path + ": ", e.Message);
        Assert.Contains(problem, e.Message);
        Assert.DoesNotContain('\n', e.Message);

        var e2 = Assert.Throws<WaveGradException>(() => AudioFiles.MelFromWav(path, Path.Combine(dir, "out.npy"), Path.Combine(dir, "out.png"),
            MelConfig.Preset("hifigan-22k")));
        Assert.Equal(e.Message, e2.Message);
        Assert.Equal([$"bad-{kind}.wav"], Files(dir));
    }

    [Fact]
    public void Absurd_sizes_are_rejected_before_allocating()
    {
        string dir = TempDir(), path = Path.Combine(dir, "huge.wav");
        var b = BuildWav(1, 2, Rate, 16, new byte[64], dataSizeOverride: unchecked((int)0xFFFFFFF0));
        File.WriteAllBytes(path, b);
        Assert.Throws<WaveGradException>(() => Wav.Read(path, Rate)); // warm up
        long before = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<WaveGradException>(() => Wav.Read(path, Rate));
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Contains("truncated data chunk: the header says 4294967280 bytes", e.Message);
        Assert.True(allocated < 1 << 20, $"allocated {allocated} bytes before rejecting");
    }

    [Fact]
    public void Missing_file_and_folder_are_named()
    {
        string dir = TempDir();
        Assert.Equal($"{dir}/nope.wav: file not found", Assert.Throws<WaveGradException>(() => Wav.Read(Path.Combine(dir, "nope.wav"), 22050)).Message);
        Assert.Contains("is a folder", Assert.Throws<WaveGradException>(() => Wav.Read(dir, 22050)).Message);
    }
}
