namespace WaveGradSharp.Cli.Tests;

/// <summary>End to end through the built CLI: <c>wavegrad mel | griffinlim | eval</c>.</summary>
public class AudioCliTests
{
    static string Fixture(string name) => Path.Combine(AppContext.BaseDirectory, "fixtures", "audio", name);

    static string TempDir()
    {
        string d = Path.Combine(Path.GetTempPath(), "wgs-audio-cli", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(d);
        return d;
    }

    static string[] Files(string dir) => Directory.GetFiles(dir).Select(Path.GetFileName).OfType<string>().OrderBy(x => x).ToArray();

    [Fact]
    public void Mel_then_griffinlim_then_eval()
    {
        string dir = TempDir(), npy = Path.Combine(dir, "w.npy"), png = Path.Combine(dir, "w.png"), wav = Path.Combine(dir, "gl.wav");
        var r = CliRunner.Run("mel", Fixture("clip-word-22k.wav"), "-o", npy, "--png", png);
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Contains("log-mel [80, 68], preset hifigan-22k", r.Stdout);
        r = CliRunner.Run("griffinlim", npy, "-o", wav, "--iters", "8");
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Contains("wrote " + wav, r.Stdout);
        r = CliRunner.Run("eval", "--ref", Fixture("clip-word-22k.wav"), "--test", wav);
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Contains("logmel-L1", r.Stdout);
        Assert.Contains("gl.wav", r.Stdout);
        Assert.Equal(["gl.wav", "w.npy", "w.png"], Files(dir));
    }

    [Theory]
    [InlineData("mp3", "not a RIFF/WAVE file (it looks like an MP3")]
    [InlineData("truncated", "truncated data chunk")]
    [InlineData("nan", "is NaN")]
    public void Bad_wav_gives_one_line_exit_2_and_no_output(string kind, string problem)
    {
        string dir = TempDir(), bad = Path.Combine(dir, "bad.wav");
        var good = File.ReadAllBytes(Fixture("clip-chirp-22k.wav"));
        byte[] bytes = kind switch
        {
            "mp3" => [.. "ID3"u8, 3, 0, 0, 0, 0, 0, 10, 0xFF, 0xFB, 0x90, 0x64, .. new byte[200]],
            "truncated" => good[..^1000],
            _ => Nan(),
        };
        File.WriteAllBytes(bad, bytes);
        var r = CliRunner.Run("mel", bad, "-o", Path.Combine(dir, "out.npy"), "--png", Path.Combine(dir, "out.png"));
        Assert.Equal(2, r.ExitCode);
        var lines = r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines);
        Assert.StartsWith($"error: {bad}: ", lines[0]);
        Assert.Contains(problem, lines[0]);
        Assert.Equal(["bad.wav"], Files(dir));

        static byte[] Nan()
        {
            // mono float32 WAV whose 10th sample is NaN
            var ms = new MemoryStream();
            var w = new BinaryWriter(ms);
            var data = new float[2000];
            data[10] = float.NaN;
            w.Write("RIFF"u8); w.Write(36 + data.Length * 4); w.Write("WAVE"u8);
            w.Write("fmt "u8); w.Write(16); w.Write((ushort)3); w.Write((ushort)1); w.Write(22050); w.Write(22050 * 4); w.Write((ushort)4); w.Write((ushort)32);
            w.Write("data"u8); w.Write(data.Length * 4);
            foreach (var f in data) w.Write(f);
            return ms.ToArray();
        }
    }

    [Fact]
    public void Griffinlim_with_the_wrong_preset_names_both_band_counts_and_writes_nothing()
    {
        string dir = TempDir(), npy = Path.Combine(dir, "m.npy");
        Assert.Equal(0, CliRunner.Run("mel", Fixture("clip-chirp-24k.wav"), "-o", npy, "--preset", "wavegrad-24k").ExitCode);
        var r = CliRunner.Run("griffinlim", npy, "-o", Path.Combine(dir, "x.wav"));
        Assert.Equal(2, r.ExitCode);
        Assert.Equal($"error: {npy}: the mel has 128 mel bands but 80 are expected (shape [128, 65])", r.Stderr.Trim());
        Assert.Equal(["m.npy"], Files(dir));
        r = CliRunner.Run("mel", Fixture("clip-chirp-24k.wav"), "-o", npy, "--preset", "nope");
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("known presets are hifigan-22k, hifigan-22k-centered, lmnt-22k, wavegrad-24k", r.Stderr);
    }
}
