using System.CommandLine;
using System.Globalization;
using WaveGradSharp.Audio;
using WaveGradSharp.Core;

namespace WaveGradSharp.Cli;

/// <summary><c>wavegrad mel | griffinlim | eval</c>: the audio frontend, the Griffin-Lim baseline and the yardsticks.</summary>
static class AudioCommands
{
    static Option<string> Preset(string? fallback = MelConfig.DefaultPreset) => new("--preset")
    {
        Description = $"Mel preset: {string.Join(", ", MelConfig.PresetNames)}" + (fallback is null ? "" : $" (default {fallback})"),
        DefaultValueFactory = fallback is null ? null! : _ => fallback,
    };

    static Option<bool> FramesFirst(string verb) => new("--frames-first")
    { Description = $"The .npy is laid out [frames, n_mels] instead of [n_mels, frames] ({verb})" };

    static string F(double v, string fmt = "F4") =>
        double.IsPositiveInfinity(v) ? "inf" : v.ToString(fmt, CultureInfo.InvariantCulture);

    /// <summary><c>wavegrad mel IN.wav -o OUT.npy [--preset NAME] [--png spec.png]</c>.</summary>
    public static Command Mel()
    {
        var input = new Argument<string>("input") { Description = "WAV file (PCM 8/16/24/32-bit or float; any rate and channel count)" };
        var output = Cli.Output("Write the log-mel here as float32 .npy [n_mels, frames]", required: false);
        var preset = Preset();
        var png = new Option<string>("--png") { Description = "Also draw a labelled spectrogram PNG here" };
        var framesFirst = FramesFirst("write it transposed");
        var maxSeconds = Cli.MaxSeconds();
        var cmd = new Command("mel", "Compute the log-mel spectrogram of a WAV file (resampled to the preset's " +
            "rate)") { input, output, preset, png, framesFirst, maxSeconds };
        cmd.SetAction(pr => Cli.Run(pr, () =>
        {
            var cfg = MelConfig.Preset(pr.GetValue(preset)!);
            string? o = pr.GetValue(output), p = pr.GetValue(png);
            var r = AudioFiles.MelFromWav(pr.GetValue(input)!, o, p, cfg, pr.GetValue(framesFirst), pr.GetValue(maxSeconds));
            string shape = pr.GetValue(framesFirst) ? $"[{r.Frames}, {r.NMels}] (frames first)" : $"[{r.NMels}, {r.Frames}]";
            Console.WriteLine($"{pr.GetValue(input)}: {F(r.Seconds, "F2")} s at {cfg.SampleRate} Hz → log-mel {shape}, preset {cfg.Name}");
            if (o != null) Console.WriteLine($"wrote {o}");
            if (p != null) Console.WriteLine($"wrote {p}");
            return 0;
        }));
        return cmd;
    }

    /// <summary><c>wavegrad griffinlim IN.npy -o OUT.wav [--preset NAME] [--iters 64]</c>.</summary>
    public static Command GriffinLim()
    {
        var input = new Argument<string>("input") { Description = ".npy log-mel [n_mels, frames] or [batch, n_mels, frames]" };
        var output = Cli.Output("WAV file to write (a batch writes OUT-0.wav, OUT-1.wav, …)");
        var preset = Preset();
        var iters = new Option<int>("--iters")
        {
            Description = "Griffin-Lim iterations", DefaultValueFactory = _ => Vocoder.SynthesisOptions.BaselineGriffinLimIterations,
        };
        var momentum = new Option<double>("--momentum")
        {
            Description = "Fast Griffin-Lim momentum; 0 gives classic Griffin-Lim",
            DefaultValueFactory = _ => 0.99,
        };
        var framesFirst = FramesFirst("read it transposed");
        var float32 = new Option<bool>("--float32") { Description = "Write 32-bit float samples instead of 16-bit PCM" };
        var cmd = new Command("griffinlim", "Render a log-mel with Griffin-Lim (the non-neural baseline)")
            { input, output, preset, iters, momentum, framesFirst, float32 };
        cmd.SetAction(pr => Cli.Run(pr, () =>
        {
            var cfg = MelConfig.Preset(pr.GetValue(preset)!);
            int n = pr.GetValue(iters);
            double m = pr.GetValue(momentum);
            if (n < 0) throw new WaveGradException($"--iters {n}: must be 0 or more");
            if (!(m >= 0 && m < 1)) throw new WaveGradException($"--momentum {m}: must be in [0, 1)");
            var sw = System.Diagnostics.Stopwatch.StartNew();
            var files = AudioFiles.GriffinLimToWav(pr.GetValue(input)!, pr.GetValue(output)!, cfg, n, m, pr.GetValue(framesFirst), pr.GetValue(float32));
            foreach (var f in files)
            {
                var info = Wav.Probe(f);
                Console.WriteLine($"wrote {f}: {F(info.Seconds, "F2")} s at {info.SampleRate} Hz ({n} iterations, momentum " +
                    $"{F(m, "G3")}, preset {cfg.Name}, {F(sw.Elapsed.TotalSeconds, "F1")} s)");
            }
            return 0;
        }));
        return cmd;
    }

