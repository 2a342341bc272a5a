using TorchSharp;

namespace WaveGradSharp.Diffusion;

/// <summary>A problem with the user's input (a file, an argument): the message names it and says what is wrong.
/// The CLI prints it as one line and exits with code 2.</summary>
public class WaveGradException(string message, Exception? inner = null) : Exception(message, inner);

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

    /// <summary>auto: CUDA when available, else the CPU.</summary>
    public static torch.Device Resolve(string? name)
    {
        switch ((name ?? "auto").ToLowerInvariant())
        {
            case "cpu": return torch.CPU;
            case "cuda":
                if (!CudaAvailable())
                    throw new WaveGradException("--device cuda: CUDA is not available (this TorchSharp build sees no GPU; see the README's GPU section)");
                return torch.CUDA;
            case "auto": return CudaAvailable() ? torch.CUDA : torch.CPU;
            default: throw new WaveGradException($"--device {name}: expected auto, cpu or cuda");
        }
    }
}
