using System.Text.Json;
using WaveGradSharp.Audio;
using WaveGradSharp.Core;
using WaveGradSharp.Vocoder;
using static TorchSharp.torch;

namespace WaveGradSharp.Cli.Tests;

/// <summary>Oversized and hostile inputs through the CLI: memory stays bounded, and every bad input is one line and exit code 2.</summary>
public class HostileInputTests
{
    static string Fixture(string name) => Path.Combine(AppContext.BaseDirectory, "fixtures", "audio", name);

    /// <summary>A tiny random-weight voice with HiFi-GAN's framing.</summary>
    internal static string TinyVoice(string dir) => WaveGradSharp.Fuzz.Fuzzer.TinyVoice(dir, width: 2);

    /// <summary>A mel of <paramref name="frames"/> frames: the committed word's mel repeated.</summary>
    static string LongMel(string path, int frames)
    {
        var word = Npy.ReadTensor(Fixture("mel-hifigan-22k-word-22k.npy"));
        var tiled = word.repeat(1, frames / (int)word.shape[1] + 1)[.., ..frames];
        MelFile.Save(path, tiled);
        return path;
    }

    static long PeakMb(CliRunner.Result r) =>
        long.Parse(r.Stdout.Split("peak memory ")[1].Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture);

    [Fact]
    public void VocodingAMelSixTimesLongerDoesNotRaisePeakMemory()
    {
        // Griffin-Lim start, rendering and the WAV all stream: 105 s of mel peak no higher than 17 s of it. Before,
        // the whole-mel Griffin-Lim (several [513, frames] complex tensors) and the whole waveform made peak memory grow
        // with the input. glibc is told to return blocks of 1 MB and more at once, so that its high-water mark (which
        // wanders by a few hundred MB with the order of allocations) does not hide what is alive.
        var dir = Directory.CreateTempSubdirectory("wg-long-");
        try
        {
            string voice = TinyVoice(Path.Combine(dir.FullName, "tiny"));
            long Peak(int frames)
            {
                var r = CliRunner.RunWith(null, new Dictionary<string, string?> { ["MALLOC_MMAP_THRESHOLD_"] = "1048576" }, "vocode",
                    LongMel(Path.Combine(dir.FullName, $"m{frames}.npy"), frames), "-o", Path.Combine(dir.FullName, $"o{frames}.wav"),
                    "--voice", voice, "--steps", "3", "--post-filter", "0", "--device", "cpu");
                Assert.True(r.ExitCode == 0, r.Stderr);
                Assert.Equal(44 + frames * 256L * 2, new FileInfo(Path.Combine(dir.FullName, $"o{frames}.wav")).Length);
                return PeakMb(r);
            }
            long small = Peak(1_500), large = Peak(9_000);
            Assert.True(large - small < 150, $"peak memory {small} MB for 1,500 frames, {large} MB for 9,000");
        }
        finally { dir.Delete(true); }
    }

    /// <summary>Runs the CLI and checks a one-line error with exit code 2 that contains <paramref name="expected"/>.</summary>
    static void OneLineError(string expected, params string[] args)
    {
        var r = CliRunner.Run(args);
        Assert.True(r.ExitCode == 2, $"exit {r.ExitCode}: {r.Stdout}{r.Stderr}");
        Assert.Single(r.Stderr.Trim().Split('\n'));
        Assert.StartsWith("error: ", r.Stderr);
        Assert.Contains(expected, r.Stderr);
        Assert.DoesNotContain("   at ", r.Stderr);
    }

    /// <summary>A copy of the tiny voice with voice.json edited by <paramref name="edit"/>.</summary>
    static string EditedVoice(string root, string name, Func<string, string> edit)
    {
        string dir = TinyVoice(Path.Combine(root, name));
        string card = Path.Combine(dir, "voice.json");
        File.WriteAllText(card, edit(File.ReadAllText(card)));
        return dir;
    }

