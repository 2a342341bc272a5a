using System.Diagnostics;
using System.Text;
using System.Text.Json;
using WaveGradSharp.Audio;
using WaveGradSharp.Core;
using WaveGradSharp.Imaging;
using WaveGradSharp.Vocoder;

namespace WaveGradSharp.Fuzz;

/// <summary>What one input did: parsed, refused with a <see cref="WaveGradException"/>, or anything else (a finding).</summary>
public enum Outcome { Accepted, Rejected, Crashed, Hung }

/// <summary>Counts of one target's run.</summary>
public sealed record TargetReport(string Target, int Inputs, int Accepted, int Rejected, int Crashed, int Hung, double MaxMs, long MaxAllocatedMb,
    IReadOnlyList<string> Findings);

/// <summary>
/// An in-process mutation fuzzer: each input is a seed file (a committed fixture or a tiny bundle made at start) mutated
/// by a few random edits (bit flips, interesting bytes and integers, deletions, duplications, truncation, splices; for
/// JSON also numbers, types and keys swapped), handed to one parser, and classed. A parser may accept an input or refuse
/// it with a <see cref="WaveGradException"/>; any other exception, an input that runs past the time limit, or one that
/// allocates more than the memory limit is a finding, written to the findings folder with the seed that made it.
/// </summary>
public sealed class Fuzzer(string workDir, int seed, TimeSpan timeLimit, long memoryLimitMb = 1024)
{
    readonly Random rng = new(seed);
    readonly string scratch = Directory.CreateDirectory(Path.Combine(workDir, "scratch")).FullName;

    /// <summary>The parsers, by name.</summary>
    public static readonly string[] Targets = ["wav", "npy", "safetensors", "voice", "image", "pytorch"];

    /// <summary>Runs <paramref name="iterations"/> inputs against one target; findings go to <paramref name="findings"/> (if given).</summary>
    public TargetReport Run(string target, int iterations, string? findings = null, Action<string>? progress = null)
    {
        var seeds = Seeds(target);
        int accepted = 0, rejected = 0, crashed = 0, hung = 0;
        double maxMs = 0;
        long maxMb = 0;
        var found = new List<string>();
        for (int i = 0; i < iterations; i++)
        {
            var (name, bytes) = seeds[rng.Next(seeds.Count)];
            var input = target is "voice" or "image" && rng.Next(3) > 0 ? MutateJsonBundle(bytes) : Mutate(bytes);
            var (outcome, ms, mb, what) = Execute(target, input);
            maxMs = Math.Max(maxMs, ms);
            maxMb = Math.Max(maxMb, mb);
            switch (outcome)
            {
                case Outcome.Accepted: accepted++; break;
                case Outcome.Rejected: rejected++; break;
                case Outcome.Crashed: crashed++; break;
                default: hung++; break;
            }
            if (outcome is Outcome.Crashed or Outcome.Hung || mb > memoryLimitMb)
            {
                string note = $"{target} input {i} (from {name}): {outcome}, {ms:F0} ms, {mb} MB allocated: {Text.Escape(what, 300)}";
                found.Add(note);
                if (findings is not null)
                {
                    Directory.CreateDirectory(findings);
                    File.WriteAllBytes(Path.Combine(findings, $"{target}-{seed}-{i}.bin"), input);
                    File.AppendAllText(Path.Combine(findings, "findings.txt"), note + "\n");
                }
                if (outcome == Outcome.Hung) break;   // the hung thread cannot be stopped; report and end this target
            }
            if (progress is not null && (i + 1) % 10_000 == 0) progress($"{target}: {i + 1} inputs, {crashed + hung} findings");
        }
        return new TargetReport(target, accepted + rejected + crashed + hung, accepted, rejected, crashed, hung, maxMs, maxMb, found);
    }

