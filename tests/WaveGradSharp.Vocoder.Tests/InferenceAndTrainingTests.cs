using System.Text.Json.Nodes;
using TorchSharp;
using WaveGradSharp.Audio;
using WaveGradSharp.Diffusion;
using WaveGradSharp.Vocoder;
using static TorchSharp.torch;
using WaveGradSharp.Core;

namespace WaveGradSharp.Vocoder.Tests;

/// <summary>Tiny random-weight voices and synthetic clips, so these tests need no trained model.</summary>
static class Tiny
{
    public static WaveGradConfig Config(int nMels = 80, int hop = 256) => new()
    {
        NMels = nMels, UpFactors = WaveGradConfig.FactorsForHop(hop), FirstChannels = 32,
        UpChannels = [32, 32, 16, 8, 8], DownChannels = [4, 8, 8, 16, 32],
    };

    /// <summary>A chirp with harmonics, 0.5 amplitude.</summary>
    public static float[] Chirp(double seconds, int rate = 22050, double f0 = 150, double f1 = 400)
    {
        int n = (int)(seconds * rate);
        var x = new float[n];
        double phase = 0;
        for (int i = 0; i < n; i++)
        {
            double f = f0 + (f1 - f0) * i / n;
            phase += 2 * Math.PI * f / rate;
            x[i] = (float)(0.3 * Math.Sin(phase) + 0.15 * Math.Sin(2 * phase) + 0.05 * Math.Sin(3 * phase));
        }
        return x;
    }

    public static string SaveVoice(string dir, int seed = 3)
    {
        random.manual_seed(seed);
        using var net = new WaveGradNet(Config());
        Voice.Save(dir, "tiny", MelConfig.Preset("hifigan-22k"), "wavegrad", System.Text.Json.JsonSerializer.SerializeToNode(net.Config,
            WaveGradConfig.JsonOptions)!,
            TensorFiles.StateOf(net), half: false);
        return dir;
    }

    /// <summary>A vocoder over a given network (the model owns and disposes it).</summary>
    public static Vocoder Vocoder(Voice voice, WaveGradNet net) => new(voice, new DiffusionVocoderModel(net, voice.Mel, voice.Prior,
        voice.DefaultSampler, CPU));

    public static Tensor Mel(float[] audio)
    {
        using var spec = new MelSpectrogram(MelConfig.Preset("hifigan-22k"));
        return spec.Compute(tensor(audio));
    }
}

public sealed class TempDir : IDisposable
{
    public string Path { get; } = Directory.CreateTempSubdirectory("wg-test-").FullName;
    public string this[string name] => System.IO.Path.Combine(Path, name);
    public void Dispose() { try { Directory.Delete(Path, true); } catch (IOException) { } }
}

public class InferenceTests
{
    [Theory]
    [InlineData("AuthenticAMD", "fpu avx512f avx512_bf16 avx512_vnni", true)]    // MKL's generic float32 path on AMD
    [InlineData("GenuineIntel", "fpu avx512f avx512_bf16 amx_bf16 amx_tile", true)]
    [InlineData("GenuineIntel", "fpu avx2 avx512f", false)]                      // bf16 emulated
    [InlineData("AuthenticAMD", "fpu avx2", false)]
    [InlineData("GenuineIntel", "fpu avx512f avx512_bf16", null)]                 // Cooper Lake: only a timing can tell
    public void CpuInfoDecidesBf16WhereItCan(string vendor, string flags, bool? wins)
    {
        string[] cpuinfo = ["processor\t: 0", $"vendor_id\t: {vendor}", "model name\t: x", $"flags\t\t: {flags}", "", "processor\t: 1"];
        Assert.Equal(wins, Devices.Bf16WinsByCpuInfo(cpuinfo));
        Assert.Null(Devices.Bf16WinsByCpuInfo(["processor\t: 0"]));   // no flags: timed
    }

    [Fact]
    public void EvaluationSettingsAreChosenByNameInTheGivenOrder()
    {
        var shipped = new SynthesisOptions { PostFilterPasses = 8 };
        var rows = EvaluationSetting.Select(shipped, "raw, griffin-lim");
        Assert.Equal(["raw", "griffin-lim"], rows.Select(r => r.Name));
        Assert.Equal(0, rows[0].Options!.PostFilterPasses);
        Assert.Equal(ConsistencyMode.None, rows[0].Options!.Consistency.Mode);
        Assert.Null(rows[1].Options);
        Assert.Equal(4, EvaluationSetting.Select(shipped, "griffin-lim,shipped,plain,raw").Count);
        // The bounds (from the clip itself) and Griffin-Lim from the phase gradients render without the network.
        var baselines = EvaluationSetting.Select(shipped, "true-magnitude,true-phase,voiced-phase,mel-voiced-phase,pghi");
        Assert.All(baselines, b => Assert.True(b.Options is null && b.Baseline is not null, b.Name));
        foreach (var bad in new[] { "raw,bogus", "raw,raw", " , " })
            Assert.Contains("--settings", Assert.Throws<WaveGradException>(() => EvaluationSetting.Select(shipped, bad)).Message);
    }

    [Fact]
    public void VoiceSaveLoadRoundTripIsBitExact()
    {
        using var tmp = new TempDir();
        Tiny.SaveVoice(tmp["v"]);
        var voice = Voice.Load(tmp["v"]);
        using var net = WaveGradNet.Load(voice);
        var saved = TensorFiles.Load(voice.WeightsPath);
        foreach (var (k, t) in net.state_dict())
            Assert.True(t.eq(saved[k]).all().item<bool>(), k);
        Assert.Equal(22050, voice.SampleRate);
        Assert.Equal("hifigan-22k", voice.Mel.Name);
        Assert.Equal("wg-6", voice.DefaultSchedule.Name);
    }

