using System.CommandLine;
using TorchSharp;
using WaveGradSharp.Diffusion;

namespace WaveGradSharp.Cli;

/// <summary>Options shared by every verb, and the error handling that turns exceptions into one line and exit code 2.</summary>
static class Cli
{
    public static readonly Option<bool> Verbose = new("--verbose") { Description = "Show stack traces and extra detail", Recursive = true };

    public static Option<string> Output(string description, bool required = true) =>
        new("--output", "-o") { Description = description, Required = required };

    public static Option<long> Seed() => new("--seed") { Description = "Random seed (same seed, same bits on the CPU)", DefaultValueFactory = _ => 1234 };

    public static Option<string> Device() => new Option<string>("--device")
    { Description = "Where tensors live: auto (CUDA when available), cpu or cuda", DefaultValueFactory = _ => "auto" }
        .AcceptOnlyFromAmong("auto", "cpu", "cuda");

    /// <summary>Runs a verb's body: user errors become one line on stderr and exit code 2.</summary>
    public static int Run(ParseResult pr, Func<int> body, bool needsTorch = true)
    {
        bool verbose = pr.GetValue(Verbose);
        try
        {
            if (needsTorch) EnsureTorch();
            return body();
        }
        catch (Exception e)
        {
            var inner = e is TypeInitializationException { InnerException: not null } ? e.InnerException! : e;
            Console.Error.WriteLine($"error: {OneLine(inner.Message)}");
            if (verbose) Console.Error.WriteLine(e);
            return 2;
        }
    }

    static string OneLine(string s) => string.Join(' ', s.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));

    static bool torchReady;

    /// <summary>Loads libtorch once; if the native library cannot load, says what is missing and how to fix it.</summary>
    public static void EnsureTorch()
    {
        if (torchReady) return;
        try
        {
            torch.InitializeDeviceType(DeviceType.CPU);
            torchReady = true;
        }
        catch (Exception e)
        {
            if (Environment.GetEnvironmentVariable("WAVEGRAD_VERBOSE_NATIVE") == "1") Console.Error.WriteLine(e);
            throw new NativeLoadException();
        }
    }
}

/// <summary>libtorch could not load: the message explains the usual cause and its fix.</summary>
sealed class NativeLoadException() : WaveGradException(
    "TorchSharp's native library (libtorch 2.10) could not be loaded. It needs libstdc++ from GCC 13.2 or newer " +
    "(symbol version GLIBCXX_3.4.32) and glibc 2.34 or newer; Debian 12 and Ubuntu 22.04 ship older ones. " +
    "Fix: run 'sudo scripts/install-prerequisites.sh' from the repository root (on Debian 12 it installs Debian 13's libstdc++6, " +
    "which also upgrades glibc), or use Ubuntu 24.04+, Debian 13+ or Fedora 39+. Set WAVEGRAD_VERBOSE_NATIVE=1 to see the loader's own error.");