    [Theory]
    [InlineData("network.up_channels", "[1000000, 16, 8, 8, 8]", "up_channels must be between 1 and 4096")]
    [InlineData("network.first_channels", "1000000000", "first_channels must be between 1 and 4096")]
    [InlineData("network.first_channels", "-1", "first_channels must be between 1 and 4096")]
    [InlineData("network.first_channels", "0", "first_channels must be between 1 and 4096")]
    [InlineData("network.up_channels", "[4096, 4096, 4096, 4096, 4096]", "parameters, more than the 100,000,000 supported")]
    [InlineData("network.noise_scale", "-5", "noise_scale -5 must be in (0, 1e6]")]
    [InlineData("sample_rate", "-1", "\"sample_rate\" -1 does not match")]
    [InlineData("sample_rate", "\"fast\"", "does not match preset")]
    [InlineData("sample_rate", "1e300", "does not match preset")]
    [InlineData("sample_rate", null, "\"sample_rate\" (missing) does not match")]
    public void AHostileVoiceCardIsOneLineNamingTheFileBeforeAnythingIsAllocated(string field, string? json, string expected)
    {
        var dir = Directory.CreateTempSubdirectory("wg-card-");
        try
        {
            string voice = EditedVoice(dir.FullName, "v", c =>
            {
                var card = System.Text.Json.Nodes.JsonNode.Parse(c)!.AsObject();
                var parts = field.Split('.');
                var owner = parts.Length == 2 ? card[parts[0]]!.AsObject() : card;
                if (json is null) owner.Remove(parts[^1]); else owner[parts[^1]] = System.Text.Json.Nodes.JsonNode.Parse(json);
                return card.ToJsonString();
            });
            OneLineError(expected, "vocode", Fixture("mel-hifigan-22k-word-22k.npy"), "-o", Path.Combine(dir.FullName, "o.wav"), "--voice", voice);
            Assert.False(File.Exists(Path.Combine(dir.FullName, "o.wav")));
        }
        finally { dir.Delete(true); }
    }

    [Fact]
    public void AVoiceWhoseDefaultScheduleHasAHundredThousandStepsIsRefused()
    {
        var dir = Directory.CreateTempSubdirectory("wg-card-");
        try
        {
            string betas = string.Join(", ", Enumerable.Repeat("0.0001", 100_000));
            string voice = EditedVoice(dir.FullName, "v", c => c.Replace("\"name\": \"tiny\",", "\"name\": \"tiny\", \"default_schedule\": " +
                $"{{\"betas\": [{betas}]}},"));
            OneLineError("a schedule of 100000 steps; a voice's may have at most 1000", "vocode", Fixture("mel-hifigan-22k-word-22k.npy"), "-o",
                Path.Combine(dir.FullName, "o.wav"), "--voice", voice);
        }
        finally { dir.Delete(true); }
    }

    [Fact]
    public void ACardThatNamesAFieldTwiceIsRefusedWithTheNameEscaped()
    {
        // Found by the fuzzer: a repeated key made System.Text.Json throw a bare ArgumentException ("same key has already
        // been added") with the key's raw bytes. Which of two values counts is ambiguous, so it is an error.
        var dir = Directory.CreateTempSubdirectory("wg-card-");
        try
        {
            string voice = EditedVoice(dir.FullName, "v",
                c => c.Replace("\"name\": \"tiny\",", "\"name\": \"tiny\", \"\\u001b[2J\": 1,\n  \"\\u001b[2J\": 2,"));
            OneLineError("Duplicate property '\\x1B[2J'", "vocode", Fixture("mel-hifigan-22k-word-22k.npy"), "-o", Path.Combine(dir.FullName, "o.wav"),
                "--voice", voice);
        }
        finally { dir.Delete(true); }
    }

