using System.Runtime.InteropServices;

namespace WaveGradSharp.Diffusion;

/// <summary>
/// libtorch settings that TorchSharp does not expose. NNPACK: on CPUs it does not support, libtorch tries it for
/// every gradient-free convolution, prints "Could not initialize NNPACK! Reason: Unsupported hardware." and falls
/// back to a slower kernel; switching it off (as torch.backends.nnpack.set_flags(False) does) silences that
/// and keeps inference on oneDNN.
/// </summary>
public static class NativeTuning
{
    [DllImport("libtorch_cpu", EntryPoint = "_ZN2at13globalContextEv")]
    static extern IntPtr GlobalContext();

    [DllImport("libtorch_cpu", EntryPoint = "_ZN2at7Context20setUserEnabledNNPACKEb")]
    static extern void SetUserEnabledNNPACK(IntPtr context, [MarshalAs(UnmanagedType.I1)] bool enabled);

    static bool done;

    /// <summary>Switches NNPACK off once; does nothing where the symbol is missing (another libtorch build or OS).</summary>
    public static void DisableNnpack()
    {
        if (done) return;
        done = true;
        if (!OperatingSystem.IsLinux()) return;
        try { TorchSharp.torch.InitializeDeviceType(TorchSharp.DeviceType.CPU); SetUserEnabledNNPACK(GlobalContext(), false); }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) { }
    }
}