    [Fact]
    public void SafetensorsOfEveryTypeReadBackAsWritten()
    {
        using var tmp = new TempDir();
        random.manual_seed(5);
        var written = new Dictionary<string, Tensor>
        {
            ["f64"] = randn(2, 3, dtype: ScalarType.Float64), ["f32"] = randn(3, 1, 4), ["f16"] = randn(5).to_type(ScalarType.Float16),
            ["bf16"] = randn(2, 2).to_type(ScalarType.BFloat16), ["i64"] = tensor(new long[] { long.MinValue, -1, 0, long.MaxValue }),
            ["i32"] = tensor(new[] { int.MinValue, 7 }), ["i16"] = tensor(new short[] { -3, 300 }), ["i8"] = tensor(new sbyte[] { -128, 127 }),
            ["u8"] = tensor(new byte[] { 0, 255, 9 }), ["bool"] = tensor(new[] { true, false, true }), ["scalar"] = tensor(2.5f),
            ["empty"] = zeros(0, 3),
        };
        string path = tmp["all.safetensors"];
        TensorFiles.Save(path, written);
        var read = TensorFiles.Load(path);
        Assert.Equal(written.Keys.Order(), read.Keys.Order());
        foreach (var (name, t) in written)
        {
            Assert.Equal(t.dtype, read[name].dtype);
            Assert.Equal(t.shape, read[name].shape);
            Assert.True(t.eq(read[name]).all().item<bool>(), name);
        }
    }

    [Fact]
    public void WritingAVoiceNeverReplacesAnUnrelatedFolder()
    {
        using var tmp = new TempDir();
        Directory.CreateDirectory(tmp["precious"]);
        File.WriteAllText(Path.Combine(tmp["precious"], "notes.txt"), "keep me");
        var e = Assert.Throws<WaveGradException>(() => Tiny.SaveVoice(tmp["precious"]));
        Assert.Contains("is not a folder this command wrote", e.Message);
        Assert.True(File.Exists(Path.Combine(tmp["precious"], "notes.txt")));
        Tiny.SaveVoice(tmp["v"]);
        Tiny.SaveVoice(tmp["v"]);                                   // a voice folder may be rewritten
        var voice = Voice.Load(tmp["v"]);
        Assert.Contains("outside", Assert.Throws<WaveGradException>(() => voice.Export(tmp["v"])).Message);
        Assert.Contains("outside", Assert.Throws<WaveGradException>(() => voice.Export(tmp.Path)).Message);
        voice.Export(tmp["exported"]);
        Assert.True(new FileInfo(Path.Combine(tmp["exported"], "model.safetensors")).Length < new FileInfo(voice.WeightsPath).Length);   // fp16
        File.WriteAllText(Path.Combine(tmp["v"], "voice.json"), File.ReadAllText(Path.Combine(tmp["v"], "voice.json")).Replace("\"paper\"", "\"sideways\""));
        var m = Assert.Throws<WaveGradException>(() => Voice.Load(tmp["v"]));
        Assert.Contains("voice.json: malformed", m.Message);
    }

    [Fact]
    public void ACardsDefaultRenderSetsTheRenderAFlagOrContextLeavesAndBadFieldsAreNamed()
    {
        using var tmp = new TempDir();
        var card = Path.Combine(Tiny.SaveVoice(tmp["v"]), "voice.json");
        var json = File.ReadAllText(card);
        // Without default_render: the context's settings, the voice's sampler.
        var plain = Voice.Load(tmp["v"]);
        Assert.Equal(new SynthesisOptions() with { Sampler = plain.DefaultSampler }, plain.RenderDefaults());
        Assert.Equal(SynthesisOptions.LowLatency with { Sampler = plain.DefaultSampler }, plain.RenderDefaults(SynthesisOptions.LowLatency));
        void Write(string render) => File.WriteAllText(card, json.Replace("\"name\": \"tiny\",", $"\"name\": \"tiny\", \"default_render\": {render},"));
        Write("""
            {"start":"griffin-lim","start_iterations":32,"start_noise":0.8,"start_phase":"random","consistency":"project:2:8","post_filter":3,
             "post_filter_momentum":0.5}
            """);
        var v = Voice.Load(tmp["v"]);
        foreach (var context in new[] { new SynthesisOptions { Seed = 9 }, SynthesisOptions.LowLatency with { Seed = 9 } })
        {
            var o = v.RenderDefaults(context);
            Assert.Equal((SamplerStart.GriffinLim, 32, 0.8, 3, 9L), (o.Start, o.StartIterations, o.StartNoise, o.PostFilterPasses, o.Seed));
            Assert.Equal(PhaseStart.Random, o.StartPhase);
            Assert.Equal(0.5, o.PostFilterMomentum);
            Assert.Equal(new ConsistencySteps { Mode = ConsistencyMode.Project, Levels = 2, Iterations = 8 }, o.Consistency);
        }
        Write("""{"post_filter": 0}""");   // only what it names
        var one = Voice.Load(tmp["v"]);
        Assert.Equal(SynthesisOptions.LowLatency with { Sampler = one.DefaultSampler, PostFilterPasses = 0 }, one.RenderDefaults(SynthesisOptions.LowLatency));
        foreach (var (render, says) in new[]
        {
            ("""{"post_filter": -1}""", "default_render.post_filter must be a whole number from 0 to 64"),
            ("""{"start": "sideways"}""", "default_render.start 'sideways' must be noise or griffin-lim"),
            ("""{"start_noise": 0}""", "default_render.start_noise must be a number in (0, 1]"),
            ("""{"start_noise": "high"}""", "default_render.start_noise must be a number in (0, 1]"),
            ("""{"post_filter_momentum": 1}""", "default_render.post_filter_momentum must be a number in [0, 1)"),
            ("""{"start_phase": "zero"}""", "default_render.start_phase 'zero' must be gradient or random"),
            ("""{"consistency": "project:0"}""", "default_render.consistency 'project:0': '0' is not a whole number"),
            ("""{"steps": 4}""", "default_render.steps is unknown"),
            ("""[1]""", "default_render must be an object"),
        })
        {
            Write(render);
            var e = Assert.Throws<WaveGradException>(() => Voice.Load(tmp["v"]));
            Assert.Contains("voice.json: ", e.Message);
            Assert.Contains(says, e.Message);
        }
        // The shipped default voice's card sets its render: what "as shipped" means for it.
        var shipped = Voice.Load(Voice.DefaultName).RenderDefaults();
        Assert.Equal((SamplerStart.GriffinLim, ConsistencySteps.None, "ddim"), (shipped.Start, shipped.Consistency, shipped.Sampler!.Name));
        Assert.Equal((PhaseStart.PhaseGradient, 4), (shipped.StartPhase, shipped.StartIterations));
        // speak and serve render it as vocode does: 16 post-filter passes with momentum, not the low-latency context's 4 plain ones.
        var speak = Voice.Load(Voice.DefaultName).RenderDefaults(SynthesisOptions.LowLatency);
        Assert.Equal((16, 0.9), (speak.PostFilterPasses, speak.PostFilterMomentum));
    }

