using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using WaveGradSharp.Audio;
using WaveGradSharp.Diffusion;
using WaveGradSharp.Vocoder;
using TorchSharp;
using static TorchSharp.torch;
using WaveGradSharp.Core;

namespace WaveGradSharp.Cli;

/// <summary><c>wavegrad vocode|resynth|voices|voice import|train vocoder|schedule search</c>.</summary>
static class VocoderCommands
{
    public static string DefaultVoice => Voice.DefaultName;

    static Option<string> VoiceOpt() => new("--voice") { Description = $"Voice name (under voices/) or folder", DefaultValueFactory = _ => DefaultVoice };
    internal static Option<string?> StepsOpt() => new("--steps")
    {
        Description = "wavegrad sampler: a schedule (step count, name or JSON file); other samplers: a count of levels (default: the voice's)",
    };
    static Option<string> WeightsOpt() => new Option<string>("--weights")
    {
        Description = "ema (default) or raw: which weights of a training run to render with",
        DefaultValueFactory = _ => "ema",
    }.AcceptOnlyFromAmong("ema", "raw");

    /// <summary>The render flags shared by vocode, resynth, speak and voice eval: the sampler, where it starts, consistency steps and
    /// the post-filter. A flag not given takes the voice's default (<see cref="Voice.RenderDefaults"/>) over
    /// <paramref name="defaults"/> (speak: <see cref="SynthesisOptions.LowLatency"/>).</summary>
    internal sealed class RenderFlags(SynthesisOptions? defaults = null)
    {
        readonly Option<string?> sampler = new Option<string?>("--sampler")
        {
            Description = "Sampler: wavegrad (--steps: a schedule), respaced, ddim, pc or ode (--steps: a count of levels); default: the voice's",
        }.AcceptOnlyFromAmong([.. Voice.SamplerNames]);
        readonly Option<double> eta = new("--eta") { Description = "DDIM's η in [0, 1] (0: deterministic)" };
        readonly Option<string?> start = new Option<string?>("--start")
        {
            Description = "Sampler start: noise or griffin-lim (the mel's Griffin-Lim waveform, noised); default: the voice's, else " +
                StartName((defaults ?? new()).Start),
        }.AcceptOnlyFromAmong("griffin-lim", "noise");
        readonly Option<int?> startIterations = new("--start-iterations")
        {
            Description = $"Iterations of the Griffin-Lim start (--start griffin-lim); default: the voice's, else {(defaults ?? new()).StartIterations}",
        };
        readonly Option<double?> startNoise = new("--start-noise")
        {
            Description = "Largest noise std in (0, 1] the sampler starts at from Griffin-Lim (levels noisier are skipped); default: the voice's, " +
                $"else {(defaults ?? new()).StartNoise}",
        };
        readonly Option<string?> startPhase = StartPhaseOption(defaults);
        readonly Option<string?> consistency = new("--consistency")
        {
            Description = "Griffin-Lim consistency in the first steps: none, project[:LEVELS[:ITERATIONS]] (GLA-Grad) or substitute[:LEVELS] " +
                $"(GLA-Grad++); default: the voice's, else {(defaults ?? new()).Consistency}",
        };
        readonly Option<int?> postFilter = new("--post-filter")
        {
            Description = $"Mel post-filter passes (0: the network's raw output); default: the voice's, else {(defaults ?? new()).PostFilterPasses}",
        };
        readonly Option<double?> postFilterMomentum = PostFilterMomentumOption();

        readonly Option<string> precision = PrecisionOpt();

        public void AddTo(Command cmd)
        {
            Option[] all = [sampler, eta, start, startIterations, startNoise, startPhase, consistency, postFilter, postFilterMomentum, precision];
            foreach (var o in all) cmd.Options.Add(o);
        }

        /// <summary>The --precision given.</summary>
        public string Precision(ParseResult pr) => pr.GetValue(precision)!;

        /// <summary>The render settings these flags, a schedule or step count and a seed make (the sampler always resolved).</summary>
        public SynthesisOptions Options(ParseResult pr, Vocoder.Vocoder vocoder, string? steps, long seed)
        {
            var voice = vocoder.Voice;
            var o = Overlay(voice.RenderDefaults(defaults), pr.GetValue(start), pr.GetValue(startIterations), pr.GetValue(startNoise),
                pr.GetValue(startPhase), pr.GetValue(consistency), pr.GetValue(postFilter), pr.GetValue(postFilterMomentum));
            if (o.PostFilterPasses < 0) throw new WaveGradException($"--post-filter {o.PostFilterPasses}: must be 0 or more");
            if (o.StartIterations < 1) throw new WaveGradException($"--start-iterations {o.StartIterations}: must be at least 1");
            if (!(o.StartNoise > 0 && o.StartNoise <= 1)) throw new WaveGradException($"--start-noise {o.StartNoise}: must be in (0, 1]");
            string? name = pr.GetValue(sampler);
            var chosen = name is null && steps is null && pr.GetResult(eta) is null
                ? voice.DefaultSampler
                : voice.Sampler(name ?? voice.DefaultSampler.Name, steps, pr.GetValue(eta));
            return o with { Sampler = chosen, Seed = seed };
        }
    }

