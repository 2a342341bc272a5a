using System.Runtime.InteropServices;
using System.CommandLine;
using TorchSharp;
using WaveGradSharp.Diffusion;
using WaveGradSharp.Core;

namespace WaveGradSharp.Cli;

/// <summary>Options shared by every verb, and the error handling that turns exceptions into one line and exit code 2.</summary>
static class Cli
{
    public static readonly Option<bool> Verbose = new("--verbose") { Description = "Show stack traces and extra detail", Recursive = true };

    public static Option<string> Output(string description, bool required = true) =>
        new("--output", "-o") { Description = description, Required = required };

    /// <summary>The longest input WAV read (Wav.DefaultMaxSeconds unless raised).</summary>
    public static Option<double> MaxSeconds() => new("--max-seconds") { Description = "Refuse input audio longer than this", DefaultValueFactory = _ => 3600 };

    public static Option<long> Seed() => new("--seed") { Description = "Random seed (same seed, same bits on the CPU)", DefaultValueFactory = _ => 1234 };

    public static Option<string> Device() => new Option<string>("--device")
    { Description = "Where tensors live: auto (CUDA when available), cpu or cuda", DefaultValueFactory = _ => "auto" }
        .AcceptOnlyFromAmong("auto", "cpu", "cuda");

    /// <summary>
    /// Runs <paramref name="body"/> with a token that SIGINT (Ctrl+C) or SIGTERM cancels instead of killing the process, so that a
    /// training run ends its step and writes its checkpoint. Both signals count: a job started in the background with
    /// <c>nohup … &amp;</c> ignores SIGINT, and <c>kill</c>, systemd and <c>docker stop</c> send SIGTERM.
    /// </summary>
    public static int UntilStopped(Func<CancellationToken, int> body)
    {
        using var cts = new CancellationTokenSource();
        void Stop(PosixSignalContext context)
        {
            context.Cancel = true;
            cts.Cancel();
        }
        using var interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, Stop);
        using var terminate = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Stop);
        return body(cts.Token);
    }

    /// <summary>Runs a verb's body: user errors become one line on stderr and exit code 2.</summary>
    public static int Run(ParseResult pr, Func<int> body, bool needsTorch = true)
    {
        bool verbose = pr.GetValue(Verbose);
        try
        {
            if (needsTorch) EnsureTorch();
            return body();
        }
        catch (OperationCanceledException)
        {
            Console.Error.WriteLine("interrupted");
            return 130;
        }
        catch (Exception e)
        {
            var inner = e is TypeInitializationException { InnerException: not null } ? e.InnerException! : e;
            Console.Error.WriteLine($"error: {Message(inner)}");
            if (verbose) Console.Error.WriteLine(e);
            return 2;
        }
    }

    /// <summary>Reports a command line that did not parse: its errors on one line, with where to find the usage; exit code 2.</summary>
    public static int ParseErrors(ParseResult pr)
    {
        var verbs = new List<string>();
        for (var r = pr.CommandResult; r is { Command: not RootCommand }; r = r.Parent as System.CommandLine.Parsing.CommandResult)
            verbs.Insert(0, r.Command.Name);
        string help = string.Join(' ', ["wavegrad", .. verbs, "--help"]);
        Console.Error.WriteLine($"error: {Text.Escape(string.Join("; ", pr.Errors.Select(Named)), 2000)} (see {help})");
        return 2;
    }

    /// <summary>A parse error on one line, led by the option it is about ("--start-phase: Argument 'zero' not recognized…").</summary>
    static string Named(System.CommandLine.Parsing.ParseError e)
    {
        var option = e.SymbolResult switch
        {
            System.CommandLine.Parsing.OptionResult o => o.Option,
            System.CommandLine.Parsing.ArgumentResult { Parent: System.CommandLine.Parsing.OptionResult o } => o.Option,
            _ => null,
        };
        string message = OneLine(e.Message);
        return option is null || message.Contains(option.Name, StringComparison.Ordinal) ? message : $"{option.Name}: {message}";
    }

    static string OneLine(string s) => string.Join(' ', s.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));

    /// <summary>An error as one safe line: library parameter names become this tool's flags, control characters are escaped,
    /// and libtorch's out-of-memory failures say so instead of quoting C++ frames.</summary>
    internal static string Message(Exception e)
    {
        string m = OneLine(e.Message);
        if (e is WaveGradException w)
            foreach (var p in w.Parameters)
                if (Flags.TryGetValue(p, out var flag)) m = System.Text.RegularExpressions.Regex.Replace(m, $@"\b{p}\b", flag);
        if (e is not WaveGradException && (m.Contains("DefaultCPUAllocator") || m.Contains("out of memory") || e is OutOfMemoryException))
            m = "out of memory (" + Text.FirstLine(e.Message).Split(" (")[0] + ")";
        return Text.Escape(m, 2000);
    }

    /// <summary>The library's parameter names and the flags that set them.</summary>
    static readonly Dictionary<string, string> Flags = new()
    {
        ["Resume"] = "--resume", ["OutputDir"] = "--output", ["Output"] = "--output", ["Steps"] = "--steps", ["LearningRate"] = "--lr",
        ["BatchSize"] = "--batch", ["CropFrames"] = "--crop-frames", ["LogEvery"] = "--log-every", ["CheckpointEvery"] = "--checkpoint-every",
        ["ValidateEvery"] = "--validate-every", ["Device"] = "--device", ["PostFilterPasses"] = "--post-filter", ["Size"] = "--size",
        ["PostFilterMomentum"] = "--post-filter-momentum",
        ["Preset"] = "--preset", ["Prior"] = "--prior", ["StftLossWeight"] = "--stft-loss", ["PhaseLossWeight"] = "--phase-loss", ["CriticWeight"] = "--critic",
        ["Unconditional"] = "--unconditional", ["Count"] = "--n",
        ["Class"] = "--class", ["Classifier"] = "--classifier", ["Sampler"] = "--sampler", ["FramesFirst"] = "--frames-first",
        ["MaxMinutes"] = "--max-minutes", ["Iterations"] = "--iters", ["Momentum"] = "--momentum", ["MaxSeconds"] = "--max-seconds",
        ["Start"] = "--start", ["Framing"] = "--mel-framing", ["NpyPath"] = "-o OUT.npy", ["PngPath"] = "--png OUT.png", ["Reference"] = "--ref",
        ["Test"] = "--test", ["StartIterations"] = "--start-iterations", ["StartNoise"] = "--start-noise", ["CpuPieceFrames"] = "--piece-frames",
        ["InitFrom"] = "--init-from", ["Schedule"] = "--schedule", ["Eta"] = "--eta", ["Architecture"] = "--architecture", ["Consistency"] = "--consistency",
        ["BinGains"] = "--bin-gains", ["WienerGains"] = "--wiener-gains", ["PhasePrior"] = "--phase-prior", ["Blocks"] = "--blocks",
        ["TrainLevels"] = "--train-levels", ["LowNoiseShare"] = "--low-noise-share",
    };

    static bool torchReady;

    /// <summary>Loads libtorch once; if the native library cannot load, says what is missing and how to fix it.</summary>
    public static void EnsureTorch()
    {
        if (torchReady) return;
        // TorchSharp's loader prints its own trace on failure: keep it for --verbose-native users only.
        var (stdout, stderr) = (Console.Out, Console.Error);
        var trace = new StringWriter();
        Console.SetOut(trace); Console.SetError(trace);
        NativeTuning.ReuseFreedMemory();   // before libtorch's initialisers fill the heap
        try
        {
            torch.InitializeDeviceType(DeviceType.CPU);
            torchReady = true;
        }
        catch (Exception e)
        {
            trace.WriteLine(e);
        }
        finally { Console.SetOut(stdout); Console.SetError(stderr); }
        if (torchReady) return;
        if (Environment.GetEnvironmentVariable("WAVEGRAD_VERBOSE_NATIVE") == "1") Console.Error.WriteLine(trace);
        throw new NativeLoadException(MissingGlibcxx());
    }

    /// <summary>True on Linux when the system libstdc++ lacks GLIBCXX_3.4.32 (the usual cause of a failed load).</summary>
    static bool MissingGlibcxx()
    {
        if (!OperatingSystem.IsLinux()) return false;
        var lib = new[] { "/usr/lib/x86_64-linux-gnu/libstdc++.so.6", "/usr/lib64/libstdc++.so.6", "/lib64/libstdc++.so.6", "/usr/lib/libstdc++.so.6" }
            .FirstOrDefault(File.Exists);
        if (lib is null) return true;
        var bytes = File.ReadAllBytes(lib);
        var needle = System.Text.Encoding.ASCII.GetBytes("GLIBCXX_3.4.32");
        return bytes.AsSpan().IndexOf(needle) < 0;
    }
}

/// <summary>libtorch could not load: the message explains the likely cause and its fix.</summary>
sealed class NativeLoadException(bool missingGlibcxx) : WaveGradException(missingGlibcxx
    ? "TorchSharp's native library (libtorch 2.10) could not be loaded: this system's libstdc++ lacks GLIBCXX_3.4.32 " +
      "(GCC 13.2 or newer), which libtorch needs together with glibc 2.34 or newer; Debian 12 and Ubuntu 22.04 ship older ones. " +
      "Fix: run 'sudo scripts/install-prerequisites.sh' from the repository root (on Debian 12 it installs Debian 13's libstdc++6, " +
      "which also upgrades glibc), or use Ubuntu 24.04+, Debian 13+ or Fedora 39+. Set WAVEGRAD_VERBOSE_NATIVE=1 to see the loader's own error."
    : "TorchSharp's native library (libtorch 2.10) could not be loaded although the system's libstdc++ is recent enough: the " +
      "libtorch files beside the program are missing or damaged. Fix: rebuild ('dotnet build' restores the libtorch-cpu package) " +
      "and run 'scripts/install-prerequisites.sh' to check glibc. Set WAVEGRAD_VERBOSE_NATIVE=1 to see the loader's own error.");
