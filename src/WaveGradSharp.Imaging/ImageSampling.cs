using MathNet.Numerics.LinearAlgebra;
using WaveGradSharp.Diffusion;
using static TorchSharp.torch;
using WaveGradSharp.Core;

namespace WaveGradSharp.Imaging;

/// <summary>What to draw from an image model.</summary>
public sealed record ImageSampleRequest
{
    /// <summary>ddpm (every step of the training schedule), respaced, ddim, langevin, pc or ode.</summary>
    public string Sampler { get; init; } = "ddim";
    /// <summary>Steps (respaced/ddim/ode: timesteps; langevin/pc: σ levels); null: the sampler's default.</summary>
    public int? Steps { get; init; }
    /// <summary>DDIM's η: 0 deterministic, 1 DDPM's posterior variance. The default 0.5 was chosen by measurement (README: with the
    /// shipped MNIST model, η = 0 left 4 % of the digits speckled, 0.5 none at the same Fréchet distance, 1 none at a larger one).</summary>
    public double Eta { get; init; } = DefaultEta;
    /// <summary>The default <see cref="Eta"/>.</summary>
    public const double DefaultEta = 0.5;
    /// <summary>Class of every sample, or null for unconditional.</summary>
    public int? Class { get; init; }
    /// <summary>Classifier-free guidance weight: 0 unconditional, 1 conditional, above 1 stronger.</summary>
    public double Guidance { get; init; } = 1;
    /// <summary>Classifier-guidance scale (needs <see cref="Classifier"/>).</summary>
    public double ClassifierGuidance { get; init; }
    /// <summary>Noise-aware classifier for classifier guidance.</summary>
    public DigitClassifier? Classifier { get; init; }
    /// <summary>Number of images.</summary>
    public int Count { get; init; } = 16;
    /// <summary>Seed (same seed, same images on the CPU).</summary>
    public long Seed { get; init; } = 1234;
    /// <summary>Images per network call (memory bound).</summary>
    public int BatchSize { get; init; } = 250;
    /// <summary>Langevin steps per σ level.</summary>
    public int LangevinStepsPerLevel { get; init; } = 2;
    /// <summary>Langevin step size ε (α_i = ε·σ_i²/σ_L²).</summary>
    public double LangevinStepSize { get; init; } = 1e-4;
    /// <summary>Signal-to-noise ratio of the PC sampler's Langevin corrector.</summary>
    public double Snr { get; init; } = 0.16;
    /// <summary>Clip the model's x̂₀ to [−1, 1] at every evaluation, for every sampler (<see cref="ClippedX0"/>).</summary>
    public bool ClipX0 { get; init; } = true;
}

/// <summary>Samplers for image models, by name, all from the Diffusion project's engine.</summary>
public static class ImageSampling
{
    /// <summary>Sampler names accepted by <see cref="CreateSampler"/>.</summary>
    public static IReadOnlyList<string> SamplerNames { get; } = ["ddpm", "respaced", "ddim", "langevin", "pc", "ode"];