    /// <summary><paramref name="defaults"/> with what --start, --start-iterations, --start-noise, --start-phase, --consistency,
    /// --post-filter and --post-filter-momentum gave (null: not given); the values are checked here or by the Vocoder.</summary>
    internal static SynthesisOptions Overlay(SynthesisOptions defaults, string? start, int? startIterations, double? startNoise, string? startPhase,
        string? consistency, int? postFilter, double? postFilterMomentum) =>
        defaults with
        {
            Start = start switch { null => defaults.Start, "noise" => SamplerStart.Noise, _ => SamplerStart.GriffinLim },
            StartIterations = startIterations ?? defaults.StartIterations,
            StartNoise = startNoise ?? defaults.StartNoise,
            StartPhase = startPhase is null ? defaults.StartPhase
                : SynthesisOptions.ParseStartPhase(startPhase) ?? throw new WaveGradException($"--start-phase {startPhase}: use gradient or random"),
            Consistency = consistency is null ? defaults.Consistency : ConsistencySteps.Parse(consistency, "--consistency"),
            PostFilterPasses = postFilter ?? defaults.PostFilterPasses,
            PostFilterMomentum = postFilterMomentum is not double m ? defaults.PostFilterMomentum
                : m >= 0 && m < 1 ? m : throw new WaveGradException($"--post-filter-momentum {m}: must be in [0, 1)"),
        };

    /// <summary>--post-filter-momentum: the post-filter's momentum β.</summary>
    internal static Option<double?> PostFilterMomentumOption() => new("--post-filter-momentum")
    {
        Description = "Momentum β in [0, 1) of the post-filter's passes (0: plain passes); default: the voice's, else 0",
    };

    /// <summary>--start-phase: where the Griffin-Lim start's iterations begin.</summary>
    internal static Option<string?> StartPhaseOption(SynthesisOptions? defaults) => new Option<string?>("--start-phase")
    {
        Description = "Phase the Griffin-Lim start's iterations begin from: gradient (integrated from the magnitude's phase gradients) or " +
            $"random; default: the voice's, else {SynthesisOptions.StartPhaseName((defaults ?? new()).StartPhase)}",
    }.AcceptOnlyFromAmong("gradient", "random");

    /// <summary>How --start names a start.</summary>
    internal static string StartName(SamplerStart s) => s == SamplerStart.Noise ? "noise" : "griffin-lim";

    /// <summary>"wavegrad, 6 levels from noise" or "ddim, 10 levels, last 7 run from Griffin-Lim": what a render ran.</summary>
    internal static string DescribeSteps(SynthesisOptions o)
    {
        var s = o.Sampler!;
        string what = o.Start == SamplerStart.Noise
            ? $"{s.Name}, {s.Levels.Count} levels from noise"
            : $"{s.Name}, {s.Levels.Count} levels, last {s.Levels.Count - s.StartLevel(o.StartNoise)} run from Griffin-Lim";
        return o.Consistency.Mode == ConsistencyMode.None ? what : $"{what}, {o.Consistency.Mode.ToString().ToLowerInvariant()} consistency on " +
            $"{o.Consistency.Levels}";
    }

    static Option<bool> PlayOpt() => new("--play") { Description = "Play the result after writing it" };
    static Option<bool> Float32Opt() => new("--float32") { Description = "Write 32-bit float WAV instead of 16-bit PCM" };

    /// <summary>Loads a voice on a device; <c>--weights raw</c> swaps in a training run's raw weights.</summary>
    internal static Vocoder.Vocoder LoadVocoder(string voiceName, string device, string weights = "ema", string precision = "auto") =>
        LoadVocoder(Voice.Load(voiceName), device, weights, precision);

    /// <summary>As <see cref="LoadVocoder(string, string, string, string)"/>, for a voice already loaded.</summary>
    internal static Vocoder.Vocoder LoadVocoder(Voice voice, string device, string weights = "ema", string precision = "auto")
    {
        var dev = Devices.Resolve(device);
        return Vocoder.Vocoder.Load(voice, dev, weights == "raw" ? "model-raw.safetensors" : "model.safetensors", Devices.InferenceType(precision, dev));
    }

    /// <summary>--precision: the element type the network computes in.</summary>
    internal static Option<string> PrecisionOpt() => new Option<string>("--precision")
    {
        Description = "Network precision: auto (bf16 on CUDA and on CPUs with bf16 instructions), fp32 or bf16", DefaultValueFactory = _ => "auto",
    }.AcceptOnlyFromAmong("auto", "fp32", "bf16");

    static string Rtf(double seconds, long samples, int rate) =>
        $"{samples / (double)rate:F2} s of audio in {seconds:F2} s (real-time factor {seconds / (samples / (double)rate):F3}, " +
            $"{samples / (double)rate / seconds:F1}× real time)";