    [Fact]
    public void TextToSpeechWithoutOptionsRendersWithTheVoicesListeningDefaults()
    {
        using var tmp = new TempDir();
        var card = Path.Combine(Tiny.SaveVoice(tmp["v"]), "voice.json");
        File.WriteAllText(card, File.ReadAllText(card).Replace("\"name\": \"tiny\",",
            "\"name\": \"tiny\", \"default_render\": {\"start\": \"noise\", \"consistency\": \"none\", \"post_filter\": 0},"));
        using var v = Vocoder.Load(tmp["v"]);
        using var mel = Tiny.Mel(Tiny.Chirp(0.6));
        var tts = new TextToSpeech(v, new OneMel(mel));
        float[] spoken = tts.Speak("One sentence.").SelectMany(c => c).ToArray();
        var listening = SpeechOptions.ForListening(v.Voice);
        Assert.Equal(v.SynthesizeStreaming(mel, listening).SelectMany(c => c).ToArray(), spoken);
        // Not the low-latency settings without the card (a Griffin-Lim start and 4 post-filter passes).
        Assert.NotEqual(v.SynthesizeStreaming(mel, SpeechOptions.ForListening(SynthesisOptions.LowLatency)).SelectMany(c => c).ToArray(), spoken);
    }

    sealed class OneMel(Tensor mel) : ITextFrontend
    {
        public string Name => "one mel";
        public Tensor Mel(string sentence, MelConfig config, CancellationToken ct) => mel.clone();
    }

    [Fact]
    public void VoicesSayWhichFramingTheyExpectAndOldCardsMeanCentred()
    {
        using var tmp = new TempDir();
        var card = Path.Combine(Tiny.SaveVoice(tmp["v"]), "voice.json");
        var json = File.ReadAllText(card);
        Assert.Contains("\"mel_framing\": \"hifigan\"", json);
        Assert.Equal(MelFraming.HifiGan, Voice.Load(tmp["v"]).Mel.Framing);
        File.WriteAllText(card, json.Replace("\"mel_framing\": \"hifigan\",", ""));      // a card from before framings were recorded
        Assert.Equal("hifigan-22k-centered", Voice.Load(tmp["v"]).Mel.Name);
        File.WriteAllText(card, json.Replace("\"mel_framing\": \"hifigan\"", "\"mel_framing\": \"centered\""));
        Assert.Contains("does not match preset hifigan-22k", Assert.Throws<WaveGradException>(() => Voice.Load(tmp["v"])).Message);
        Assert.Equal("hifigan-22k-centered", Voice.Load("slt-22k").Mel.Name);   // the shipped voice says so itself
    }

    [Fact]
    public void SameSeedSameBitsAndOutputLengthIsFramesTimesHop()
    {
        using var tmp = new TempDir();
        using var v = Vocoder.Load(Tiny.SaveVoice(tmp["v"]));
        var mel = Tiny.Mel(Tiny.Chirp(0.5));
        var a = v.Synthesize(mel, new SynthesisOptions { Seed = 5 });
        var b = v.Synthesize(mel, new SynthesisOptions { Seed = 5 });
        var c = v.Synthesize(mel, new SynthesisOptions { Seed = 6 });
        Assert.Equal(mel.shape[1] * 256, a.Length);
        Assert.Equal(a, b);
        Assert.NotEqual(a, c);
        Assert.All(a, s => Assert.InRange(s, -1f, 1f));   // WaveGrad's sampler clamps every step
    }

    [Fact]
    public void BatchMatchesSingleRenders()
    {
        using var tmp = new TempDir();
        using var v = Vocoder.Load(Tiny.SaveVoice(tmp["v"]));
        var m1 = Tiny.Mel(Tiny.Chirp(0.4));
        var batch = v.Synthesize([m1, Tiny.Mel(Tiny.Chirp(0.3, f0: 300))], new SynthesisOptions { Seed = 9 });
        var single = v.Synthesize(m1, new SynthesisOptions { Seed = 9 });
        Assert.Equal(single.Length, batch[0].Length);
        Assert.True(single.Zip(batch[0], (x, y) => Math.Abs(x - y)).Max() < 1e-4);
    }

