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

    [DllImport("libc", EntryPoint = "setenv")]
    static extern int SetEnv(string name, string value, int overwrite);

    /// <summary>
    /// Asks the MKL inside libtorch for results that do not depend on how its buffers happen to be aligned (MKL_CBWR=AUTO, unless
    /// the environment already says otherwise). Without it, on an AMD EPYC the same render with the same seed twice in one process
    /// differed in the last bits of float32 (the tests that hold one-shot renders to the same bits failed there, and passed with
    /// it; on the Intel VMs they passed without it). MKL reads the variable when it first runs, so this runs when this assembly
    /// loads, before any tensor work of this library's. A module initializer in a library is unusual (CA2255); this one only sets
    /// an environment variable, and only where one is not set.
    /// </summary>
#pragma warning disable CA2255
    [System.Runtime.CompilerServices.ModuleInitializer]
#pragma warning restore CA2255
    internal static void ReproducibleMkl()
    {
        if (!OperatingSystem.IsLinux() && !OperatingSystem.IsMacOS()) return;
        try { SetEnv("MKL_CBWR", "AUTO", 0); }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) { /* no libc: nothing to set */ }
    }

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

    [DllImport("libc", EntryPoint = "mallopt")]
    static extern int Mallopt(int param, int value);

    static bool reuseSet;

    /// <summary>
    /// Lets glibc keep freed blocks of up to 32 MiB in its heap for the next tensor of the kind (M_MMAP_THRESHOLD), and not
    /// hand the heap's top back after every free (M_TRIM_THRESHOLD, 1 GiB). By default a tensor of megabytes (an audio-rate
    /// layer's activation, a piece's STFT, a training batch's gradients) is a fresh mapping, faulted in page by page when first
    /// written and unmapped when freed, and the kernel's page clearing is a sizeable share of CPU rendering and training. The
    /// heap also grows 64 MiB at a time (M_TOP_PAD) instead of 128 KiB: libtorch's static initialisers make hundreds of
    /// thousands of small allocations, and growing the heap in small steps made its load measurably slower. The heap's first
    /// <see cref="HugePageHeapBytes"/> are backed by huge pages (<see cref="BackHeapWithHugePages"/>). Address space
    /// only: a page costs memory when it is first written. The CPU <see cref="Trainer"/> loop and every CPU vocoder call it,
    /// and the command-line tool before it loads libtorch. Memory stays bounded: <see cref="NativeHeapWatch"/> trims a long
    /// render's heap explicitly, and a training step frees what the one before it allocated. Process-wide; skipped off Linux
    /// and where the user has set glibc's own MALLOC_* or GLIBC_TUNABLES variables.
    /// </summary>
    public static void ReuseFreedMemory()
    {
        if (reuseSet || !OperatingSystem.IsLinux()) return;
        reuseSet = true;
        if (Environment.GetEnvironmentVariables().Keys.Cast<string>().Any(k => k.StartsWith("MALLOC_", StringComparison.Ordinal) || k == "GLIBC_TUNABLES"))
            return;
        try
        {
            const int mmapThreshold = -3, trimThreshold = -1, topPad = -2;
            Mallopt(mmapThreshold, 32 << 20);
            Mallopt(trimThreshold, 1 << 30);
            Mallopt(topPad, 64 << 20);
            BackHeapWithHugePages();
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) { }
    }

    [DllImport("libc", EntryPoint = "malloc")]
    static extern IntPtr Malloc(nuint size);
    [DllImport("libc", EntryPoint = "free")]
    static extern void Free(IntPtr block);
    [DllImport("libc", EntryPoint = "madvise")]
    static extern int Madvise(IntPtr start, nuint length, int advice);

    /// <summary>How far the heap is grown ahead for <see cref="BackHeapWithHugePages"/>: more than a render of <c>speak</c> or a
    /// training step of the default voice holds at once.</summary>
    const int HugePageHeapBytes = 256 << 20;

    /// <summary>
    /// Grows glibc's heap by <see cref="HugePageHeapBytes"/> of address space (blocks under the mmap threshold, allocated and
    /// freed: the trim threshold keeps them) and asks the kernel to back it with 2 MiB pages where it can (MADV_HUGEPAGE; most
    /// distributions enable transparent huge pages only where asked). Every 4 KiB page a process first writes is a fault, and a
    /// fault in a VM costs microseconds: libtorch's load, the voice's weights and the first renders wrote about 70,000 of them
    /// before <c>speak</c>'s first audio, and half as many with this. Memory is taken only where written, as before, in 2 MiB
    /// steps. A heap grown past this size later is not covered (its new part is a mapping of its own).
    /// </summary>
    static void BackHeapWithHugePages()
    {
        const int blockBytes = 16 << 20, hugePage = 14;   // under the mmap threshold; MADV_HUGEPAGE
        var blocks = new IntPtr[HugePageHeapBytes / blockBytes];
        for (int i = 0; i < blocks.Length; i++) blocks[i] = Malloc(blockBytes);
        foreach (var block in blocks) Free(block);
        try
        {
            foreach (var line in File.ReadLines("/proc/self/maps"))
            {
                if (!line.EndsWith("[heap]", StringComparison.Ordinal)) continue;
                var range = line[..line.IndexOf(' ')].Split('-');
                long start = Convert.ToInt64(range[0], 16), end = Convert.ToInt64(range[1], 16);
                Madvise((IntPtr)start, (nuint)(end - start), hugePage);   // where the kernel has no huge pages: EINVAL, nothing changes
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { /* no /proc: small pages, as before */ }
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

/// <summary>
/// Keeps a long streamed job's memory flat: glibc keeps blocks that libtorch frees in its heap for reuse, and pieces
/// that free tensors of slightly different sizes leave that heap fragmented, so without help peak memory grows with the
/// input (a 4-minute mel rendered piece by piece peaked at 1.7 GB, against 0.8 GB when every block is returned at once).
/// <see cref="Check"/>, called after each piece, hands the free blocks back (malloc_trim) once the working set has grown
/// <see cref="SlackBytes"/> past what it was at the first call (or after the last trim, if that was higher). Not on every piece: after a trim the next piece
/// faults its pages in afresh, which made renders about a fifth slower. Does nothing off Linux or without glibc.
/// </summary>
public sealed class NativeHeapWatch
{
    /// <summary>Growth of the working set tolerated before freed memory is handed back.</summary>
    public const long SlackBytes = 256L << 20;

    [DllImport("libc", EntryPoint = "malloc_trim")]
    static extern int MallocTrim(nuint pad);

    static bool unavailable = !OperatingSystem.IsLinux();
    readonly long slack;
    long baseline;

    /// <summary>Trims once the working set has grown <paramref name="slackBytes"/> (a server that renders request after request
    /// asks for less than a long render's <see cref="SlackBytes"/>).</summary>
    public NativeHeapWatch(long slackBytes = SlackBytes) => slack = slackBytes;

    /// <summary>Call after each piece of work whose temporaries have been freed.</summary>
    public void Check()
    {
        if (unavailable) return;
        long now = Environment.WorkingSet;
        if (baseline == 0) { baseline = now; return; }
        if (now <= baseline + slack) return;
        try { MallocTrim(0); }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) { unavailable = true; }
        baseline = Math.Max(baseline, Environment.WorkingSet);   // memory that is truly in use: no trim on every piece
    }
}
