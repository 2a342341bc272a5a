using WaveGradSharp.Core;

namespace WaveGradSharp.Vocoder.Tests;

public class NativeTuningTests
{
    /// <summary>After <see cref="NativeTuning.ReuseFreedMemory"/> glibc's heap has asked for huge pages (its mapping carries the
    /// kernel's "hg" flag), which is what makes them available where the kernel gives them only to memory that asks
    /// (transparent_hugepage "madvise", most distributions' setting). Not checked where the kernel gives none, off Linux, or where
    /// the user's own glibc settings turn the tuning off.</summary>
    [Fact]
    public void TheHeapAsksForHugePages()
    {
        const string setting = "/sys/kernel/mm/transparent_hugepage/enabled";
        if (!OperatingSystem.IsLinux() || !File.Exists(setting) || File.ReadAllText(setting).Contains("[never]")) return;
        if (Environment.GetEnvironmentVariables().Keys.Cast<string>().Any(k => k.StartsWith("MALLOC_", StringComparison.Ordinal) || k == "GLIBC_TUNABLES"))
            return;
        NativeTuning.ReuseFreedMemory();
        var smaps = File.ReadAllLines("/proc/self/smaps");
        int heap = Array.FindIndex(smaps, l => l.EndsWith("[heap]", StringComparison.Ordinal));
        Assert.True(heap >= 0, "no [heap] mapping in /proc/self/smaps");
        var flags = smaps.Skip(heap + 1).First(l => l.StartsWith("VmFlags:", StringComparison.Ordinal));
        Assert.Contains(" hg", flags);   // MADV_HUGEPAGE given
    }
}