    [Fact]
    public void StreamingMatchesOneShotWithoutClicksAtSeams()
    {
        using var tmp = new TempDir();
        using var v = Vocoder.Load(Tiny.SaveVoice(tmp["v"]));
        var mel = Tiny.Mel(Tiny.Chirp(2.0));
        var opts = new SynthesisOptions
        {
            Seed = 11, ChunkFrames = 40, ContextFrames = 16, Start = SamplerStart.GriffinLim, Consistency = ConsistencySteps.None,
        };
        var oneShot = v.Synthesize(mel, opts);
        var chunks = v.SynthesizeStreaming(mel, opts).ToList();
        Assert.True(chunks.Count >= 4);
        Assert.Equal(40 * 256, chunks[0].Length);               // the first chunk comes after 40 frames
        var streamed = chunks.SelectMany(c => c).ToArray();
        Assert.Equal(oneShot.Length, streamed.Length);
        double l1 = (Tiny.Mel(streamed) - Tiny.Mel(oneShot)).abs().mean().item<float>();
        Assert.True(l1 < 0.05, $"streamed vs one-shot log-mel L1 {l1}");
        // No click: around every seam the streamed waveform stays within a small bound of the one-shot one.
        for (int s = 40 * 256; s < streamed.Length; s += 40 * 256)
            for (int i = s - 256; i < s + 256; i++)
                Assert.True(Math.Abs(streamed[i] - oneShot[i]) < 0.02, $"seam at {s}: sample {i} differs by {Math.Abs(streamed[i] - oneShot[i])}");
    }

    [Fact]
    public void StreamingChunksRepeatTheFirstChunksLengthThenDouble()
    {
        using var tmp = new TempDir();
        using var v = Vocoder.Load(Tiny.SaveVoice(tmp["v"]));
        var mel = Tiny.Mel(Tiny.Chirp(2.0));
        var opts = new SynthesisOptions
        {
            Seed = 11, FirstChunkFrames = 10, ChunkFrames = 40, ContextFrames = 16, Start = SamplerStart.GriffinLim, Consistency = ConsistencySteps.None,
        };
        var chunks = v.SynthesizeStreaming(mel, opts).ToList();
        Assert.Equal(new[] { 10, 10, 20, 40, 40 }, chunks.Take(5).Select(c => c.Length / 256));
        var streamed = chunks.SelectMany(c => c).ToArray();
        var oneShot = v.Synthesize(mel, opts);
        Assert.Equal(oneShot.Length, streamed.Length);
        // From the phase gradients each Griffin-Lim window's phase depends on the frames it holds, so the streamed render is
        // another render of the mel, not the one-shot one: it must be about as close to the mel (measured: 0.341 against 0.333
        // with this untrained network; the start's own seams are held in GriffinLimTests).
        double Off(float[] y) => (Tiny.Mel(y) - mel).abs().mean().item<float>();
        Assert.True(Off(streamed) < 1.05 * Off(oneShot), $"log-mel L1 to the mel: streamed {Off(streamed)}, one-shot {Off(oneShot)}");
        // From a random phase the streamed render stays near the one-shot one.
        var random = opts with { StartPhase = PhaseStart.Random };
        var randomStreamed = v.SynthesizeStreaming(mel, random).SelectMany(c => c).ToArray();
        double l1 = (Tiny.Mel(randomStreamed) - Tiny.Mel(v.Synthesize(mel, random))).abs().mean().item<float>();
        Assert.True(l1 < 0.05, $"streamed vs one-shot log-mel L1 {l1}");
        var e = Assert.Throws<WaveGradException>(() => v.SynthesizeStreaming(mel, opts with { FirstChunkFrames = 0 }).First());
        Assert.Contains("FirstChunkFrames", e.Message);
    }

    [Fact]
    public void AGriffinLimStartBeginsFromTheMelsGriffinLimWaveform()
    {
        using var tmp = new TempDir();
        var voice = Voice.Load(Tiny.SaveVoice(tmp["v"]));
        var net = WaveGradNet.Load(voice);
        net.ZeroOutputLayer();   // ε̂ = 0: every step only rescales x and adds the sampler's noise
        using var v = Tiny.Vocoder(voice, net);
        var mel = Tiny.Mel(Tiny.Chirp(0.5));
        var gl = GriffinLim.FromMel(mel, voice.Mel, SynthesisOptions.DefaultStartIterations, start: new SynthesisOptions().StartPhase);
        // Started at WG-6's last step: x_0 = (√ᾱ₀·GL + √(1−ᾱ₀)·z)/√α₀ = GL + √(β₀/(1−β₀))·z, an rms distance of 0.002646.
        var near = v.Synthesize(mel, new SynthesisOptions
        {
            Start = SamplerStart.GriffinLim, StartNoise = 0.001, PostFilterPasses = 0, Consistency = ConsistencySteps.None,
        });
        Assert.Equal(mel.shape[1] * 256, near.Length);
        double rms = Math.Sqrt(gl.Select((g, i) => (double)(g - near[i]) * (g - near[i])).Average());
        double expected = Math.Sqrt(7e-6 / (1 - 7e-6));
        Assert.True(Math.Abs(rms - expected) < 0.1 * expected, $"rms distance from Griffin-Lim {rms:F6}, expected {expected:F6}");
        // From noise the same network's output has nothing of the Griffin-Lim waveform in it.
        var fromNoise = v.Synthesize(mel, new SynthesisOptions { Start = SamplerStart.Noise, PostFilterPasses = 0, Consistency = ConsistencySteps.None });
        double dot = 0, gg = 0, yy = 0;
        for (int i = 0; i < gl.Length; i++) { dot += gl[i] * fromNoise[i]; gg += gl[i] * gl[i]; yy += fromNoise[i] * fromNoise[i]; }
        Assert.InRange(dot / Math.Sqrt(gg * yy), -0.05, 0.05);
        // Mels too short for Griffin-Lim (hifigan-22k: under 4 frames) start from silence instead.
        foreach (int frames in new[] { 1, 3, 4 })
            Assert.Equal(frames * 256, v.Synthesize(full(80, frames, -5f)).Length);
    }