    /// <summary>
    /// Builds a sampler for a model. ddpm: ancestral over the full training schedule (σ² = β̃, or the learned
    /// variance of a hybrid model); respaced: the same over K evenly spaced steps (default 50); ddim: K steps
    /// (default 50) with η; langevin: annealed Langevin over K geometric σ levels (default 100) between the
    /// model's σ range (capped at 50); pc: reverse-diffusion predictor + Langevin corrector over K σ levels
    /// (default 200, variance exploding); ode: the probability-flow ODE with Heun's method (in 1/σ) over K steps (default 25).
    /// ε-models and score models serve every sampler through the parameterisation conversions.
    /// </summary>
    public static ISampler CreateSampler(ImageModel model, ImageSampleRequest r)
    {
        bool learned = model.Network.LearnSigma;
        var (sigMax, sigMin) = model.SigmaRange;
        sigMax = Math.Min(sigMax, 50);
        if (r.Steps is int k && k < 1) throw WaveGradException.About($"Steps must be at least 1, not {k}", "Steps");
        // A score network has no discrete schedule of its own: the timestep samplers walk the linear DDPM schedule.
        var schedule = model.Network.Objective == ImageObjective.Score ? NoiseSchedule.Named("ddpm-linear") : model.Schedule;
        var variance = learned ? ReverseVariance.Learned : ReverseVariance.BetaTilde;
        return r.Sampler switch
        {
            "ddpm" when r.Steps is int ks && ks != schedule.Steps => throw WaveGradException.About($"ddpm walks all {schedule.Steps} steps of the " +
                $"training schedule; use the Sampler respaced with {ks} Steps", "Sampler", "Steps"),
            "ddpm" => new DdpmSampler(schedule, variance),
            "respaced" => new DdpmSampler(schedule.Respace(r.Steps ?? 50), variance, name: "respaced"),
            "ddim" => new DdimSampler(schedule, r.Steps ?? 50, r.Eta),
            "langevin" => new AnnealedLangevinSampler(Sigmas.Geometric(sigMax, sigMin, r.Steps ?? 100), r.LangevinStepsPerLevel, r.LangevinStepSize),
            "pc" => PredictorCorrectorSampler.VarianceExploding(Sigmas.Geometric(sigMax, sigMin, r.Steps ?? 200), r.Snr),
            "ode" => ProbabilityFlowSampler.ForSchedule(schedule, r.Steps ?? 25),
            _ => throw new WaveGradException($"unknown sampler '{r.Sampler}'; known: {string.Join(", ", SamplerNames)}"),
        };
    }

    /// <summary>The denoiser a request asks for: class-conditional with classifier-free guidance and/or classifier guidance.</summary>
    public static IDenoiser CreateDenoiser(UNet net, ImageSampleRequest r, Tensor? classes)
    {
        var cfg = net.Config;
        if (r.Class is int c && (c < 0 || c >= Math.Max(cfg.Classes, r.Classifier?.Config.Classes ?? 0)))
            throw new WaveGradException($"class {c} is outside the model's range 0–{Math.Max(cfg.Classes, r.Classifier?.Config.Classes ?? 0) - 1}");
        if (r.ClassifierGuidance != 0 && (r.Classifier is null || classes is null))
            throw WaveGradException.About("classifier guidance needs a Class and a noise-aware Classifier", "Class", "Classifier");
        if (r.Classifier is { Config.NoiseAware: false }) throw new WaveGradException("classifier guidance needs a noise-aware classifier; this one " +
            "judges clean images only");
        IDenoiser d;
        var uncond = new UNetDenoiser(net, null);
        if (classes is null || cfg.Classes == 0 || r.Guidance == 0) d = uncond;
        else if (r.Guidance == 1) d = new UNetDenoiser(net, classes);
        else d = new ClassifierFreeGuidance(new UNetDenoiser(net, classes), uncond, r.Guidance);
        if (r.ClassifierGuidance != 0) d = new ClassifierGuidance(d, r.Classifier!, classes!, r.ClassifierGuidance);
        return r.ClipX0 ? new ClippedX0(d) : d;
    }