    /// <summary><c>wavegrad eval --ref A --test B</c>: two files, or two folders matched by file name.</summary>
    public static Command Eval()
    {
        var reference = new Option<string>("--ref") { Description = "Reference WAV file or folder", Required = true };
        var test = new Option<string>("--test") { Description = "Test WAV file or folder (files matched to the reference by name)", Required = true };
        var preset = Preset(fallback: null);
        preset.Description += "; sets the rate both are resampled to and the log-mel/MCD settings (default: the reference's own rate with hifigan-22k's " +
            "mel settings)";
        var cmd = new Command("eval", "Score test audio against reference audio (log-mel L1, MR-STFT, MCD, SNR, voicing F1, F0 error, periodicity)")
            { reference, test, preset };
        cmd.SetAction(pr => Cli.Run(pr, () =>
        {
            var name = pr.GetValue(preset);
            var cfg = name is null ? null : MelConfig.Preset(name);
            var (rows, unmatched) = AudioFiles.Evaluate(pr.GetValue(reference)!, pr.GetValue(test)!, cfg);
            int w = Math.Max(8, rows.Max(r => r.Name.Length));
            string[] columns = ["SC", "logmag", "MR-STFT", "MCD dB", "SNR dB", "V/UV F1", "F0 cents", "period.", "voiced", "seconds"];
            Console.WriteLine($"{"file".PadRight(w)} {"logmel-L1",10} {string.Join(' ', columns.Select(c => c.PadLeft(8)))}");
            string refPath = pr.GetValue(reference)!;
            int sr = cfg?.SampleRate ?? Wav.Probe(Directory.Exists(refPath) ? Path.Combine(refPath, rows[0].Name) : refPath).SampleRate;
            void Row(string label, AudioMetrics m) =>
                Console.WriteLine($"{label.PadRight(w)} {F(m.LogMelL1),10} {F(m.SpectralConvergence),8} {F(m.LogMagnitude),8} {F(m.MrStft),8} " +
                    $"{F(m.Mcd, "F3"),8} {F(m.Snr, "F2"),8} {F(m.Pitch.VoicingF1, "F3"),8} {F(m.Pitch.F0RmseCents, "F1"),8} " +
                    $"{F(m.Pitch.PeriodicityRmse, "F3"),8} {F(m.Pitch.VoicedPeriodicityRmse, "F3"),8} {F((double)m.Samples / sr, "F2"),8}");
            foreach (var r in rows) Row(r.Name, r.Metrics);
            if (rows.Count > 1) Row($"mean ({rows.Count})", AudioFiles.Mean(rows));
            if (unmatched.Count > 0) Console.WriteLine($"{unmatched.Count} file(s) without a partner, not scored: " +
                $"{string.Join(", ", unmatched.Take(10))}{(unmatched.Count > 10 ? ", …" : "")}");
            Console.WriteLine($"mel settings: {cfg?.Name ?? Metrics.DefaultMel(sr).Name}; MR-STFT resolutions (n_fft, win, hop) = " +
                $"{string.Join(" ", Metrics.Resolutions.Select(x => $"({x.NFft}, {x.Win}, {x.Hop})"))}");
            return 0;
        }));
        return cmd;
    }
}
