using TorchSharp;

namespace Taming.ML.Native;

/// <summary>
/// cuDNN's autotuner, PyTorch's <c>torch.backends.cudnn.benchmark</c>, which TorchSharp 0.107 does not wrap: while it
/// is on, libtorch times cuDNN's algorithms for each new convolution shape once and keeps the fastest, instead of
/// taking cuDNN's heuristic choice. It pays where the shapes repeat, as in training; the flag is process-wide, as in
/// PyTorch, so scopes count their nesting and the last one out restores the value found before the first.
/// </summary>
internal static class CudnnAutotuner
{
    private static readonly object Gate = new();
    private static int depth;
    private static bool before;

    /// <summary>Whether the autotuner is on; null where libtorch does not export the flag.</summary>
    public static bool? Enabled
    {
        get => Flag.Value?.Value;
        set
        {
            if (value is { } on && Flag.Value is { } flag) flag.Value = on;
        }
    }

    /// <summary>Turns the autotuner on until disposed when <paramref name="device"/> is a CUDA device (cuDNN's);
    /// elsewhere, or where libtorch lacks the flag, nothing.</summary>
    public static IDisposable On(torch.Device device)
    {
        if (device.type != DeviceType.CUDA || Flag.Value is null) return Scope.None;
        lock (Gate)
        {
            if (depth++ == 0)
            {
                before = Enabled ?? false;
                Enabled = true;
            }
        }
        return new Scope();
    }

    private sealed class Scope : IDisposable
    {
        public static readonly IDisposable None = new Scope { disposed = true };
        private bool disposed;

        public void Dispose()
        {
            if (disposed) return;
            disposed = true;
            lock (Gate)
            {
                if (--depth == 0) Enabled = before;
            }
        }
    }

    /// <summary>at::Context's benchmarkCuDNN flag, or null where libtorch does not export it.</summary>
    private static readonly Lazy<ContextFlag?> Flag = new(() => ContextFlag.Find("benchmarkCuDNN", "setBenchmarkCuDNN"));
}