    /// <summary>
    /// Draws <see cref="ImageSampleRequest.Count"/> images [N, C, H, W] in [−1, 1], in batches; the noise of batch b
    /// comes from seed + b, so a seed fixes the images. <paramref name="wrap"/> (optional) wraps the denoiser, for example to record sample 0's path.
    /// </summary>
    public static Tensor Sample(ImageModel model, UNet net, ImageSampleRequest r, Device? device = null,
        IProgress<SamplerStep>? progress = null, CancellationToken ct = default, Func<IDenoiser, IDenoiser>? wrap = null)
    {
        if (r.Count < 1) throw WaveGradException.About($"Count must be at least 1, not {r.Count}", "Count");
        var sampler = CreateSampler(model, r);
        var cfg = net.Config;
        var outs = new List<Tensor>();
        using var _ = no_grad();
        for (int b = 0, start = 0; start < r.Count; b++, start += r.BatchSize)
        {
            int n = Math.Min(r.BatchSize, r.Count - start);
            using var scope = NewDisposeScope();
            Tensor? classes = r.Class is int c ? full([n], (long)c, ScalarType.Int64) : null;
            if (device is not null && classes is not null) classes = classes.to(device);
            var d = CreateDenoiser(net, r, classes);
            if (wrap is not null && b == 0) d = wrap(d);
            var x = sampler.Sample(d, [n, cfg.Channels, cfg.ImageSize, cfg.ImageSize], new Generator((ulong)(r.Seed + b)),
                new SampleOptions { Device = device, Progress = progress, Cancellation = ct });
            outs.Add(x.cpu().clamp(-1, 1).MoveToOuterDisposeScope());
        }
        return cat(outs, 0);
    }

    /// <summary>
    /// Draws <see cref="ImageSampleRequest.Count"/> images of every class in turn (image i is of class i mod
    /// <paramref name="classes"/>, so a grid with that many columns shows one class per column) and returns them with their
    /// classes. Class c's images come from seed + 1000·c, so they do not depend on the count of the other classes.
    /// </summary>
    public static (Tensor Images, Tensor Classes) SampleEachClass(ImageModel model, UNet net, ImageSampleRequest r, int classes = 10,
        Device? device = null, IProgress<SamplerStep>? progress = null, CancellationToken ct = default)
    {
        if (r.Count < 1) throw WaveGradException.About($"Count must be at least 1, not {r.Count}", "Count");
        if (classes < 1) throw new WaveGradException($"classes must be at least 1, not {classes}");
        using var scope = NewDisposeScope();
        var parts = new List<Tensor>();
        for (int c = 0; c < Math.Min(classes, r.Count); c++)
        {
            int k = r.Count / classes + (c < r.Count % classes ? 1 : 0);
            parts.Add(Sample(model, net, r with { Class = c, Count = k, Seed = r.Seed + 1000 * c }, device, progress, ct));
        }
        // Interleave: position i takes image i / classes of class i % classes, whose images start at offsets[i % classes].
        var offsets = new long[parts.Count];
        for (int c = 1; c < parts.Count; c++) offsets[c] = offsets[c - 1] + parts[c - 1].shape[0];
        var order = Enumerable.Range(0, r.Count).Select(i => offsets[i % classes] + i / classes).ToArray();
        var labels = Enumerable.Range(0, r.Count).Select(i => (long)(i % classes)).ToArray();
        return (cat(parts, 0).index_select(0, tensor(order)).MoveToOuterDisposeScope(), tensor(labels).MoveToOuterDisposeScope());
    }
}