    /// <summary>The tiny voice's weights with the safetensors header rewritten by <paramref name="edit"/>.</summary>
    static string EditedWeights(string root, Func<string, string> edit)
    {
        string dir = TinyVoice(Path.Combine(root, "w"));
        string path = Path.Combine(dir, "model.safetensors");
        var bytes = File.ReadAllBytes(path);
        int n = (int)BitConverter.ToUInt64(bytes);
        string header = System.Text.Encoding.UTF8.GetString(bytes, 8, n);
        var newHeader = System.Text.Encoding.UTF8.GetBytes(edit(header));
        var outBytes = new byte[8 + newHeader.Length + bytes.Length - 8 - n];
        BitConverter.GetBytes((ulong)newHeader.Length).CopyTo(outBytes, 0);
        newHeader.CopyTo(outBytes, 8);
        Array.Copy(bytes, 8 + n, outBytes, 8 + newHeader.Length, bytes.Length - 8 - n);
        File.WriteAllBytes(path, outBytes);
        return dir;
    }

    [Theory]
    [InlineData("negative", "lie outside the")]
    [InlineData("overlap", "overlap")]
    [InlineData("size", "but its shape and dtype make")]
    [InlineData("dtype", "unsupported dtype")]
    public void SafetensorsOffsetsAreCheckedBeforeAnyTensorIsRead(string kind, string expected)
    {
        var dir = Directory.CreateTempSubdirectory("wg-st-");
        try
        {
            string voice = EditedWeights(dir.FullName, h =>
            {
                var j = System.Text.Json.Nodes.JsonNode.Parse(h)!.AsObject();
                var names = j.Select(p => p.Key).Where(k => k != "__metadata__").ToList();
                var t = j[names[0]]!.AsObject();
                var u = j[names[1]]!.AsObject();
                switch (kind)
                {
                    case "negative": t["data_offsets"] = new System.Text.Json.Nodes.JsonArray(-8, t["data_offsets"]![1]!.GetValue<long>() - 8); break;
                    case "overlap": u["data_offsets"] = t["data_offsets"]!.DeepClone(); u["shape"] = t["shape"]!.DeepClone(); break;
                    case "size": t["shape"] = new System.Text.Json.Nodes.JsonArray(1_000_000_000, 1_000_000_000); break;
                    default: t["dtype"] = "F8_E4M3"; break;
                }
                return j.ToJsonString();
            });
            OneLineError(expected, "vocode", Fixture("mel-hifigan-22k-word-22k.npy"), "-o", Path.Combine(dir.FullName, "o.wav"), "--voice", voice);
        }
        finally { dir.Delete(true); }
    }

    [Fact]
    public void TinyAndEndlessInputsAreRefusedBeforeTheyAreRead()
    {
        var dir = Directory.CreateTempSubdirectory("wg-in-");
        try
        {
            // A 1 Hz WAV would resample to hours; a FIFO would block forever; a folder named like a file; an empty path.
            string wav1 = Path.Combine(dir.FullName, "one-hertz.wav");
            var data = new byte[88_000];
            using (var w = new BinaryWriter(File.Create(wav1)))
            {
                w.Write("RIFF"u8); w.Write(36 + data.Length); w.Write("WAVEfmt "u8); w.Write(16); w.Write((short)1); w.Write((short)1);
                w.Write(1); w.Write(2); w.Write((short)2); w.Write((short)16); w.Write("data"u8); w.Write(data.Length); w.Write(data);
            }
            OneLineError("sample rate 1 Hz is outside 1000–1536000 Hz", "mel", wav1, "-o", Path.Combine(dir.FullName, "m.npy"));
            if (!OperatingSystem.IsWindows())
            {
                string fifo = Path.Combine(dir.FullName, "pipe.wav");
                var mk = System.Diagnostics.Process.Start("mkfifo", fifo)!;
                mk.WaitForExit();
                OneLineError("is empty or not a regular file", "mel", fifo, "-o", Path.Combine(dir.FullName, "m.npy"));
            }
            Directory.CreateDirectory(Path.Combine(dir.FullName, "x.npy"));
            OneLineError("x.npy: is a folder, not a .npy file", "vocode", Path.Combine(dir.FullName, "x.npy"), "-o", Path.Combine(dir.FullName, "o.wav"));
            OneLineError("the Output path is empty".Replace("Output", "--output"), "vocode", Fixture("mel-hifigan-22k-word-22k.npy"), "-o", "");
            // A one-hour limit by default, found in the header: a 2-hour header is refused before its data is read.
            string longWav = Path.Combine(dir.FullName, "long.wav");
            using (var w = new BinaryWriter(File.Create(longWav)))
            {
                int bytes = 2 * 3600 * 8000 * 2;
                w.Write("RIFF"u8); w.Write(36 + bytes); w.Write("WAVEfmt "u8); w.Write(16); w.Write((short)1); w.Write((short)1);
                w.Write(8000); w.Write(16000); w.Write((short)2); w.Write((short)16); w.Write("data"u8); w.Write(bytes);
                w.BaseStream.SetLength(44 + bytes);
            }
            OneLineError("7200 s of audio is longer than the limit of 3600 s (--max-seconds)", "mel", longWav, "-o", Path.Combine(dir.FullName, "m.npy"));
        }
        finally { dir.Delete(true); }
    }