    [Fact]
    public void CancellationStopsWithinAStepAndProgressCountsSteps()
    {
        using var tmp = new TempDir();
        using var v = Vocoder.Load(Tiny.SaveVoice(tmp["v"]));
        var mel = Tiny.Mel(Tiny.Chirp(0.3));
        int seen = 0;
        var wg25 = DdpmSampler.WaveGrad(NoiseSchedule.Named("wg-25"));
        v.Synthesize(mel, new SynthesisOptions { Sampler = wg25, Start = SamplerStart.Noise, Progress = new Sync(_ => seen++) });
        Assert.Equal(25, seen);
        seen = 0;   // from Griffin-Lim, only the steps at noise std ≤ 0.65 run: 33 of WG-50's
        var wg50 = DdpmSampler.WaveGrad(NoiseSchedule.Named("wg-50"));
        v.Synthesize(mel, new SynthesisOptions { Sampler = wg50, Start = SamplerStart.GriffinLim, Progress = new Sync(_ => seen++) });
        Assert.Equal(33, seen);
        using var cts = new CancellationTokenSource();
        int steps = 0;
        Assert.ThrowsAny<OperationCanceledException>(() => v.Synthesize(mel,
            new SynthesisOptions { Sampler = wg50, Progress = new Sync(_ => { if (++steps == 2) cts.Cancel(); }) }, cts.Token));
        Assert.Equal(2, steps);
    }

    [Theory]
    [InlineData("wavegrad", null, 6)]
    [InlineData("respaced", "5", 5)]
    [InlineData("ddim", "10", 10)]
    [InlineData("pc", "3", 6)]
    [InlineData("ode", "4", 7)]
    public void EverySamplerRendersOneShotAndStreamedAlike(string name, string? steps, int evaluations)
    {
        using var tmp = new TempDir();
        using var v = Vocoder.Load(Tiny.SaveVoice(tmp["v"]));
        var sampler = v.Voice.Sampler(name, steps);
        Assert.Equal(evaluations, sampler.Evaluations);
        var mel = Tiny.Mel(Tiny.Chirp(1.2));
        var opts = new SynthesisOptions
        {
            Seed = 11, Sampler = sampler, Start = SamplerStart.Noise, ChunkFrames = 40, ContextFrames = 16, Consistency = ConsistencySteps.None,
        };
        int seen = 0;
        var oneShot = v.Synthesize(mel, opts with { Progress = new Sync(_ => seen++) });
        Assert.Equal(evaluations, seen);
        Assert.Equal(evaluations, v.Model.Evaluations(opts));
        Assert.All(oneShot, x => Assert.True(float.IsFinite(x) && Math.Abs(x) <= 1));
        Assert.Equal(oneShot, v.Synthesize(mel, opts));   // same seed, same bits
        var streamed = v.SynthesizeStreaming(mel, opts).SelectMany(c => c).ToArray();
        Assert.Equal(oneShot.Length, streamed.Length);
        double l1 = (Tiny.Mel(streamed) - Tiny.Mel(oneShot)).abs().mean().item<float>();
        Assert.True(l1 < 0.05, $"{name}: streamed vs one-shot log-mel L1 {l1}");
        // From the Griffin-Lim estimate only the levels at noise std ≤ StartNoise run.
        var fromGl = opts with { Start = SamplerStart.GriffinLim };
        Assert.Equal(sampler.EvaluationsFrom(sampler.StartLevel(fromGl.StartNoise)), v.Model.Evaluations(fromGl));
        Assert.Equal(oneShot.Length, v.Synthesize(mel, fromGl).Length);
    }

    [Fact]
    public void ConsistencyStepsSubstituteOrProjectTheEstimate()
    {
        using var tmp = new TempDir();
        var voice = Voice.Load(Tiny.SaveVoice(tmp["v"]));
        var net = WaveGradNet.Load(voice);
        using var v = Tiny.Vocoder(voice, net);
        var mel = Tiny.Mel(Tiny.Chirp(0.6));
        var gl = GriffinLim.FromMel(mel, voice.Mel, SynthesisOptions.DefaultStartIterations, start: new SynthesisOptions().StartPhase);
        // Deterministic DDIM's last step returns the denoiser's x̂₀: with the Griffin-Lim waveform substituted at every level
        // the render is that waveform, whatever the network says.
        var ddim = voice.Sampler("ddim", "4");
        var all = new SynthesisOptions { Sampler = ddim, Start = SamplerStart.Noise, PostFilterPasses = 0 };
        var substituted = v.Synthesize(mel, all with { Consistency = new ConsistencySteps { Mode = ConsistencyMode.Substitute, Levels = 4 } });
        Assert.True(gl.Select((g, i) => Math.Abs(g - substituted[i])).Max() < 1e-5);
        // Projected at every level onto the mel's magnitude, the random network's render lands far nearer the mel than without.
        double Off(float[] y) => (Tiny.Mel(y) - mel).abs().mean().item<float>();
        var plain = v.Synthesize(mel, all);
        var projected = v.Synthesize(mel, all with { Consistency = new ConsistencySteps { Mode = ConsistencyMode.Project, Levels = 4, Iterations = 32 } });
        Assert.True(Off(projected) < 0.5 * Off(plain), $"log-mel L1 projected {Off(projected):F3}, plain {Off(plain):F3}");
        Assert.Contains("Consistency", Assert.Throws<WaveGradException>(() => v.Synthesize(mel,
            all with { Consistency = new ConsistencySteps { Mode = ConsistencyMode.Project, Levels = 0 } })).Message);
    }