    (Outcome, double Ms, long Mb, string What) Execute(string target, byte[] input)
    {
        Outcome outcome = Outcome.Accepted;
        string what = "";
        long before = GC.GetTotalAllocatedBytes(precise: false), rss = Environment.WorkingSet;
        var sw = Stopwatch.StartNew();
        var t = new Thread(() =>
        {
            try { Parse(target, input); }
            catch (WaveGradException e) { outcome = Outcome.Rejected; what = e.Message; }
            catch (Exception e) { outcome = Outcome.Crashed; what = $"{e.GetType().Name}: {e.Message}"; }
        }, 64 << 20) { IsBackground = true };
        t.Start();
        if (!t.Join(timeLimit)) return (Outcome.Hung, sw.Elapsed.TotalMilliseconds, 0, $"still running after {timeLimit.TotalSeconds} s");
        // Managed allocations, or the growth of the working set for what libtorch allocates natively.
        long mb = Math.Max(GC.GetTotalAllocatedBytes(precise: false) - before, Environment.WorkingSet - rss) >> 20;
        return (outcome, sw.Elapsed.TotalMilliseconds, mb, what);
    }

    void Parse(string target, byte[] input)
    {
        using var scope = TorchSharp.torch.NewDisposeScope();
        switch (target)
        {
            case "wav": Wav.Read(Write("in.wav", input), 22050, maxSeconds: 600); break;
            case "npy": Npy.Read(new MemoryStream(input), "in.npy"); break;
            case "safetensors": TensorFiles.Load(Write("in.safetensors", input)); break;
            case "pytorch": PyTorchImport.ReadStateDict(Write("in.pt", input)); break;
            case "voice":
            {
                string dir = Bundle("voice", "voice.json", input);
                using var v = Vocoder.Vocoder.Load(dir);
                break;
            }
            default:
            {
                var m = ImageModel.Load(Bundle("image", "model.json", input));
                if (m.Kind == "classifier") m.CreateClassifier().Dispose(); else m.CreateUNet().Dispose();
                break;
            }
        }
    }

    string Write(string name, byte[] bytes)
    {
        string p = Path.Combine(scratch, name);
        File.WriteAllBytes(p, bytes);
        return p;
    }

    /// <summary>A bundle folder from a packed input: manifest length (4 bytes), manifest, weights.</summary>
    string Bundle(string kind, string manifest, byte[] packed)
    {
        string dir = Path.Combine(scratch, kind);
        Directory.CreateDirectory(dir);
        int at = Math.Min(4, packed.Length), n = packed.Length >= 4 ? Math.Clamp(BitConverter.ToInt32(packed, 0), 0, packed.Length - 4) : 0;
        File.WriteAllBytes(Path.Combine(dir, manifest), packed.AsSpan(at, n).ToArray());
        File.WriteAllBytes(Path.Combine(dir, "model.safetensors"), packed.AsSpan(at + n).ToArray());
        return dir;
    }

    static byte[] Pack(string manifestPath, string weightsPath)
    {
        var m = File.ReadAllBytes(manifestPath);
        return [.. BitConverter.GetBytes(m.Length), .. m, .. File.ReadAllBytes(weightsPath)];
    }

    List<(string Name, byte[] Bytes)> Seeds(string target)
    {
        string fx = Path.Combine(AppContext.BaseDirectory, "fixtures");
        IEnumerable<string> files = target switch
        {
            "wav" => Directory.GetFiles(Path.Combine(fx, "audio"), "*.wav"),
            "npy" => Directory.GetFiles(Path.Combine(fx, "audio"), "*.npy"),
            "pytorch" => [Path.Combine(fx, "vocoder", "tiny-lmnt-128.pt"), Path.Combine(fx, "vocoder", "tiny-lmnt-io.pt")],
            _ => [],
        };
        var seeds = files.Select(f => (Path.GetFileName(f), File.ReadAllBytes(f))).ToList();
        if (target == "wav") seeds.AddRange(HostileWavs());
        if (target == "npy") seeds.AddRange(HostileNpys());
        if (target is "safetensors" or "voice")
        {
            string voice = TinyVoice(Path.Combine(scratch, "seed-voice"));
            seeds.Add(target == "voice" ? ("tiny voice", Pack(Path.Combine(voice, "voice.json"), Path.Combine(voice, "model.safetensors")))
                : ("tiny voice weights", File.ReadAllBytes(Path.Combine(voice, "model.safetensors"))));
        }
        if (target == "image")
            seeds.Add(("mnist-judge", Pack(Path.Combine(fx, "mnist-judge", "model.json"), Path.Combine(fx, "mnist-judge", "model.safetensors"))));
        return seeds;
    }

