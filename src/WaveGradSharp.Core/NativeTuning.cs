using System.Runtime.InteropServices;

namespace WaveGradSharp.Core;

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

    [DllImport("libtorch_cpu", EntryPoint = "_ZN2at7Context20setUserEnabledMkldnnEb")]
    static extern void SetUserEnabledMkldnn(IntPtr context, [MarshalAs(UnmanagedType.I1)] bool enabled);

    static bool done, oneDnnOff;

    /// <summary>
    /// Switches oneDNN (mkldnn) off for CPU tensors. On this project's machines libtorch 2.10's oneDNN float32
    /// convolution backward returns wrong input gradients (off by 35–80 %, sometimes NaN, for many Conv1d shapes,
    /// against float64 and against PyTorch; the forward pass is right), so CPU training calls this first; the
    /// native convolution path it falls back to gives correct gradients. Returns false where the symbol is missing.
    /// </summary>
    public static bool DisableOneDnn()
    {
        if (oneDnnOff) return true;
        if (!OperatingSystem.IsLinux()) return false;
        try
        {
            TorchSharp.torch.InitializeDeviceType(TorchSharp.DeviceType.CPU);
            SetUserEnabledMkldnn(GlobalContext(), false);
            return oneDnnOff = true;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) { return false; }
    }

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