    [Fact]
    public void BadInputsGiveOneLineErrors()
    {
        using var tmp = new TempDir();
        using var v = Vocoder.Load(Tiny.SaveVoice(tmp["v"]));
        var e = Assert.Throws<WaveGradException>(() => v.Synthesize(zeros(128, 10)));
        Assert.Contains("128 bands but voice 'tiny' expects 80", e.Message);
        Assert.Contains("StartNoise 0: must be in (0, 1]", Assert.Throws<WaveGradException>(() => v.Synthesize(zeros(80, 10),
            new SynthesisOptions { StartNoise = 0 })).Message);
        Assert.Contains("StartIterations 0: must be at least 1", Assert.Throws<WaveGradException>(() => v.Synthesize(zeros(80, 10),
            new SynthesisOptions { StartIterations = 0 })).Message);
        Assert.Contains("CpuPieceFrames 8: must be at least 16", Assert.Throws<WaveGradException>(() => v.Synthesize(zeros(80, 10),
            new SynthesisOptions { CpuPieceFrames = 8 })).Message);
        Assert.Equal(256, v.Voice.RenderDefaults().CpuPieceFrames);   // an audio-rate network keeps short pieces
        var nan = zeros(80, 10); nan[3, 4] = tensor(float.NaN);
        Assert.Contains("NaN or Inf", Assert.Throws<WaveGradException>(() => v.Synthesize(nan)).Message);
        Assert.Contains("voice 'no-such-voice': not found", Assert.Throws<WaveGradException>(() => Voice.Load("no-such-voice")).Message);
        // A corrupt safetensors file names the file.
        File.WriteAllBytes(Path.Combine(tmp["v"], "model.safetensors"), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
        var c = Assert.Throws<WaveGradException>(() => Vocoder.Load(tmp["v"]));
        Assert.Contains("model.safetensors", c.Message);
        Assert.Contains("not a safetensors file", c.Message);
        // Weights that do not match the config say what differs.
        Tiny.SaveVoice(tmp["w"]);
        var json = File.ReadAllText(Path.Combine(tmp["w"], "voice.json")).Replace("\"first_channels\": 32", "\"first_channels\": 40");
        File.WriteAllText(Path.Combine(tmp["w"], "voice.json"), json);
        var m = Assert.Throws<WaveGradException>(() => Vocoder.Load(tmp["w"]));
        Assert.Contains("weights do not match the network config", m.Message);
        Assert.Contains("first_conv.weight", m.Message);
        Assert.DoesNotContain('\n', m.Message);
    }

    sealed class Sync(Action<SamplerStep> a) : IProgress<SamplerStep> { public void Report(SamplerStep s) => a(s); }
}

public class TrainingTests
{
    [Theory]
    [InlineData(59.4, "0:00:59")]
    [InlineData(3 * 86400 + 2 * 3600 + 5 * 60 + 7, "74:05:07")]   // a run longer than a day keeps its days as hours
    [InlineData(double.NaN, "?")]
    [InlineData(-1, "?")]
    public void ProgressFormatsTheEtaInHours(double seconds, string expected) => Assert.Equal(expected, TrainingProgress.Format(seconds));

    /// <summary>Returns its input and remembers the noise levels it was asked at.</summary>
    sealed class LevelSpy() : nn.Module<Tensor, Tensor, Tensor, Tensor>("LevelSpy")
    {
        public readonly List<float> Seen = [];
        public override Tensor forward(Tensor audio, Tensor mel, Tensor level)
        {
            Seen.AddRange(level.data<float>().ToArray());
            return audio.clone();
        }
    }

    [Fact]
    public void TrainLevelsDrawsOnlyTheLevelsAnNStepDdimRenderVisits()
    {
        using var tmp = new TempDir();
        var mel = MelConfig.Preset("hifigan-22k");
        var data = VocoderDataset.Load(MakeData(tmp), mel, 8);
        var ddim = new DdimSampler(Voice.TrainingSchedule, 4);
        var visited = ddim.Levels.Select(l => (float)l.SignalScale).ToHashSet();
        Assert.Equal(4, visited.Count);
        var spy = new LevelSpy();
        var objective = new DiffusionVocoderObjective(new TrainableNetwork(spy, new JsonObject(), 0, 0.1), Prediction.X0, data, mel,
            NoisePrior.Standard, 16, 8, LossNorm.L1, 0, CPU, false, Voice.TrainingSchedule.Respace(4).SqrtAlphasCumprod);
        var rng = new Generator(5);
        for (int i = 0; i < 20; i++) objective.Loss(rng);
        Assert.Equal(320, spy.Seen.Count);
        Assert.All(spy.Seen, l => Assert.Contains(l, visited));
        Assert.Equal(4, spy.Seen.Distinct().Count());   // every level is drawn
        // The run's card names DDIM over those levels as its default sampler.
        var o = Options(MakeData(tmp), tmp["run"], 2) with { Network = null, Architecture = "stft", Size = "tiny", TrainLevels = 4 };
        VocoderTrainer.Run(o);
        var voice = Voice.Load(tmp["run"]);
        Assert.Equal("ddim", voice.DefaultSampler.Name);
        Assert.Equal(visited, voice.DefaultSampler.Levels.Select(l => (float)l.SignalScale).ToHashSet());
        Assert.Throws<WaveGradException>(() => VocoderTrainer.Run(o with { OutputDir = tmp["bad"], TrainLevels = -1 }));
    }

    [Fact]
    public void LowNoiseShareDrawsThatShareOfTheLevelsFromTheSchedulesFirstThird()
    {
        using var tmp = new TempDir();
        var mel = MelConfig.Preset("hifigan-22k");
        var data = VocoderDataset.Load(MakeData(tmp), mel, 8);
        double edge = Voice.TrainingSchedule.SqrtAlphasCumprod[DiffusionVocoderObjective.LowNoiseSteps - 1];
        double Share(double lowNoiseShare)
        {
            var spy = new LevelSpy();
            var objective = new DiffusionVocoderObjective(new TrainableNetwork(spy, new JsonObject(), 0, 0.1), Prediction.X0, data, mel,
                NoisePrior.Standard, 16, 8, LossNorm.L1, 0, CPU, false, lowNoiseShare: lowNoiseShare);
            var rng = new Generator(5);
            for (int i = 0; i < 100; i++) objective.Loss(rng);
            return spy.Seen.Count(l => l >= edge - 1e-6) / (double)spy.Seen.Count;
        }
        // Uniform over the schedule a third of the draws lies there; with half the crops drawn there, 1/2 + 1/2·1/3 = 2/3.
        Assert.InRange(Share(0), 0.333 - 0.05, 0.333 + 0.05);    // 1,600 draws: SE 0.012
        Assert.InRange(Share(0.5), 0.667 - 0.05, 0.667 + 0.05);
        Assert.Equal(1.0, Share(1));
        var o = Options(MakeData(tmp), tmp["run"], 2) with { Network = null, Architecture = "stft", Size = "tiny" };
        var e = Assert.Throws<WaveGradException>(() => VocoderTrainer.Run(o with { OutputDir = tmp["bad"], LowNoiseShare = 1.5 }));
        Assert.Contains("LowNoiseShare", e.Message);
        Assert.Throws<WaveGradException>(() => VocoderTrainer.Run(o with { OutputDir = tmp["bad2"], LowNoiseShare = 0.5, TrainLevels = 4 }));
    }

