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

    /// <summary>The element type inference runs in: float32, bfloat16, or (auto) bfloat16 on CUDA and, on the CPU, bfloat16
    /// where its matrix products are at least <see cref="Bf16Margin"/> times as fast as float32's (CPUs with bf16 dot
    /// products: AVX512_BF16, AMX), else float32.</summary>
    public static torch.ScalarType InferenceType(string? precision, torch.Device device) => (precision ?? "auto").ToLowerInvariant() switch
    {
        "fp32" or "float32" => torch.ScalarType.Float32,
        "bf16" or "bfloat16" => torch.ScalarType.BFloat16,
        "auto" => device.type == DeviceType.CUDA || CpuBf16Wins() ? torch.ScalarType.BFloat16 : torch.ScalarType.Float32,
        _ => throw WaveGradException.About($"Precision {precision}: expected auto, fp32 or bf16", "Precision"),
    };

    /// <summary>How much faster the CPU's bfloat16 matrix products must be for <c>auto</c> to choose them (without native
    /// bf16 instructions they are emulated, and slower than float32).</summary>
    public const double Bf16Margin = 1.5;

    static bool? cpuBf16Wins;

    /// <summary>Whether bfloat16 matrix products beat float32 ones by <see cref="Bf16Margin"/> on this CPU: the best of five
    /// timings of a [2048, 128] × [128, 128] product (the network's shapes) in each type, measured once per process (a few ms).</summary>
    public static bool CpuBf16Wins()
    {
        if (cpuBf16Wins is bool b) return b;
        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        double Best(torch.ScalarType type)
        {
            var a = torch.randn(2048, 128).to_type(type);
            var w = torch.randn(128, 128).to_type(type);
            double best = double.PositiveInfinity;
            for (int i = 0; i < 6; i++)
            {
                var sw = System.Diagnostics.Stopwatch.StartNew();
                torch.matmul(a, w).Dispose();
                if (i > 0) best = Math.Min(best, sw.Elapsed.TotalSeconds);
            }
            return best;
        }
        cpuBf16Wins = Best(torch.ScalarType.Float32) >= Bf16Margin * Best(torch.ScalarType.BFloat16);
        return cpuBf16Wins.Value;
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