/// <summary>Quality measures for generated digits: classifier accuracy, the Fréchet distance in a classifier's feature space,
/// and speckle (stray bright pixels in the background).</summary>
public static class Evaluation
{
    /// <summary>
    /// Whether each image [N, 1, H, W] in [−1, 1] has a speckled background: more than <paramref name="share"/> of its
    /// background pixels brighter than 0.2 (in [0, 1]), where the background is everything farther than
    /// <paramref name="margin"/> pixels from the digit's strokes (pixels above 0.5). Real MNIST digits have none.
    /// </summary>
    public static bool[] Speckled(Tensor images, int margin = 2, double share = 0.02)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var x = ((images.cpu().to_type(ScalarType.Float32) + 1) / 2).clamp(0, 1);
        var strokes = (x > 0.5).to_type(ScalarType.Float32);
        var near = nn.functional.max_pool2d(strokes, 2 * margin + 1, stride: 1, padding: margin) > 0;
        var background = near.logical_not();
        var bright = (x > 0.2).logical_and(background).to_type(ScalarType.Float64).sum([1, 2, 3]);
        var size = background.to_type(ScalarType.Float64).sum([1, 2, 3]).clamp_min(1);
        return (bright / size > share).data<bool>().ToArray();
    }

    /// <summary>Fraction of images [N, C, H, W] the (clean-image) classifier labels as <paramref name="labels"/>.</summary>
    public static double Accuracy(DigitClassifier clf, Tensor images, Tensor labels, Device? device = null) =>
        Predict(clf, images, device).eq(labels.cpu()).to_type(ScalarType.Float64).mean().item<double>();

    /// <summary>The classifier's predicted class per image.</summary>
    public static Tensor Predict(DigitClassifier clf, Tensor images, Device? device = null) => Map(clf, images, device, (x, ln) => clf.call(x, ln).argmax(1));

    /// <summary>Penultimate features [N, 128] per image.</summary>
    public static Tensor Features(DigitClassifier clf, Tensor images, Device? device = null) => Map(clf, images, device, clf.Features);

    static Tensor Map(DigitClassifier clf, Tensor images, Device? device, Func<Tensor, Tensor, Tensor> f)
    {
        using var _ = no_grad();
        clf.eval();
        var outs = new List<Tensor>();
        for (long i = 0; i < images.shape[0]; i += 500)
        {
            using var scope = NewDisposeScope();
            var x = images[(int)i..(int)Math.Min(i + 500, images.shape[0])];
            if (device is not null) x = x.to(device);
            var ln = full([x.shape[0]], Math.Log(0.01), ScalarType.Float32, device: x.device);
            outs.Add(f(x, ln).cpu().MoveToOuterDisposeScope());
        }
        return cat(outs, 0);
    }

    /// <summary>
    /// Fréchet distance between Gaussians fitted to two feature sets [N, D]: ‖μ₁ − μ₂‖² + tr(Σ₁ + Σ₂ − 2(Σ₁Σ₂)^½),
    /// with tr((Σ₁Σ₂)^½) = Σ √λ of the symmetric matrix Σ₁^½ Σ₂ Σ₁^½ (computed in float64).
    /// </summary>
    public static double FrechetDistance(Tensor a, Tensor b)
    {
        var (m1, c1) = Moments(a);
        var (m2, c2) = Moments(b);
        var s1 = SqrtPsd(c1);
        var inner = s1 * c2 * s1;
        inner = (inner + inner.Transpose()) / 2;
        double trSqrt = inner.Evd(Symmetricity.Symmetric).EigenValues.Sum(e => Math.Sqrt(Math.Max(e.Real, 0)));
        return (m1 - m2).DotProduct(m1 - m2) + c1.Trace() + c2.Trace() - 2 * trSqrt;
    }

    static (Vector<double> Mean, Matrix<double> Cov) Moments(Tensor f)
    {
        var x = f.to_type(ScalarType.Float64).cpu();
        int n = (int)x.shape[0], d = (int)x.shape[1];
        if (n < 2) throw new ArgumentException("need at least two feature vectors");
        var data = x.contiguous().data<double>().ToArray();
        var m = Matrix<double>.Build.Dense(d, n, (i, j) => data[j * d + i]);   // columns are samples
        var mean = m.RowSums() / n;
        var centered = m - Matrix<double>.Build.Dense(d, n, (i, _) => mean[i]);
        return (mean, centered * centered.Transpose() / (n - 1));
    }

    static Matrix<double> SqrtPsd(Matrix<double> m)
    {
        var evd = m.Evd(Symmetricity.Symmetric);
        var vals = evd.EigenValues.Map(e => Math.Sqrt(Math.Max(e.Real, 0)));
        return evd.EigenVectors * Matrix<double>.Build.DiagonalOfDiagonalVector(vals) * evd.EigenVectors.Transpose();
    }
}