    static string MakeData(TempDir tmp)
    {
        var dir = tmp["data"];
        Directory.CreateDirectory(Path.Combine(dir, "sub"));
        Wav.Write(Path.Combine(dir, "a.wav"), Tiny.Chirp(0.6), 22050);
        Wav.Write(Path.Combine(dir, "sub", "b.wav"), Tiny.Chirp(0.5, f0: 220, f1: 180), 22050);
        Wav.Write(Path.Combine(dir, "short.wav"), Tiny.Chirp(0.05), 22050);   // under one crop: skipped and counted
        return dir;
    }

    static VocoderTrainingOptions Options(string data, string output, long steps, bool resume = false, List<double>? losses = null) => new()
    {
        DataDir = data, OutputDir = output, Network = Tiny.Config(), Steps = steps, BatchSize = 2, CropFrames = 8,
        ValidateEvery = 0, CheckpointEvery = 1000, LogEvery = 1000, Resume = resume, Log = TextWriter.Null,
        OnStep = (_, l) => losses?.Add(l),
    };

    [Fact]
    public void ResumeContinuesExactlyLikeAnUninterruptedRun()
    {
        using var tmp = new TempDir();
        var data = MakeData(tmp);
        var straight = new List<double>();
        VocoderTrainer.Run(Options(data, tmp["straight"], 6, losses: straight));
        var resumed = new List<double>();
        VocoderTrainer.Run(Options(data, tmp["resumed"], 3, losses: resumed));
        VocoderTrainer.Run(Options(data, tmp["resumed"], 6, resume: true, losses: resumed));
        Assert.Equal(6, straight.Count);
        Assert.Equal(straight, resumed);
        var a = TensorFiles.Load(Path.Combine(tmp["straight"], "model.safetensors"));
        var b = TensorFiles.Load(Path.Combine(tmp["resumed"], "model.safetensors"));
        foreach (var (k, t) in a) Assert.True(t.eq(b[k]).all().item<bool>(), k);
        // The run folder is a voice bundle.
        using var v = Vocoder.Load(tmp["straight"]);
        Assert.Equal(22050, v.SampleRate);
    }

    [Fact]
    public void Bf16TrainingKeepsFp32MasterWeights()
    {
        // The bf16 path (meant for CUDA) runs on the CPU too: finite losses, and the saved weights are the fp32
        // master copy, not bf16-rounded values.
        using var tmp = new TempDir();
        var data = MakeData(tmp);
        var losses = new List<double>();
        VocoderTrainer.Run(Options(data, tmp["bf16"], 3, losses: losses) with { Bf16 = true });
        Assert.Equal(3, losses.Count);
        Assert.All(losses, l => Assert.True(double.IsFinite(l)));
        var raw = TensorFiles.Load(Path.Combine(tmp["bf16"], "model-raw.safetensors"));
        var w = raw["upsample.0.block1.weight"];
        Assert.Equal(ScalarType.Float32, w.dtype);
        Assert.False(w.eq(w.to_type(ScalarType.BFloat16).to_type(ScalarType.Float32)).all().item<bool>());
    }

    [Fact]
    public void NonFiniteLossesAreSkippedAndTooManyInARowStopWithACheckpoint()
    {
        // An absurd learning rate wrecks the weights after a step or two; every later loss is non-finite.
        using var tmp = new TempDir();
        var data = MakeData(tmp);
        var e = Assert.Throws<WaveGradException>(() => VocoderTrainer.Run(Options(data, tmp["nan"], 200) with { LearningRate = 1e6, MaxNonFiniteInARow = 5 }));
        Assert.Contains("5 non-finite losses or gradients in a row", e.Message);
        Assert.True(File.Exists(Path.Combine(tmp["nan"], "checkpoint", "state.json")));   // saved at exit
    }

    [Fact]
    public void BadTrainingInputsAreClearErrors()
    {
        using var tmp = new TempDir();
        Directory.CreateDirectory(tmp["empty"]);
        Assert.Contains("no .wav files found", Assert.Throws<WaveGradException>(() => VocoderTrainer.Run(Options(tmp["empty"], tmp["o"], 1))).Message);
        Assert.Contains("no such data folder", Assert.Throws<WaveGradException>(() => VocoderTrainer.Run(Options(tmp["missing"], tmp["o"], 1))).Message);
        var data = MakeData(tmp);
        Assert.Contains("no checkpoint to resume", Assert.Throws<WaveGradException>(() => VocoderTrainer.Run(Options(data, tmp["o2"], 2,
            resume: true))).Message);
        var ds = VocoderDataset.Load(data, MelConfig.Preset("hifigan-22k"), 8);
        Assert.Equal(1, ds.SkippedShort);
        Assert.Equal(2, ds.Train.Count);
    }