    [Fact]
    public void ControlCharactersInAFileNeverReachTheTerminal()
    {
        var dir = Directory.CreateTempSubdirectory("wg-esc-");
        try
        {
            string npy = Path.Combine(dir.FullName, "evil.npy");
            string header = "{'descr': '<f4', \u001b[2J\u0007\r evil }";
            header += new string(' ', 63 - (header.Length + 10) % 64) + "\n";
            File.WriteAllBytes(npy, [0x93, .. "NUMPY"u8, 1, 0, (byte)header.Length, 0, .. System.Text.Encoding.Latin1.GetBytes(header), 0, 0, 0, 0]);
            var r = CliRunner.Run("vocode", npy, "-o", Path.Combine(dir.FullName, "o.wav"));
            Assert.Equal(2, r.ExitCode);
            Assert.Contains("\\x1B[2J\\x07\\x0D evil", r.Stderr);
            Assert.DoesNotContain(r.Stderr, c => c < 0x20 && c != '\n');
        }
        finally { dir.Delete(true); }
    }

    [Fact]
    public void AMelOfAbsurdValuesIsBlamedOnTheMelNotTheOutput()
    {
        var dir = Directory.CreateTempSubdirectory("wg-mel-");
        try
        {
            string npy = Path.Combine(dir.FullName, "loud.npy");
            MelFile.Save(npy, full(80, 40, 1e30f));
            OneLineError("loud.npy: mel value 1E+30 is above 30", "vocode", npy, "-o", Path.Combine(dir.FullName, "o.wav"));
            OneLineError("mel value 1E+30 is above 30", "griffinlim", npy, "-o", Path.Combine(dir.FullName, "o.wav"));
        }
        finally { dir.Delete(true); }
    }

    [Fact]
    public void AFloatWavOfAbsurdSamplesIsRefusedWhereItIsRead()
    {
        // Issue 28: samples of 1e30 are finite, but their STFT overflowed and `mel` wrote an all-NaN mel with exit code 0.
        var dir = Directory.CreateTempSubdirectory("wg-loud-");
        try
        {
            string wav = Path.Combine(dir.FullName, "loud.wav");
            var data = new byte[22050 * 4];
            for (int i = 0; i < 22050; i++) BitConverter.TryWriteBytes(data.AsSpan(i * 4), 1e30f);
            using (var w = new BinaryWriter(File.Create(wav)))
            {
                w.Write("RIFF"u8); w.Write(36 + data.Length); w.Write("WAVEfmt "u8); w.Write(16); w.Write((short)3); w.Write((short)1);
                w.Write(22050); w.Write(22050 * 4); w.Write((short)4); w.Write((short)32); w.Write("data"u8); w.Write(data.Length); w.Write(data);
            }
            OneLineError($"{wav}: sample 0 (channel 0, at 0.000 s) is 1E+30, beyond ±10000", "mel", wav, "-o", Path.Combine(dir.FullName, "m.npy"));
            Assert.False(File.Exists(Path.Combine(dir.FullName, "m.npy")));
        }
        finally { dir.Delete(true); }
    }