    public static Command Vocode()
    {
        var input = new Argument<string>("mel") { Description = ".npy mel [n_mels, frames] (3-D: a batch, written as OUT-0.wav, OUT-1.wav, …)" };
        var output = Cli.Output("Output WAV");
        var voice = VoiceOpt(); var steps = StepsOpt(); var seed = Cli.Seed(); var device = Cli.Device(); var weights = WeightsOpt();
        var framesFirst = new Option<bool>("--frames-first") { Description = "The .npy is [frames, n_mels]" };
        var framing = new Option<string>("--mel-framing")
        {
            Description = "Framing of the mel: hifigan, centered or voice (default: hifigan for hifigan-22k voices)",
        }
            .AcceptOnlyFromAmong("hifigan", "centered", "voice");
        var play = PlayOpt(); var f32 = Float32Opt();
        var stream = new Option<bool>("--stream") { Description = "Render with the streaming API (chunk by chunk, as speak and serve do)" };
        var flags = new RenderFlags();
        var cmd = new Command("vocode", "Render a mel spectrogram (.npy) to a " +
            "waveform") { input, output, voice, steps, seed, device, weights, framesFirst, framing, play, f32, stream };
        flags.AddTo(cmd);
        cmd.SetAction(pr => Cli.Run(pr, () =>
        {
            string inPath = pr.GetValue(input)!, outPath = pr.GetValue(output)!;
            var mel = MelFile.Load(inPath, pr.GetValue(framesFirst));
            using var vocoder = LoadVocoder(pr.GetValue(voice)!, pr.GetValue(device)!, pr.GetValue(weights)!, flags.Precision(pr));
            var mels = vocoder.CheckInputMels(mel, inPath);
            var inFraming = vocoder.Voice.InputFraming(pr.GetValue(framing));
            var opts = flags.Options(pr, vocoder, pr.GetValue(steps), pr.GetValue(seed));
            var sw = Stopwatch.StartNew();
            var written = AudioFiles.BatchPaths(outPath, mels.Count);
            long total = 0;
            for (int i = 0; i < mels.Count; i++)
            {
                // Written piece by piece, so memory stays flat however long the mel.
                using var wav = new WavStreamWriter(written[i], vocoder.SampleRate, pr.GetValue(f32));
                foreach (var piece in vocoder.SynthesizeInput(mels[i], inFraming, opts, pr.GetValue(stream))) wav.Write(piece);
                wav.Commit();
                total += wav.Samples;
            }
            double secs = sw.Elapsed.TotalSeconds;
            string moved = inFraming == vocoder.Voice.Mel.Framing ? "" : $", {Voice.FramingName(inFraming)} frames moved to the voice's";
            Console.WriteLine($"wrote {string.Join(", ", written)}: {Rtf(secs, total, vocoder.SampleRate)}, {DescribeSteps(opts)}{moved}; " +
                $"peak memory {Process.GetCurrentProcess().PeakWorkingSet64 / 1048576} MB");
            if (pr.GetValue(play)) Playback.TryPlay(written[0]);
            return 0;
        }));
        return cmd;
    }

    public static Command Resynth()
    {
        var input = new Argument<string>("wav") { Description = "Input WAV (any rate; resampled to the voice's)" };
        var output = Cli.Output("Output WAV");
        var voice = VoiceOpt(); var steps = StepsOpt(); var seed = Cli.Seed(); var device = Cli.Device(); var weights = WeightsOpt();
        var play = PlayOpt(); var f32 = Float32Opt(); var maxSeconds = Cli.MaxSeconds();
        var stream = new Option<bool>("--stream") { Description = "Render with the streaming API (chunk by chunk)" };
        var flags = new RenderFlags();
        var cmd = new Command("resynth", "WAV → mel → WAV: what the vocoder makes of a " +
            "recording") { input, output, voice, steps, seed, device, weights, play, f32, stream, maxSeconds };
        flags.AddTo(cmd);
        cmd.SetAction(pr => Cli.Run(pr, () =>
        {
            using var vocoder = LoadVocoder(pr.GetValue(voice)!, pr.GetValue(device)!, pr.GetValue(weights)!, flags.Precision(pr));
            var samples = AudioFiles.Read(pr.GetValue(input)!, vocoder.SampleRate, pr.GetValue(maxSeconds));
            using var spec = new MelSpectrogram(vocoder.Voice.Mel);
            var mel = spec.Compute(tensor(samples));
            var opts = flags.Options(pr, vocoder, pr.GetValue(steps), pr.GetValue(seed));
            var sw = Stopwatch.StartNew();
            float[] audio = pr.GetValue(stream) ? vocoder.SynthesizeStreaming(mel, opts).SelectMany(c => c).ToArray() : vocoder.Synthesize(mel, opts);
            double secs = sw.Elapsed.TotalSeconds;
            audio = audio[..Math.Min(audio.Length, samples.Length)];
            Wav.Write(pr.GetValue(output)!, audio, vocoder.SampleRate, pr.GetValue(f32));
            var m = Metrics.Compute(samples, audio, vocoder.SampleRate, vocoder.Voice.Mel);
            Console.WriteLine($"wrote {pr.GetValue(output)}: {Rtf(secs, audio.Length, vocoder.SampleRate)}, {DescribeSteps(opts)}");
            Console.WriteLine($"against the input: log-mel L1 {m.LogMelL1:F3}, spectral convergence {m.SpectralConvergence:F3}, log-magnitude " +
                $"{m.LogMagnitude:F3}");
            if (pr.GetValue(play)) Playback.TryPlay(pr.GetValue(output)!);
            return 0;
        }));
        return cmd;
    }