    [Fact]
    public void ADamagedOrImplausibleCheckpointIsRefusedAndStaleTempFilesAreRemoved()
    {
        using var tmp = new TempDir();
        var data = MakeData(tmp);
        VocoderTrainer.Run(Options(data, tmp["run"], 2));
        string ckpt = Path.Combine(tmp["run"], "checkpoint"), state = Path.Combine(ckpt, "state.json");
        string good = File.ReadAllText(state);
        WaveGradException Resume() => Assert.Throws<WaveGradException>(() => VocoderTrainer.Run(Options(data, tmp["run"], 3, resume: true)));
        foreach (var step in new[] { "-5", "1000000000000" })
        {
            File.WriteAllText(state, good.Replace("\"step\": 2", $"\"step\": {step}"));
            Assert.Contains($"'step' is {step}, outside 0–1000000000", Resume().Message);
        }
        File.WriteAllText(state, good);
        // 0xFF bytes in the optimizer state: its checksum no longer matches.
        string opt = Path.Combine(ckpt, "optimizer.safetensors");
        var bytes = File.ReadAllBytes(opt);
        bytes.AsSpan(bytes.Length - 64, 16).Fill(0xFF);
        File.WriteAllBytes(opt, bytes);
        Assert.Contains("optimizer.safetensors: checksum does not match", Resume().Message);
        // A checkpoint without checksums (written before they were) whose weights hold NaN.
        File.WriteAllText(state, System.Text.RegularExpressions.Regex.Replace(good, "\"sha256\": \\{[^}]*\\}", "\"sha256\": null"));
        Assert.Contains("holds NaN or infinite values", Resume().Message);
        // What a killed writer left behind goes on the next run in that folder.
        VocoderTrainer.Run(Options(data, tmp["run2"], 1));
        string staleFile = Path.Combine(tmp["run2"], ".model.safetensors.2147483600.0123456789abcdef0123456789abcdef.tmp");
        string staleDir = Path.Combine(tmp["run2"], "checkpoint", ".x.2147483600.0123456789abcdef0123456789abcdef.tmp");
        File.WriteAllBytes(staleFile, new byte[1000]);
        Directory.CreateDirectory(staleDir);
        VocoderTrainer.Run(Options(data, tmp["run2"], 2, resume: true));
        Assert.False(File.Exists(staleFile));
        Assert.False(Directory.Exists(staleDir));
    }

    [Fact]
    public async Task AResumeWithAPipeInPlaceOfACheckpointFileFailsAtOnceNamingIt()
    {
        // The checksums were read before any regular-file check: opening the pipe blocked the resume forever.
        if (OperatingSystem.IsWindows()) return;
        using var tmp = new TempDir();
        var data = MakeData(tmp);
        VocoderTrainer.Run(Options(data, tmp["run"], 1));
        string ema = Path.Combine(tmp["run"], "checkpoint", "ema.safetensors");
        File.Delete(ema);
        System.Diagnostics.Process.Start("mkfifo", ema)!.WaitForExit();
        var resume = Task.Run(() => VocoderTrainer.Run(Options(data, tmp["run"], 2, resume: true)));
        bool done = await Task.WhenAny(resume, Task.Delay(TimeSpan.FromSeconds(60))) == resume;
        if (!done) using (new FileStream(ema, FileMode.Open, FileAccess.Write)) { }   // unblock the reader before failing
        Assert.True(done, "the resume blocked on the pipe");
        var e = await Assert.ThrowsAsync<WaveGradException>(() => resume);
        Assert.Equal($"{ema}: is empty or not a regular file (a pipe or a device); a checkpoint file is needed", e.Message);
    }

    [Fact]
    public void ASecondTrainerOnARunFolderIsRefusedNamingTheHolderUntilItsLockIsReleased()
    {
        using var tmp = new TempDir();
        var data = MakeData(tmp);
        VocoderTrainer.Run(Options(data, tmp["run"], 1));
        var steps = new List<double>();
        using (RunLock.Acquire(tmp["run"]))   // what a live trainer holds (the CLI's tests kill one with SIGKILL)
        {
            var e = Assert.Throws<WaveGradException>(() => VocoderTrainer.Run(Options(data, tmp["run"], 2, resume: true, losses: steps)));
            Assert.Equal($"{tmp["run"]}: the run folder is in use by process {Environment.ProcessId}, another trainer; wait for it to finish or " +
                "stop it", e.Message);
            Assert.Empty(steps);
        }
        VocoderTrainer.Run(Options(data, tmp["run"], 2, resume: true, losses: steps));
        Assert.Single(steps);
    }

    [Fact]
    public void AnUnreadableCorpusFileIsSkippedWithAWarningUnlessNoneRemain()
    {
        using var tmp = new TempDir();
        var data = MakeData(tmp);
        File.WriteAllBytes(Path.Combine(data, "broken.wav"), "RIFF....WAVEnot really"u8.ToArray());
        var log = new StringWriter();
        var ds = VocoderDataset.Load(data, MelConfig.Preset("hifigan-22k"), 8, warnings: log);
        Assert.Equal(1, ds.SkippedUnreadable);
        Assert.Equal(2, ds.Train.Count);
        Assert.Contains("broken.wav", log.ToString());
        Assert.Single(log.ToString().Trim().Split('\n'));
        foreach (var f in Directory.GetFiles(data, "*.wav", SearchOption.AllDirectories)) File.WriteAllBytes(f, [1, 2, 3]);
        Assert.Contains("unreadable", Assert.Throws<WaveGradException>(() => VocoderDataset.Load(data, MelConfig.Preset("hifigan-22k"), 8,
            warnings: TextWriter.Null)).Message);
    }

    [Fact]
    public void EmaWarmUpFollowsTheClosedForm()
    {
        using var lin = nn.Linear(2, 1);
        var ema = new Ema(lin, 0.9999);
        Assert.Equal(0.1, ema.Decay, 12);            // (1+0)/(10+0)
        ema.Updates = 90;
        Assert.Equal(0.91, ema.Decay, 12);           // 91/100
        ema.Updates = 10_000_000;
        Assert.Equal(0.9999, ema.Decay, 12);
    }
}