    static string[] Train(string data, string run, long steps, params string[] more) =>
        ["train", "vocoder", "--data", data, "-o", run, "--steps", $"{steps}", "--batch", "2", "--validate-every", "0", "--log-every", "1",
            "--device", "cpu", .. more];

    [Fact]
    public void SigtermStopsTrainingWithACheckpoint()
    {
        // kill, systemd and docker stop send SIGTERM, and a job started with nohup … & ignores SIGINT: either must end the step
        // and write the checkpoint, as Ctrl+C does, not lose the run since the last one.
        if (OperatingSystem.IsWindows()) return;
        var dir = Directory.CreateTempSubdirectory("wg-term-");
        try
        {
            string data = Path.Combine(dir.FullName, "data"), run = Path.Combine(dir.FullName, "run");
            Directory.CreateDirectory(data);
            File.Copy(Fixture("clip-word-22k.wav"), Path.Combine(data, "a.wav"));
            using var trainer = CliRunner.Start(Train(data, run, 1_000_000, "--architecture", "stft", "--size", "tiny", "--checkpoint-every", "1000000"));
            try
            {
                string pidFile = Path.Combine(run, RunLock.PidFileName);
                var clock = System.Diagnostics.Stopwatch.StartNew();
                while (!File.Exists(pidFile) && !trainer.HasExited && clock.Elapsed.TotalSeconds < 120) Thread.Sleep(100);
                Thread.Sleep(3000);   // some steps
                Assert.False(trainer.HasExited, "the trainer stopped by itself");
                System.Diagnostics.Process.Start("kill", ["-TERM", $"{trainer.Id}"])!.WaitForExit();
                Assert.True(trainer.WaitForExit(60_000), "SIGTERM did not stop the trainer within 60 s");
                Assert.Equal(130, trainer.ExitCode);
            }
            finally
            {
                if (!trainer.HasExited) trainer.Kill();
            }
            var state = JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "checkpoint", "state.json")));
            Assert.True(state.RootElement.GetProperty("step").GetInt64() >= 1);
        }
        finally { dir.Delete(true); }
    }

    [Fact]
    public void ARunFolderTakesOneTrainerAPipeInItsCheckpointFailsFastAndWarningsGoToStderr()
    {
        var dir = Directory.CreateTempSubdirectory("wg-run-");
        try
        {
            string data = Path.Combine(dir.FullName, "data"), run = Path.Combine(dir.FullName, "run");
            Directory.CreateDirectory(data);
            File.Copy(Fixture("clip-word-22k.wav"), Path.Combine(data, "a.wav"));
            File.Copy(Fixture("clip-chirp-22k.wav"), Path.Combine(data, "b.wav"));
            File.WriteAllBytes(Path.Combine(data, "broken.wav"), "RIFF....WAVEnot really"u8.ToArray());
            var first = CliRunner.Run(Train(data, run, 2));
            Assert.True(first.ExitCode == 0, first.Stderr);
            // The skipped file's warning is a diagnostic: stderr, not the progress on stdout.
            Assert.Contains("broken.wav", first.Stderr);
            Assert.DoesNotContain("broken.wav", first.Stdout);
            File.Delete(Path.Combine(data, "broken.wav"));   // the errors below are then the only stderr lines

            // A second trainer on a folder that a live one holds is refused; once that one is killed (SIGKILL: no
            // cleanup runs), the kernel has dropped its lock and the next resume proceeds.
            var holder = CliRunner.Start(Train(data, run, 1_000_000, "--resume", "--checkpoint-every", "1000000"));
            try
            {
                string pidFile = Path.Combine(run, RunLock.PidFileName);
                var clock = System.Diagnostics.Stopwatch.StartNew();
                while (!(File.Exists(pidFile) && File.ReadAllText(pidFile).Trim() == $"{holder.Id}") && !holder.HasExited && clock.Elapsed.TotalSeconds < 120)
                    Thread.Sleep(100);
                Assert.False(holder.HasExited, "the first trainer stopped");
                var second = CliRunner.Run(Train(data, run, 3, "--resume"));
                Assert.Equal(2, second.ExitCode);
                Assert.Single(second.Stderr.Trim().Split('\n'));
                Assert.Contains($"{run}: the run folder is in use by process {holder.Id}", second.Stderr);
            }
            finally
            {
                holder.Kill();   // SIGKILL, also when an assertion above failed (a million steps would outlive the test)
                holder.WaitForExit();
                holder.Dispose();
            }
            var resumed = CliRunner.Run(Train(data, run, 3, "--resume"));
            Assert.True(resumed.ExitCode == 0, resumed.Stderr);
            Assert.Contains("resumed at step 2", resumed.Stdout);

            // A pipe in place of a checkpoint file: one line within seconds, not a hang.
            if (!OperatingSystem.IsWindows())
            {
                string ema = Path.Combine(run, "checkpoint", "ema.safetensors");
                File.Delete(ema);
                System.Diagnostics.Process.Start("mkfifo", ema)!.WaitForExit();
                var clock = System.Diagnostics.Stopwatch.StartNew();
                OneLineError($"{ema}: is empty or not a regular file", Train(data, run, 4, "--resume"));
                Assert.True(clock.Elapsed.TotalSeconds < 60, $"{clock.Elapsed.TotalSeconds:F0} s");
            }
        }
        finally { dir.Delete(true); }
    }

    [Fact]
    public void AKilledRendersTemporaryGoesWithTheNextWriteOfAnyFileIntoItsFolder()
    {
        var dir = Directory.CreateTempSubdirectory("wg-kill-");
        try
        {
            string voice = TinyVoice(Path.Combine(dir.FullName, "tiny")), outDir = Path.Combine(dir.FullName, "out");
            Directory.CreateDirectory(outDir);
            string mel = LongMel(Path.Combine(dir.FullName, "long.npy"), 20_000);
            using (var render = CliRunner.Start("vocode", mel, "-o", Path.Combine(outDir, "long.wav"), "--voice", voice, "--steps", "50",
                "--post-filter", "0", "--device", "cpu"))
            {
                var clock = System.Diagnostics.Stopwatch.StartNew();
                while (Directory.GetFiles(outDir, ".long.wav.*.tmp").Length == 0 && !render.HasExited && clock.Elapsed.TotalSeconds < 120) Thread.Sleep(50);
                bool ended = render.HasExited;
                render.Kill();   // SIGKILL
                render.WaitForExit();
                Assert.False(ended, "the render ended before it could be killed");
            }
            Assert.Single(Directory.GetFiles(outDir, ".long.wav.*.tmp"));   // what SIGKILL leaves
            var r = CliRunner.Run("mel", Fixture("clip-word-22k.wav"), "-o", Path.Combine(outDir, "other.npy"));
            Assert.True(r.ExitCode == 0, r.Stderr);
            Assert.Equal(["other.npy"], Directory.GetFileSystemEntries(outDir).Select(Path.GetFileName));
        }
        finally { dir.Delete(true); }
    }

    [Fact]
    public void AWriteIntoAFolderThatRefusesItNamesTheOutputNotTheTemporary()
    {
        // /sys refuses new files even to root, whom a read-only folder (chmod) does not stop.
        if (!OperatingSystem.IsLinux()) return;
        string path = $"/sys/wg-{Guid.NewGuid():N}.npy";
        var r = CliRunner.Run("mel", Fixture("clip-word-22k.wav"), "-o", path);
        Assert.Equal(2, r.ExitCode);
        Assert.StartsWith($"error: {path}: cannot write: ", r.Stderr);
        Assert.DoesNotContain(".tmp", r.Stderr);
    }
}