    public static Command Voices()
    {
        var cmd = new Command("voices", "List the voices found, with rate, preset, size and card");
        cmd.SetAction(pr => Cli.Run(pr, () =>
        {
            var dirs = Voice.Available().ToList();
            if (dirs.Count == 0) { Console.WriteLine($"no voices found (looked in {string.Join(", ", Voice.Library.SearchPath())})"); return 0; }
            Console.WriteLine($"{"voice",-16} {"rate",6} {"preset",-13} {"params",10} {"MB",6}  card");
            foreach (var d in dirs)
            {
                try
                {
                    var v = Voice.Load(d);
                    double mb = Directory.GetFiles(d).Sum(f => new FileInfo(f).Length) / 1048576.0;
                    var t = v.Card["training"] as JsonObject;
                    string spent = t?["cpu_minutes_in_all"] is JsonNode cpu ? $"{cpu} CPU min" : $"{t?["wall_minutes"]} min";
                    string card = t is null ? ""
                        : $"{t["steps"]} steps, {t["train_minutes"]} min of {t["corpus"] ?? "speech"}, {spent} on {t["hardware"]}";
                    Console.WriteLine($"{v.Name,-16} {v.SampleRate,6} {v.Mel.Name,-13} {v.Card["parameters"],10} {mb,6:F1}  {card}");
                }
                catch (Exception e) { Console.WriteLine($"{Path.GetFileName(d),-16} unreadable: {e.Message.Split('\n')[0]}"); }
            }
            return 0;
        }, needsTorch: false));
        return cmd;
    }

    public static Command VoiceImport()
    {
        var input = new Argument<string>("weights") { Description = "PyTorch checkpoint (.pt) of lmnt-com/wavegrad's layout" };
        var preset = new Option<string>("--preset") { Description = "Mel preset the checkpoint was trained with", DefaultValueFactory = _ => "lmnt-22k" };
        var output = Cli.Output("Voice folder to write, e.g. voices/NAME");
        var import = new Command("import", "Import a PyTorch WaveGrad checkpoint as a voice (no pickled code runs)") { input, preset, output };
        import.SetAction(pr => Cli.Run(pr, () =>
        {
            var v = PyTorchImport.ImportVoice(pr.GetValue(input)!, pr.GetValue(preset)!, pr.GetValue(output)!);
            Console.WriteLine($"wrote voice '{v.Name}' to {v.Directory}: {v.Card["parameters"]} parameters, preset {v.Mel.Name}, {v.SampleRate} Hz");
            return 0;
        }));
        var run = new Argument<string>("run") { Description = "A training run folder (or any voice folder)" };
        var exportOut = Cli.Output("Voice folder to write, e.g. voices/NAME");
        var fp32 = new Option<bool>("--fp32") { Description = "Keep fp32 weights (default: fp16, half the size)" };
        var card = new Option<string?>("--card") { Description = "JSON file whose fields are merged into voice.json" };
        var export = new Command("export", "Write a training run as a shippable voice (fp16 EMA weights and card)") { run, exportOut, fp32, card };
        export.SetAction(pr => Cli.Run(pr, () =>
        {
            var v = Voice.Load(pr.GetValue(run)!);
            var extra = pr.GetValue(card) is string c ? InputFile.ReadJsonObject(c, "card file") : null;
            v.Export(pr.GetValue(exportOut)!, half: !pr.GetValue(fp32), extraCard: extra);
            double mb = Directory.GetFiles(pr.GetValue(exportOut)!).Sum(f => new FileInfo(f).Length) / 1048576.0;
            Console.WriteLine($"wrote {pr.GetValue(exportOut)} ({mb:F1} MB)");
            return 0;
        }));
        var voice = new Command("voice", "Manage voice bundles") { import, export, VoiceEval() };
        return voice;
    }

