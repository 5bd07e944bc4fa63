using System.Runtime.InteropServices;

namespace Taming.ML.Native;

/// <summary>
/// glibc's malloc serves every allocation above 32 MB (the ceiling of its dynamic threshold) with an mmap of its own and
/// unmaps it at free, so each large tensor (a batch's activations from 64×64 pixels up) is faulted in anew, page by page,
/// at every step: on 2 cores a tokenizer fit at 64² spent a quarter of its time in the kernel. So when libtorch loads,
/// Taming.ML raises malloc's mmap threshold to 1 GB and its trim threshold to 256 MB (what <c>MALLOC_MMAP_THRESHOLD_</c>
/// and <c>MALLOC_TRIM_THRESHOLD_</c> would set), and freed tensors are reused from the heap (README, "malloc on Linux":
/// 12 % faster training, 35 % faster reconstruction). The cost is memory that stays with the process once freed.
/// <c>TAMING_MALLOC=default</c> leaves malloc as it is, as do those variables or <c>GLIBC_TUNABLES</c> when set; other C
/// libraries (musl) and systems are left alone.
/// </summary>
internal static class MallocTuning
{
    private const int TrimThresholdParameter = -1, MmapThresholdParameter = -3; // M_TRIM_THRESHOLD, M_MMAP_THRESHOLD
    private const int MmapThreshold = 1 << 30, TrimThreshold = 256 << 20;

    [DllImport("libc.so.6", EntryPoint = "mallopt")]
    private static extern int Mallopt(int parameter, int value);

    /// <summary>What was done, for the log; null before <see cref="Run"/> or where not on Linux.</summary>
    public static string? Finding { get; private set; }

    /// <summary>Tunes malloc once libtorch is loaded (see the class summary).</summary>
    public static void Run()
    {
        if (!OperatingSystem.IsLinux()) return;
        if (Environment.GetEnvironmentVariable("TAMING_MALLOC")?.Trim().ToLowerInvariant() is "default" or "off")
        {
            Finding = "left as it is (TAMING_MALLOC=default)";
            return;
        }
        if (new[] { "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES" }.FirstOrDefault(v => Environment.GetEnvironmentVariable(v) != null) is { } set)
        {
            Finding = $"left to {set}";
            return;
        }
        try
        {
            Finding = Mallopt(MmapThresholdParameter, MmapThreshold) == 1 && Mallopt(TrimThresholdParameter, TrimThreshold) == 1
                ? "large tensors reused from the heap (mmap threshold 1 GB, trim threshold 256 MB; TAMING_MALLOC=default leaves malloc as it is)"
                : "left as it is (mallopt refused the thresholds)";
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            Finding = null; // not glibc
        }
    }
}
