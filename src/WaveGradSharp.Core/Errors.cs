using TorchSharp;

namespace WaveGradSharp.Core;

/// <summary>A problem with the user's input (a file, an argument): the message names it and says what is wrong.
/// The CLI prints it as one line and exits with code 2.</summary>
public class WaveGradException(string message, Exception? inner = null) : Exception(message, inner)
{
    /// <summary>The library parameters the message names, spelled as in the options types (<c>Steps</c>, <c>Resume</c>);
    /// a front end may rename them to its own spelling (the CLI writes <c>--steps</c>, <c>--resume</c>).</summary>
    public IReadOnlyList<string> Parameters { get; init; } = [];

    /// <summary>An error about the named parameters; the message spells each one as given.</summary>
    public static WaveGradException About(string message, params string[] parameters) => new(message) { Parameters = parameters };
}

/// <summary>Picks the torch device from <c>auto|cpu|cuda</c>.</summary>
public static class Devices
{
    static bool? cudaReady;

    /// <summary>True when libtorch's CUDA backend loads and sees a GPU (tried once).</summary>
    public static bool CudaAvailable()
    {
        if (cudaReady is bool b) return b;
        try { torch.InitializeDeviceType(DeviceType.CUDA); } catch (Exception) { /* CPU-only libtorch: no CUDA */ }
        try { cudaReady = torch.cuda.is_available(); } catch (Exception) { cudaReady = false; }
        return cudaReady.Value;
    }

    /// <summary>The element type inference runs in: float32, bfloat16, or (auto) bfloat16 on CUDA and on CPUs whose bf16 matrix products
    /// beat float32's (<see cref="CpuBf16Wins"/>), else float32.</summary>
    public static torch.ScalarType InferenceType(string? precision, torch.Device device) => (precision ?? "auto").ToLowerInvariant() switch
    {
        "fp32" or "float32" => torch.ScalarType.Float32,
        "bf16" or "bfloat16" => torch.ScalarType.BFloat16,
        "auto" => device.type == DeviceType.CUDA || CpuBf16Wins() ? torch.ScalarType.BFloat16 : torch.ScalarType.Float32,
        _ => throw WaveGradException.About($"Precision {precision}: expected auto, fp32 or bf16", "Precision"),
    };

    /// <summary>How much faster the CPU's bfloat16 matrix products must be, where they are timed, for <c>auto</c> to choose them.</summary>
    public const double Bf16Margin = 1.5;

    static readonly Lazy<bool> cpuBf16Wins = new(Bf16Probe);

    /// <summary>
    /// Whether this CPU multiplies bfloat16 matrices faster than float32 ones, decided from /proc/cpuinfo where its x86 flags and
    /// vendor settle it (<see cref="Bf16WinsByCpuInfo"/>), since a timing is at the mercy of whatever else runs at start-up (a TTS
    /// frontend does) and delays <c>speak</c>'s first audio. Elsewhere it is timed once: the best of five
    /// alternating [8192, 128] × [128, 128] products in each type, bf16 chosen if <see cref="Bf16Margin"/> times as fast.
    /// </summary>
    public static bool CpuBf16Wins() => cpuBf16Wins.Value;

    /// <summary>
    /// What /proc/cpuinfo's first <c>vendor_id</c> and <c>flags</c> say about bfloat16 against float32 matrix products; null where
    /// only a timing can tell. With AMX tiles (amx_bf16) bf16 runs about 3× float32's peak; without AVX512_BF16 libtorch emulates
    /// bf16, slower than float32. With AVX512_BF16 alone it depends on the vendor: on AMD, libtorch's MKL takes its generic
    /// float32 path while oneDNN's bf16 uses the dot-product instructions (407 GFLOP/s against 128 on an AMD EPYC); on an Intel
    /// CPU without AMX, bf16 peaked at 161 GFLOP/s against float32's 297.
    /// </summary>
    public static bool? Bf16WinsByCpuInfo(IEnumerable<string> cpuinfo)
    {
        string? vendor = null;
        string[]? flags = null;
        foreach (var line in cpuinfo)
        {
            if (vendor is null && line.StartsWith("vendor_id", StringComparison.Ordinal)) vendor = line[(line.IndexOf(':') + 1)..].Trim();
            if (flags is null && line.StartsWith("flags", StringComparison.Ordinal)) flags = line[(line.IndexOf(':') + 1)..].Split(' ');
            if (vendor is not null && flags is not null) break;
        }
        if (flags is null) return null;
        if (flags.Contains("amx_bf16")) return true;
        if (!flags.Contains("avx512_bf16")) return false;
        return vendor == "AuthenticAMD" ? true : null;
    }

    static bool Bf16Probe()
    {
        const string cpuinfo = "/proc/cpuinfo";
        if (OperatingSystem.IsLinux() && File.Exists(cpuinfo) && Bf16WinsByCpuInfo(File.ReadLines(cpuinfo)) is bool decided) return decided;
        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        using var g = new torch.Generator(0);
        var a = torch.randn([8192, 128], generator: g);
        var w = torch.randn([128, 128], generator: g);
        var (a16, w16) = (a.to_type(torch.ScalarType.BFloat16), w.to_type(torch.ScalarType.BFloat16));
        double f32 = double.PositiveInfinity, b16 = double.PositiveInfinity;
        for (int i = 0; i < 6; i++)
        {
            var sw = System.Diagnostics.Stopwatch.StartNew();
            torch.matmul(a, w).Dispose();
            double t32 = sw.Elapsed.TotalSeconds;
            sw.Restart();
            torch.matmul(a16, w16).Dispose();
            if (i > 0) { f32 = Math.Min(f32, t32); b16 = Math.Min(b16, sw.Elapsed.TotalSeconds); }   // the first call of each warms up
        }
        return f32 >= Bf16Margin * b16;
    }

    /// <summary>auto: CUDA when available, else the CPU.</summary>
    public static torch.Device Resolve(string? name)
    {
        switch ((name ?? "auto").ToLowerInvariant())
        {
            case "cpu": return torch.CPU;
            case "cuda":
                if (!CudaAvailable())
                    throw WaveGradException.About("Device cuda: CUDA is not available (this TorchSharp build sees no GPU; see the README's GPU " +
                        "section)", "Device");
                return torch.CUDA;
            case "auto": return CudaAvailable() ? torch.CUDA : torch.CPU;
            default: throw WaveGradException.About($"Device {name}: expected auto, cpu or cuda", "Device");
        }
    }
}