    static Command VoiceEval()
    {
        var voice = VoiceOpt(); var steps = StepsOpt(); var seed = Cli.Seed(); var device = Cli.Device();
        var data = new Option<string>("--data") { Description = "Speaker folders (scripts/build-multispeaker.sh) or one corpus", Required = true };
        var heldOut = new Option<bool>("--held-out") { Description = "The speakers were never trained on: score their first clips, not val.txt" };
        var clips = new Option<int>("--clips") { Description = "Clips per speaker", DefaultValueFactory = _ => 3 };
        var seconds = new Option<double>("--seconds") { Description = "Seconds of each clip", DefaultValueFactory = _ => 4 };
        var output = Cli.Output("Also write the table here (TSV)", required: false);
        var settings = new Option<string>("--settings")
        {
            Description = "Rows to render, comma-separated: " +
                string.Join("; ", EvaluationSetting.Standard(new SynthesisOptions()).Select(s => $"{s.Name} ({s.Description})")),
            DefaultValueFactory = _ => "griffin-lim,shipped,plain,raw",
        };
        var renders = new Option<string?>("--renders") { Description = "Also write every clip and its renders here as WAV files (SPEAKER-CLIP.SETTING.wav)" };
        var flags = new RenderFlags();
        var cmd = new Command("eval", "Score a voice per speaker against Griffin-Lim: spectra (log-mel L1, SC, MR-STFT, MCD) and pitch " +
            "(V/UV F1, F0 RMSE in cents, periodicity RMSE over every frame and over the reference's voiced frames)")
            { voice, data, heldOut, clips, seconds, steps, seed, device, output, settings, renders };
        flags.AddTo(cmd);
        cmd.SetAction(pr => Cli.Run(pr, () =>
        {
            using var vocoder = LoadVocoder(pr.GetValue(voice)!, pr.GetValue(device)!, precision: flags.Precision(pr));
            var how = flags.Options(pr, vocoder, pr.GetValue(steps), pr.GetValue(seed));
            string? rendersDir = pr.GetValue(renders);
            if (rendersDir is not null) Directory.CreateDirectory(rendersDir);
            void Write(string speaker, string clip, string setting, float[] audio) =>
                Wav.Write(Path.Combine(rendersDir!, FileNamePart($"{(speaker.Length > 0 ? speaker : "corpus")}-{clip}.{setting}") + ".wav"), audio,
                    vocoder.SampleRate);
            var rows = VoiceEvaluation.Run(vocoder, pr.GetValue(data)!, EvaluationSetting.Select(how, pr.GetValue(settings)!),
                pr.GetValue(clips), pr.GetValue(seconds), pr.GetValue(heldOut), line => Console.Error.WriteLine(Text.Escape(line, 2000)),
                rendered: rendersDir is null ? null : Write);
            var lines = new List<string>
            {
                "speaker\tsetting\tclips\tlogmel_l1\tsc\tlogmag\tmrstft\tmcd\tvuv_f1\tf0_cents\tperiodicity\tperiodicity_voiced",
            };
            lines.AddRange(rows.Select(r => string.Join('\t', r.Speaker, r.Setting, r.Clips, F(r.LogMelL1), F(r.SpectralConvergence), F(r.LogMagnitude),
                F(r.MrStft), F(r.Mcd), F(r.VoicingF1), r.F0RmseCents.ToString("F1", CultureInfo.InvariantCulture), F(r.PeriodicityRmse),
                F(r.VoicedPeriodicityRmse))));
            Console.WriteLine($"voice {vocoder.Voice.Name}, shipped and noise rows: {DescribeSteps(how)}, " +
                $"{(pr.GetValue(heldOut) ? "held-out speakers" : "validation clips")}");
            int width = Math.Max(14, rows.Max(r => Math.Max(r.Speaker.Length, r.Setting.Length)));   // the name columns line up
            foreach (var l in lines) Console.WriteLine(string.Join("  ", l.Split('\t').Select((c, i) => i < 2 ? c.PadRight(width) : c.PadLeft(9))));
            if (pr.GetValue(output) is string path) AtomicFile.WriteAllText(path, string.Join('\n', lines) + "\n");
            return 0;
        }));
        return cmd;

        static string F(double x) => x.ToString("F4", CultureInfo.InvariantCulture);
        // Speaker and clip names are folder and file names already; anything that could leave the folder becomes '_'.
        static string FileNamePart(string s) =>
            string.Concat(s.Select(c => char.IsControl(c) || c is '/' or '\\' || Path.GetInvalidFileNameChars().Contains(c) ? '_' : c));
    }

    /// <summary><c>wavegrad corpus pack</c>: a corpus with Opus-compressed audio, for the GPU machine's small upload.</summary>
    public static Command Corpus()
    {
        var input = new Argument<string>("corpus") { Description = "Speaker folders or one corpus (LJSpeech layout)" };
        var output = Cli.Output("Folder to write");
        var bitrate = new Option<int>("--bitrate") { Description = "Opus bits per second", DefaultValueFactory = _ => 28_000 };
        var minutes = new Option<double>("--minutes-per-speaker")
        {
            Description = "Most minutes of each speaker's training audio",
            DefaultValueFactory = _ => double.PositiveInfinity,
        };
        var preset = new Option<string>("--preset") { Description = "Mel preset of the compression check", DefaultValueFactory = _ => MelConfig.DefaultPreset };
        var pack = new Command("pack", "Copy a corpus with Opus-compressed audio (.wgopus)") { input, output, bitrate, minutes, preset };
        pack.SetAction(pr => Cli.Run(pr, () =>
        {
            var r = CorpusPacking.Pack(pr.GetValue(input)!, pr.GetValue(output)!, MelConfig.Preset(pr.GetValue(preset)!), pr.GetValue(bitrate),
                pr.GetValue(minutes), progress: line => Console.Error.WriteLine(line));
            Console.WriteLine($"wrote {pr.GetValue(output)}: {r.Files} files, {r.Seconds / 3600:F2} h of audio in {r.Bytes / 1048576.0:F1} MB " +
                $"({r.Bytes * 8 / r.Seconds / 1000:F1} kb/s); decoded against original, log-mel L1 {r.LogMelL1:F4} on {r.Scored} clips");
            return 0;
        }));
        var packed = new Argument<string>("packed") { Description = "A folder written by corpus pack" };
        var unpackOut = Cli.Output("Folder to write WAVs to");
        var rate = new Option<int>("--sample-rate") { Description = "Rate of the WAVs", DefaultValueFactory = _ => 22050 };
        var unpack = new Command("unpack", "Decode a packed corpus back to WAV files, on all cores") { packed, unpackOut, rate };
        unpack.SetAction(pr => Cli.Run(pr, () =>
        {
            var sw = Stopwatch.StartNew();
            int n = CorpusPacking.Unpack(pr.GetValue(packed)!, pr.GetValue(unpackOut)!, pr.GetValue(rate));
            Console.WriteLine($"wrote {n} WAV files to {pr.GetValue(unpackOut)} in {sw.Elapsed.TotalSeconds:F1} s");
            return 0;
        }, needsTorch: false));
        return new Command("corpus", "Speech corpora") { pack, unpack };
    }