    /// <summary>Crafted WAVs near the edges issue 28 found (a mutation seldom builds them from a clean file): float32 and float64
    /// samples of 1e30 (finite, but their STFT overflowed into a NaN mel), samples just inside the limit, and two fmt chunks.</summary>
    static IEnumerable<(string, byte[])> HostileWavs()
    {
        static byte[] Chunk(string id, byte[] body) => [.. Encoding.ASCII.GetBytes(id), .. BitConverter.GetBytes(body.Length), .. body];
        static byte[] Fmt(int tag, int channels, int rate, int bits) =>
        [
            .. BitConverter.GetBytes((ushort)tag), .. BitConverter.GetBytes((ushort)channels), .. BitConverter.GetBytes(rate),
            .. BitConverter.GetBytes(rate * channels * bits / 8), .. BitConverter.GetBytes((ushort)(channels * bits / 8)),
            .. BitConverter.GetBytes((ushort)bits),
        ];
        static byte[] Riff(params byte[][] chunks)
        {
            byte[] body = [.. "WAVE"u8, .. chunks.SelectMany(c => c)];
            return [.. "RIFF"u8, .. BitConverter.GetBytes(body.Length), .. body];
        }
        static byte[] Samples(int n, Func<int, double> f, bool f64) =>
            [.. Enumerable.Range(0, n).SelectMany(i => f64 ? BitConverter.GetBytes(f(i)) : BitConverter.GetBytes((float)f(i)))];
        double Sine(int i) => 0.5 * Math.Sin(i * 0.05);
        yield return ("float32 of 1e30", Riff(Chunk("fmt ", Fmt(3, 1, 22050, 32)), Chunk("data", Samples(2048, i => i % 7 == 3 ? 1e30 : Sine(i), false))));
        yield return ("float64 of 1e300", Riff(Chunk("fmt ", Fmt(3, 2, 22050, 64)), Chunk("data", Samples(2048, i => i == 900 ? 1e300 : Sine(i), true))));
        yield return ("float32 at the limit", Riff(Chunk("fmt ", Fmt(3, 1, 22050, 32)),
            Chunk("data", Samples(2048, i => i % 5 == 0 ? Audio.Wav.MaxFloatSample : Sine(i), false))));
        yield return ("two fmt chunks", Riff(Chunk("fmt ", Fmt(1, 1, 22050, 16)), Chunk("fmt ", Fmt(3, 2, 8000, 32)),
            Chunk("data", [.. Enumerable.Range(0, 2048).SelectMany(i => BitConverter.GetBytes((short)(Sine(i) * 32767)))])));
    }

