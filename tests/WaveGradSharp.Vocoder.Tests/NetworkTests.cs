using System.Text.Json;
using TorchSharp;
using WaveGradSharp.Diffusion;
using WaveGradSharp.Vocoder;
using static TorchSharp.torch;
using WaveGradSharp.Core;

namespace WaveGradSharp.Vocoder.Tests;

public class NetworkTests
{
    static string Fixture(string name) => Path.Combine(AppContext.BaseDirectory, "fixtures", "vocoder", name);

    [Fact]
    public void BaseNetworkHasLmntKeyNamesShapesAndParameterCount()
    {
        var doc = JsonDocument.Parse(File.ReadAllText(Fixture("lmnt-base-keys.json"))).RootElement;
        using var net = new WaveGradNet(WaveGradConfig.Create("base", 300, 128, DilationOrder.Lmnt, 1));
        var own = net.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.shape);
        var expected = doc.GetProperty("keys").EnumerateArray()
            .ToDictionary(e => e[0].GetString()!, e => e[1].EnumerateArray().Select(x => x.GetInt64()).ToArray());
        Assert.Equal(expected.Keys.Order(), own.Keys.Order());
        foreach (var (k, shape) in expected) Assert.True(shape.SequenceEqual(own[k]), $"{k}: [{string.Join(",", own[k])}] vs [{string.Join(",", shape)}]");
        Assert.Equal(15_920_993L, doc.GetProperty("parameters").GetInt64());
        Assert.Equal(15_920_993L, net.ParameterCount);
        Assert.Contains("downsample.1.conv.0.weight", own.Keys);
        Assert.Contains("film.0.output_conv.bias", own.Keys);
        Assert.Contains("upsample.0.block2.1.weight", own.Keys);
    }

    [Theory]
    [InlineData("tiny-lmnt")]
    [InlineData("tiny-paper")]
    public void MatchesThePyTorchReferenceWithin1e4(string name)
    {
        var cfg = JsonSerializer.Deserialize<WaveGradConfig>(File.ReadAllText(Fixture(name + ".json")), WaveGradConfig.JsonOptions)!;
        using var net = new WaveGradNet(cfg);
        TensorFiles.LoadInto(net, PyTorchImport.ReadStateDict(Fixture(name + ".pt")), name);
        net.eval();
        var io = TorchSharp.PyBridge.PyTorchUnpickler.UnpickleStateDict(Fixture(name + "-io.pt"));
        using var _ = no_grad();
        var output = net.call((Tensor)io["audio"]!, (Tensor)io["mel"]!, (Tensor)io["level"]!);
        var expected = (Tensor)io["output"]!;
        double maxErr = (output - expected).abs().max().item<float>();
        Assert.True(maxErr < 1e-4, $"max |Δ| = {maxErr}");
        Assert.True(expected.abs().max().item<float>() > 0.1);   // the output is not trivially zero
    }

    [Theory]
    [InlineData("tiny-lmnt")]
    [InlineData("tiny-lmnt-128")]
    public void InferenceMatchesThePyTorchReferenceWithin1e4(string name)
    {
        // The time-major, polyphase rewrite of the forward pass against PyTorch's own (factors 5, 5, 3, 2, 2: every phase kind).
        var cfg = JsonSerializer.Deserialize<WaveGradConfig>(File.ReadAllText(Fixture(name + ".json")), WaveGradConfig.JsonOptions)!;
        using var net = new WaveGradNet(cfg);
        TensorFiles.LoadInto(net, PyTorchImport.ReadStateDict(Fixture(name + ".pt")), name);
        using var fast = new WaveGradInference(net, ScalarType.Float32);
        var io = TorchSharp.PyBridge.PyTorchUnpickler.UnpickleStateDict(Fixture(name + "-io.pt"));
        var output = fast.call((Tensor)io["audio"]!, (Tensor)io["mel"]!, (Tensor)io["level"]!);
        double maxErr = (output - (Tensor)io["output"]!).abs().max().item<float>();
        Assert.True(maxErr < 1e-4, $"max |Δ| = {maxErr}");
    }

    [Fact]
    public void InferenceMatchesTheNetworkAtTheDefaultVoicesSize()
    {
        // small, paper dilations, hop 256 (4, 4, 4, 2, 2), two items with their own noise levels; orthogonal weights with
        // random biases, so that every bias path counts.
        using var net = new WaveGradNet(WaveGradConfig.Create("small", 256, 80));
        using (no_grad())
            foreach (var (name, p) in net.named_parameters())
                if (name.EndsWith("bias")) p.copy_(randn(p.shape, generator: new Generator(1)) * 0.1);
        net.eval();
        using var fast = new WaveGradInference(net, ScalarType.Float32);
        var g = new Generator(2);
        var audio = randn([2, 24 * 256], generator: g);
        var mel = randn([2, 80, 24], generator: g) - 4;
        var level = tensor(new[] { 0.3f, 0.999f });
        using var _ = no_grad();
        var expected = net.call(audio, mel, level);
        double maxErr = (fast.call(audio, mel, level) - expected).abs().max().item<float>();
        double scale = expected.abs().max().item<float>();
        Assert.True(maxErr < 1e-4 * scale, $"max |Δ| = {maxErr} of outputs up to {scale}");
        var e = Assert.Throws<WaveGradException>(() => fast.call(audio[.., ..100], mel, level));
        Assert.Contains("does not match", e.Message);
        // One noise level for the whole batch broadcasts, as in WaveGradNet; a batch mismatch is named.
        var one = tensor(new[] { 0.5f });
        Assert.True((fast.call(audio, mel, one) - net.call(audio, mel, one)).abs().max().item<float>() < 1e-4 * scale);
        Assert.Contains("2 waveforms, 1 mels", Assert.Throws<WaveGradException>(() => fast.call(audio, mel[..1], level)).Message);
    }

    [Fact]
    public void GradientsMatchPyTorchWithin1e4()
    {
        // The backward pass (dilated convs, interpolation, FiLM) against PyTorch's autograd on an L1 loss, with
        // oneDNN off as CPU training runs (see NativeTuning.DisableOneDnn and the next test).
        NativeTuning.DisableOneDnn();
        var cfg = JsonSerializer.Deserialize<WaveGradConfig>(File.ReadAllText(Fixture("tiny-paper.json")), WaveGradConfig.JsonOptions)!;
        using var net = new WaveGradNet(cfg);
        TensorFiles.LoadInto(net, PyTorchImport.ReadStateDict(Fixture("tiny-paper.pt")), "tiny-paper");
        var io = TorchSharp.PyBridge.PyTorchUnpickler.UnpickleStateDict(Fixture("tiny-paper-io.pt"));
        var expected = TorchSharp.PyBridge.PyTorchUnpickler.UnpickleStateDict(Fixture("tiny-paper-grads.pt"));
        var loss = (net.call((Tensor)io["audio"]!, (Tensor)io["mel"]!, (Tensor)io["level"]!) - (Tensor)expected["target"]!).abs().mean();
        Assert.True(Math.Abs(loss.item<float>() - ((Tensor)expected["loss"]!).item<float>()) < 1e-5);
        loss.backward();
        int compared = 0;
        foreach (var (name, p) in net.named_parameters())
        {
            var g = (Tensor)expected["grad." + name]!;
            double scale = Math.Max(g.abs().max().item<float>(), 1e-6);
            double err = (p.grad! - g).abs().max().item<float>();
            Assert.True(err <= 1e-4 * scale + 1e-6, $"{name}: max |Δgrad| {err:G3} against max |grad| {scale:G3}");
            compared++;
        }
        Assert.Equal(108, compared);
    }

    [Theory]
    [InlineData(8, 1, 3, 1, 1, 50)]
    [InlineData(8, 8, 3, 4, 4, 64)]
    [InlineData(64, 1, 3, 1, 1, 4096)]
    public void Float32ConvolutionGradientsAgreeWithFloat64(int cin, int cout, int k, int pad, int dil, int len)
    {
        // Guards the workaround: with oneDNN on, these input gradients were 35–80 % off (or NaN) on this machine.
        NativeTuning.DisableOneDnn();
        var gen = new Generator(1);
        var w = randn([cout, cin, k], generator: gen, dtype: ScalarType.Float64) * 0.3;
        var x = randn([2, cin, len], generator: gen, dtype: ScalarType.Float64);
        var t = randn([2, cout, len], generator: gen, dtype: ScalarType.Float64);
        Tensor Grad(ScalarType dt)
        {
            var xx = x.to_type(dt).detach().clone().requires_grad_();
            (nn.functional.conv1d(xx, w.to_type(dt), padding: pad, dilation: dil) - t.to_type(dt)).pow(2).sum().backward();
            return xx.grad!.to_type(ScalarType.Float64);
        }
        var g64 = Grad(ScalarType.Float64);
        double rel = ((Grad(ScalarType.Float32) - g64).abs().max() / g64.abs().max()).item<double>();
        Assert.True(rel < 1e-5, $"relative error {rel:G3}");
    }

    [Theory]
    [InlineData(300, new[] { 5, 5, 3, 2, 2 })]
    [InlineData(256, new[] { 4, 4, 4, 2, 2 })]
    public void UpsamplingFactorsComeFromTheHop(int hop, int[] factors) => Assert.Equal(factors, WaveGradConfig.FactorsForHop(hop));

    [Fact]
    public void UnsupportedHopNamesTheSupportedOnes()
    {
        var e = Assert.Throws<WaveGradException>(() => WaveGradConfig.FactorsForHop(275));
        Assert.Contains("hop 275 is not supported", e.Message);
        Assert.Contains("300", e.Message);
        Assert.Contains("256", e.Message);
    }

    [Fact]
    public void SmallIsHalfTheBaseChannelsAndOutputHasAudioLength()
    {
        using var net = new WaveGradNet(WaveGradConfig.Create("small", 256, 80));
        Assert.InRange(net.ParameterCount, 3_500_000, 4_500_000);
        using var _ = no_grad();
        var y = net.call(zeros(2, 5 * 256), zeros(2, 80, 5), tensor(new[] { 0.5f, 0.9f }));
        Assert.Equal(new long[] { 2, 1280 }, y.shape);
    }

    [Fact]
    public void ACardsNetworkMayLeaveOutFieldsThatHaveDefaults()
    {
        // Cards written before a field existed leave it out: it keeps WaveGradConfig's default, not zero or null.
        var voice = Voice.Load("slt-22k");
        var network = (System.Text.Json.Nodes.JsonObject)voice.Network.DeepClone();
        foreach (var field in new[] { "interpolation", "noise_scale", "dilations" }) Assert.True(network.Remove(field), field);
        var cfg = WaveGradConfig.FromCard(network, voice.Mel, "old card");
        Assert.Equal("nearest", cfg.Interpolation);
        Assert.Equal(5000.0, cfg.NoiseEncodingScale);
        Assert.Equal(DilationOrder.Paper, cfg.Dilations);
        Assert.Equal(WaveGradConfig.Of(voice).UpChannels, cfg.UpChannels);
    }

    [Fact]
    public void ImportWritesAVoiceThatRendersLikeTheCheckpoint()
    {
        var dir = Directory.CreateTempSubdirectory();
        try
        {
            // A {'model': state_dict} checkpoint of lmnt's layout with 128 mels (hop 300): the preset lmnt-22k fits.
            var voice = PyTorchImport.ImportVoice(Fixture("tiny-lmnt-128.pt"), "lmnt-22k", Path.Combine(dir.FullName, "imported"));
            var cfg = WaveGradConfig.Of(voice);
            Assert.Equal(DilationOrder.Lmnt, cfg.Dilations);
            Assert.Equal(1.0, cfg.NoiseEncodingScale);
            Assert.Equal(48, cfg.FirstChannels);
            using (var net = WaveGradNet.Load(voice))
            {
                var io = TorchSharp.PyBridge.PyTorchUnpickler.UnpickleStateDict(Fixture("tiny-lmnt-128-io.pt"));
                using var _ = no_grad();
                var y = net.call((Tensor)io["audio"]!, (Tensor)io["mel"]!, (Tensor)io["level"]!);
                Assert.True((y - (Tensor)io["output"]!).abs().max().item<float>() < 1e-4);
            }

            // tiny-lmnt has 16 mel bands; no preset has that many, so importing it is an n_mels error.
            var e = Assert.Throws<WaveGradException>(() => PyTorchImport.ImportVoice(Fixture("tiny-lmnt.pt"), "lmnt-22k", Path.Combine(dir.FullName, "v")));
            Assert.Contains("16 mel bands", e.Message);
            Assert.Contains("128", e.Message);
            Assert.False(Directory.Exists(Path.Combine(dir.FullName, "v")));
            var notPt = Path.Combine(dir.FullName, "x.pt");
            File.WriteAllText(notPt, "hello");
            Assert.Contains("not a PyTorch zip checkpoint", Assert.Throws<WaveGradException>(() => PyTorchImport.ReadStateDict(notPt)).Message);
        }
        finally { dir.Delete(true); }
    }

    [Fact]
    public void ACheckpointWhosePickleClaimsAHugeStringIsRefusedBeforeItIsAllocated()
    {
        // Found by the fuzzer: the unpickler allocates a string opcode's length before reading it, so 4 mutated bytes of a
        // 10 KB checkpoint made it allocate 1.9 GB. The first key of the state dict is a BINUNICODE ('X') after a MARK.
        var dir = Directory.CreateTempSubdirectory("wg-pt-");
        try
        {
            string path = Path.Combine(dir.FullName, "huge.pt");
            File.Copy(Fixture("tiny-lmnt-128.pt"), path);
            using (var zip = new System.IO.Compression.ZipArchive(File.Open(path, FileMode.Open), System.IO.Compression.ZipArchiveMode.Update))
            {
                var entry = zip.Entries.Single(e => e.FullName.EndsWith("/data.pkl", StringComparison.Ordinal));
                byte[] pkl;
                using (var ms = new MemoryStream()) { using (var r = entry.Open()) r.CopyTo(ms); pkl = ms.ToArray(); }
                int x = pkl.AsSpan().IndexOf("(X"u8) + 1;
                Assert.True(x > 0);
                BitConverter.GetBytes(0x7FFF_FFF0).CopyTo(pkl, x + 1);
                using var w = entry.Open();
                w.SetLength(0);
                w.Write(pkl);
            }
            long before = GC.GetAllocatedBytesForCurrentThread();
            var e = Assert.Throws<WaveGradException>(() => PyTorchImport.ReadStateDict(path));
            Assert.Contains("a length of 2147483632 bytes", e.Message);
            Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 50 << 20);
        }
        finally { dir.Delete(true); }
    }
}