    public static Command Train()
    {
        var data = new Option<string>("--data") { Description = "Folder of WAVs (recursive) or LJSpeech layout (metadata.csv + wavs/)", Required = true };
        var output = Cli.Output("Run folder: becomes a voice bundle, with checkpoint/ inside");
        var preset = new Option<string>("--preset") { Description = "Mel preset", DefaultValueFactory = _ => MelConfig.DefaultPreset };
        var architecture = new Option<string>("--architecture")
        {
            Description = "Network kind: wavegrad (audio-rate WaveGrad) or stft (a frame-rate ConvNeXt denoiser over STFT frames)",
            DefaultValueFactory = _ => VocoderArchitectures.Default,
        }.AcceptOnlyFromAmong([.. VocoderArchitectures.Names]);
        var size = new Option<string>("--size")
        {
            Description = "wavegrad: small (CPU), base (15.9 M with 128 mels) or large; stft: tiny, small (4.3 M) or base",
            DefaultValueFactory = _ => "small",
        };
        var steps = new Option<long>("--steps") { Description = "Train until this step", DefaultValueFactory = _ => 1000 };
        var batch = new Option<int>("--batch") { Description = "Crops per step", DefaultValueFactory = _ => 8 };
        var crop = new Option<int>("--crop-frames") { Description = "Mel frames per crop", DefaultValueFactory = _ => 24 };
        var lr = new Option<double>("--lr") { Description = "Adam learning rate", DefaultValueFactory = _ => 2e-4 };
        var loss = new Option<string>("--loss")
        {
            Description = "l1 (WaveGrad) or l2: on ε, or for the stft kind on x̂₀ in units of c_out", DefaultValueFactory = _ => "l1",
        }.AcceptOnlyFromAmong("l1", "l2");
        var ckpt = new Option<int>("--checkpoint-every") { Description = "Checkpoint interval (steps)", DefaultValueFactory = _ => 500 };
        var val = new Option<int>("--validate-every") { Description = "Validation interval (steps; 0 = never)", DefaultValueFactory = _ => 500 };
        var logEvery = new Option<int>("--log-every") { Description = "Progress line interval (steps)", DefaultValueFactory = _ => 10 };
        var resume = new Option<bool>("--resume") { Description = "Continue the checkpoint in the run folder" };
        var bf16 = new Option<bool>("--bf16") { Description = "bf16 weights and activations with fp32 master weights (for CUDA)" };
        var dil = new Option<string>("--dilations")
        {
            Description = "UBlock dilation order: paper or lmnt",
            DefaultValueFactory = _ => "paper",
        }.AcceptOnlyFromAmong("paper", "lmnt");
        var scale = new Option<double>("--noise-scale") { Description = "Noise-level encoding scale (paper 5000, lmnt 1)", DefaultValueFactory = _ => 5000 };
        var maxFiles = new Option<int>("--max-files") { Description = "Load at most this many files", DefaultValueFactory = _ => int.MaxValue };
        var maxMinutes = new Option<double>("--max-minutes")
        {
            Description = "Stop with a checkpoint after this many minutes",
            DefaultValueFactory = _ => double.PositiveInfinity,
        };
        var initFrom = new Option<string?>("--init-from") { Description = "Start from the weights of a voice or run folder" };
        var prior = new Option<string>("--prior") { Description = "Noise prior: standard or priorgrad", DefaultValueFactory = _ => "standard" }
            .AcceptOnlyFromAmong("standard", "priorgrad");
        var stftLoss = new Option<double>("--stft-loss") { Description = "Weight of the multi-resolution STFT loss on the one-step x0 estimate (0: off)" };
        var phaseLoss = new Option<double>("--phase-loss")
        {
            Description = "Weight of the phase-derivative loss (instantaneous frequency and group delay) on the one-step x0 estimate (0: off)",
        };
        var critic = new Option<double>("--critic")
        {
            Description = "Weight of an adversarial multi-period critic's loss on the x0 estimates of the noisier crops (0: none; stft only)",
        };
        var binGains = new Option<bool>("--bin-gains") { Description = "stft: also learn a gain per STFT bin on the noisy input (a Wiener-like mask)" };
        var wienerGains = new Option<bool>("--wiener-gains")
        {
            Description = "stft: bin gains as a Wiener mask whose logit is the level's and the prior's log SNR plus the learned gain (implies --bin-gains)",
        };
        var phasePrior = new Option<bool>("--phase-prior")
        {
            Description = "stft: also condition on the mel's least-squares magnitude with a phase from its gradients, and learn a complex gain on it",
        };
        var blocks = new Option<int>("--blocks")
        {
            Description = "stft: ConvNeXt blocks (0: the size's); with --init-from, blocks past the voice's start adding nothing",
        };
        var trainLevels = new Option<int>("--train-levels")
        {
            Description = "0: noise levels over the whole training schedule; N: only the N levels an N-step ddim render visits (its default sampler)",
        };
        var lowNoiseShare = new Option<double>("--low-noise-share")
        {
            Description = "Share of crops (0 to 1) whose noise level is drawn from the training schedule's first third (σ up to 0.86) instead of all of it",
        };
        var seed = Cli.Seed(); var device = Cli.Device();
        var vocoder = new Command("vocoder", "Train a diffusion vocoder (WaveGrad or the frame-rate STFT denoiser) on a folder of WAVs")
            {
                data, output, preset, architecture, size, steps, batch, crop, lr, loss, prior, stftLoss, phaseLoss, critic, binGains, wienerGains, phasePrior,
                blocks, trainLevels, lowNoiseShare, ckpt, val, logEvery, resume, bf16, dil, scale, maxFiles, maxMinutes, initFrom, seed, device,
            };
        vocoder.SetAction(pr => Cli.Run(pr, () =>
        {
            // Ctrl+C or SIGTERM stops at the end of the current step and writes a checkpoint (the trainer's finally block).
            return Cli.UntilStopped(ct => TrainVocoder(pr, ct));
        }));
        return new Command("train", "Train models") { vocoder };

        int TrainVocoder(ParseResult pr, CancellationToken ct)
        {
            var dev = Devices.Resolve(pr.GetValue(device));
            if (pr.GetValue(bf16) && dev.type != DeviceType.CUDA) throw new WaveGradException("--bf16 is for CUDA training; on the CPU train in fp32");
            VocoderTrainer.Run(new VocoderTrainingOptions
            {
                DataDir = pr.GetValue(data)!, OutputDir = pr.GetValue(output)!, Preset = pr.GetValue(preset)!, Size = pr.GetValue(size)!,
                Architecture = pr.GetValue(architecture)!,
                Steps = pr.GetValue(steps), BatchSize = pr.GetValue(batch), CropFrames = pr.GetValue(crop), LearningRate = pr.GetValue(lr),
                Loss = pr.GetValue(loss) == "l2" ? LossNorm.L2 : LossNorm.L1, CheckpointEvery = pr.GetValue(ckpt), ValidateEvery = pr.GetValue(val),
                LogEvery = pr.GetValue(logEvery), Resume = pr.GetValue(resume), Bf16 = pr.GetValue(bf16), Seed = pr.GetValue(seed), Device = dev,
                Dilations = pr.GetValue(dil) == "lmnt" ? DilationOrder.Lmnt : DilationOrder.Paper, NoiseScale = pr.GetValue(scale),
                MaxFiles = pr.GetValue(maxFiles),
                MaxMinutes = pr.GetValue(maxMinutes), InitFrom = pr.GetValue(initFrom), Prior = pr.GetValue(prior)!, StftLossWeight = pr.GetValue(stftLoss),
                PhaseLossWeight = pr.GetValue(phaseLoss), CriticWeight = pr.GetValue(critic),
                BinGains = pr.GetValue(binGains), WienerGains = pr.GetValue(wienerGains), PhasePrior = pr.GetValue(phasePrior), Blocks = pr.GetValue(blocks),
                TrainLevels = pr.GetValue(trainLevels), LowNoiseShare = pr.GetValue(lowNoiseShare),
            }, ct);
            return 0;
        }
    }