    /// <summary>Crafted .npy headers that name a key twice (numpy takes the last, a first-match reader the first).</summary>
    static IEnumerable<(string, byte[])> HostileNpys()
    {
        static byte[] Npy(string dict, int values)
        {
            string header = dict + new string(' ', 63 - (dict.Length + 10) % 64) + "\n";
            return [.. Core.Npy.Magic, 1, 0, .. BitConverter.GetBytes((ushort)header.Length), .. Encoding.Latin1.GetBytes(header),
                .. Enumerable.Range(0, values).SelectMany(i => BitConverter.GetBytes((float)i))];
        }
        yield return ("shape twice", Npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), 'shape': (6,), }", 6));
        yield return ("descr twice", Npy("{'descr': '<f4', 'fortran_order': False, 'descr': '<f2', 'shape': (2, 3), }", 6));
    }

    /// <summary>A random-weight voice with HiFi-GAN's framing, small enough to load thousands of times a minute
    /// (<paramref name="width"/> multiplies its channels; the CLI's tests use 2).</summary>
    public static string TinyVoice(string dir, int width = 1)
    {
        int[] W(params int[] c) => [.. c.Select(x => x * width)];
        var cfg = new WaveGradConfig
        {
            NMels = 80, UpFactors = WaveGradConfig.FactorsForHop(256), FirstChannels = 8 * width,
            UpChannels = W(8, 8, 4, 4, 4), DownChannels = W(2, 4, 4, 4, 8),
        };
        using var net = new WaveGradNet(cfg);
        Voice.Save(dir, "tiny", MelConfig.Preset("hifigan-22k"), "wavegrad", JsonSerializer.SerializeToNode(cfg, WaveGradConfig.JsonOptions)!,
            TensorFiles.StateOf(net), half: false);
        return dir;
    }

    static readonly byte[] InterestingBytes = [0x00, 0x01, 0x7F, 0x80, 0xFF, 0x1B, 0x07, 0x0D, 0x0A, (byte)'"', (byte)'{', (byte)'['];
    static readonly long[] InterestingInts = [0, 1, -1, 2, 255, 256, 65535, 65536, int.MaxValue, int.MinValue, uint.MaxValue, long.MaxValue, 1L << 40];

    /// <summary>One to four random byte-level edits.</summary>
    public byte[] Mutate(byte[] seed)
    {
        var b = new List<byte>(seed);
        int edits = 1 + rng.Next(4);
        for (int e = 0; e < edits && b.Count > 0; e++)
        {
            int at = rng.Next(b.Count);
            switch (rng.Next(8))
            {
                case 0: b[at] ^= (byte)(1 << rng.Next(8)); break;
                case 1: b[at] = InterestingBytes[rng.Next(InterestingBytes.Length)]; break;
                case 2:
                {
                    var v = BitConverter.GetBytes(InterestingInts[rng.Next(InterestingInts.Length)]);
                    int w = rng.Next(2) == 0 ? 4 : 8;
                    for (int k = 0; k < w && at + k < b.Count; k++) b[at + k] = v[k];
                    break;
                }
                case 3: b.RemoveRange(at, Math.Min(b.Count - at, 1 + rng.Next(64))); break;
                case 4: b.InsertRange(at, b.GetRange(at, Math.Min(b.Count - at, 1 + rng.Next(64)))); break;
                case 5: b.RemoveRange(at, b.Count - at); break;                                 // truncate
                case 6: b.InsertRange(at, Enumerable.Repeat((byte)rng.Next(256), 1 + rng.Next(16))); break;
                default:
                {
                    int from = rng.Next(b.Count), len = Math.Min(Math.Min(b.Count - from, b.Count - at), 1 + rng.Next(32));
                    var chunk = b.GetRange(from, len);
                    for (int k = 0; k < len; k++) b[at + k] = chunk[k];
                    break;
                }
            }
        }
        return [.. b];
    }

    static readonly string[] JsonValues =
        ["0", "-1", "1e300", "-1e300", "1000000", "1000000000", "2147483648", "null", "true", "\"x\"", "\"\\u001b[2J\"", "[]", "{}", "[1e9, 1e9]",
            "0.5", "NaN"];

    /// <summary>A packed bundle whose manifest gets one to three JSON-aware edits: a number, string or value replaced, a key dropped.</summary>
    byte[] MutateJsonBundle(byte[] packed)
    {
        int n = BitConverter.ToInt32(packed, 0);
        string json = Encoding.UTF8.GetString(packed, 4, n);
        var tokens = System.Text.RegularExpressions.Regex.Matches(json, "-?\\d+(\\.\\d+)?(e[-+]?\\d+)?|\"[^\"]*\"");
        int edits = 1 + rng.Next(3);
        for (int e = 0; e < edits && tokens.Count > 0; e++)
        {
            var t = tokens[rng.Next(tokens.Count)];
            if (t.Index + t.Length > json.Length) break;
            string replacement = rng.Next(4) == 0 ? "" : JsonValues[rng.Next(JsonValues.Length)];
            json = json[..t.Index] + replacement + json[(t.Index + t.Length)..];
            tokens = System.Text.RegularExpressions.Regex.Matches(json, "-?\\d+(\\.\\d+)?(e[-+]?\\d+)?|\"[^\"]*\"");
        }
        var m = Encoding.UTF8.GetBytes(json);
        var rest = packed.AsSpan(4 + n).ToArray();
        if (rng.Next(4) == 0) rest = Mutate(rest);
        return [.. BitConverter.GetBytes(m.Length), .. m, .. rest];
    }
}