    public static Command ScheduleSearchCommand()
    {
        var voice = VoiceOpt();
        var data = new Option<string>("--data") { Description = "Corpus to score on (its validation clips)", Required = true };
        var steps = new Option<int>("--steps") { Description = "Schedule length", DefaultValueFactory = _ => 6 };
        var output = Cli.Output("Schedule JSON to write (e.g. voices/V/schedule-6.json)");
        var clips = new Option<int>("--clips") { Description = "Validation clips to score", DefaultValueFactory = _ => 3 };
        var seconds = new Option<double>("--seconds") { Description = "Seconds of each clip to render", DefaultValueFactory = _ => 1.5 };
        var sweeps = new Option<int>("--sweeps") { Description = "Coordinate-descent sweeps over the steps", DefaultValueFactory = _ => 2 };
        var device = Cli.Device();
        var save = new Option<bool>("--save-to-voice") { Description = "Also record the schedule in the voice's voice.json (schedules.N)" };
        var metric = new Option<string>("--metric")
        {
            Description = "logmel (raw render's log-mel L1), sc (spectral convergence with the post-filter) or sc-raw (without it)",
            DefaultValueFactory = _ => "logmel",
        }.AcceptOnlyFromAmong("logmel", "sc", "sc-raw");
        var sampler = new Option<string>("--sampler")
        {
            Description = "wavegrad (a β list for WaveGrad's sampler) or ddim (which timesteps of the training schedule DDIM visits)",
            DefaultValueFactory = _ => "wavegrad",
        }.AcceptOnlyFromAmong("wavegrad", "ddim");
        var cmd = new Command("search", "Search a few-step noise schedule for a voice on validation clips")
            { voice, data, steps, output, clips, seconds, sweeps, metric, sampler, device, save };
        cmd.SetAction(pr => Cli.Run(pr, () =>
        {
            using var vocoder = LoadVocoder(pr.GetValue(voice)!, pr.GetValue(device)!);
            var mel = vocoder.Voice.Mel;
            // Only the validation clips are read (a whole corpus would be loaded for nothing); a folder without
            // any falls back to its first files.
            var ds = VocoderDataset.Load(pr.GetValue(data)!, mel, 1, validationOnly: true);
            var pool = ds.Validation.Count > 0 ? ds.Validation : VocoderDataset.Load(pr.GetValue(data)!, mel, 1, maxFiles: pr.GetValue(clips)).Train;
            long maxF = (long)(pr.GetValue(seconds) * mel.SampleRate / mel.Hop);
            // Clips spread evenly over the pool, so that a multi-speaker corpus's validation list gives several speakers.
            int want = Math.Min(pr.GetValue(clips), pool.Count);
            var picked = Enumerable.Range(0, want).Select(i => pool[(int)((long)i * pool.Count / want)]).Select(u =>
            {
                long f = Math.Min(u.Frames, maxF);
                return new Utterance(u.Name, u.Audio[..(int)(f * mel.Hop)], u.Mel[.., ..(int)f]);
            }).ToList();
            var (how, label) = pr.GetValue(metric) switch
            {
                "sc" => (ScheduleMetric.SpectralConvergence, "spectral convergence (renders from noise, post-filter on)"),
                "sc-raw" => (ScheduleMetric.RawSpectralConvergence, "spectral convergence (raw renders from noise)"),
                _ => (ScheduleMetric.LogMelL1, "log-mel L1 (raw renders from noise)"),
            };
            int n = pr.GetValue(steps);
            if (pr.GetValue(sampler) == "ddim")
            {
                if (pr.GetValue(save)) throw new WaveGradException("--save-to-voice: a DDIM level list goes in a card's default_sampler; " +
                    "copy it from the file -o writes");
                Console.WriteLine($"searching DDIM's {n} levels from evenly spaced ones, scored by {label} on {picked.Count} clip(s)");
                var clock = Stopwatch.StartNew();
                var (levels, levelScore) = ScheduleSearch.SearchLevels(vocoder, picked, n, pr.GetValue(sweeps), new SyncProgress<LevelSearchStep>(s =>
                    Console.WriteLine($"[{clock.Elapsed:mm\\:ss}] candidate {s.Evaluated,3}: [{string.Join(",", s.Timesteps)}] {label} {s.Score:F4} " +
                        $"(best {s.BestScore:F4})")), metric: how);
                var card = new JsonObject { ["name"] = "ddim", ["steps"] = string.Join(",", levels) };
                AtomicFile.WriteAllText(pr.GetValue(output)!, card.ToJsonString(new() { WriteIndented = true }) + "\n");
                Console.WriteLine($"best {n} levels: --sampler ddim --steps {string.Join(",", levels)}, {label} {levelScore:F4}; " +
                    $"wrote {pr.GetValue(output)} (a card's default_sampler)");
                return 0;
            }
            var start = vocoder.Voice.DefaultSchedule;
            Console.WriteLine(start.Steps == n
                ? $"searching from the voice's default schedule ({start.Name}), scored by {label} on {picked.Count} clip(s)"
                : $"searching from mantissa 1 at 1e-6 … 1e-1 (the voice's default has {start.Steps} steps), scored by {label} on {picked.Count} clip(s)");
            var sw = Stopwatch.StartNew();
            var (best, score) = ScheduleSearch.Run(vocoder, picked, n, pr.GetValue(sweeps), new SyncProgress<SearchStep>(s =>
                Console.WriteLine($"[{sw.Elapsed:mm\\:ss}] candidate {s.Evaluated,3}: " +
                    $"[{string.Join(", ", s.Betas.Select(b => b.ToString("0.#e0", CultureInfo.InvariantCulture)))}] {label} {s.Score:F4} " +
                    $"(best {s.BestScore:F4})")), metric: how, start: start);
            best.Save(pr.GetValue(output)!);
            Console.WriteLine($"best {n}-step schedule: " +
                $"[{string.Join(", ", best.Betas.Select(b => b.ToString("G3", CultureInfo.InvariantCulture)))}], {label} {score:F4}; " +
                $"wrote {pr.GetValue(output)}");
            if (pr.GetValue(save))
            {
                var card = (JsonObject)vocoder.Voice.Card.DeepClone();
                var so = card["schedules"] as JsonObject ?? new JsonObject();
                so[n.ToString()] = JsonNode.Parse(new NoiseSchedule(best.Betas, $"searched-{n}").ToJson());
                card["schedules"] = so;
                vocoder.Voice.SaveCard(card);
                Console.WriteLine($"recorded as schedules.{n} in {Path.Combine(vocoder.Voice.Directory, "voice.json")}");
            }
            return 0;
        }));
        return cmd;
    }
}

/// <summary>An <see cref="IProgress{T}"/> that reports on the calling thread.</summary>
sealed class SyncProgress<T>(Action<T> report) : IProgress<T>
{
    public void Report(T value) => report(value);
}
