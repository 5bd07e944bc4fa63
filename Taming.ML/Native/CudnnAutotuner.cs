using System.Runtime.InteropServices;
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
        get => Api.Value is { } api ? api.Get(api.Context()) != 0 : null;
        set
        {
            if (value is { } on && Api.Value is { } api) api.Set(api.Context(), on ? (byte)1 : (byte)0);
        }
    }

    /// <summary>Turns the autotuner on until disposed when <paramref name="device"/> is a CUDA device (cuDNN's);
    /// elsewhere, or where libtorch lacks the flag, nothing.</summary>
    public static IDisposable On(torch.Device device)
    {
        if (device.type != DeviceType.CUDA || Api.Value is null) return Scope.None;
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

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] private delegate IntPtr ContextFn();
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] private delegate byte GetFn(IntPtr context);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] private delegate void SetFn(IntPtr context, byte on);

    private sealed record Functions(ContextFn Context, GetFn Get, SetFn Set);

    /// <summary>at::globalContext() and its benchmarkCuDNN / setBenchmarkCuDNN members, or null.</summary>
    private static readonly Lazy<Functions?> Api = new(() =>
    {
        var lib = LibTorchExports.Library("libtorch_cpu.so");
        var context = LibTorchExports.Function<ContextFn>(lib, "_ZN2at13globalContextEv");
        var get = LibTorchExports.Function<GetFn>(lib, "_ZNK2at7Context14benchmarkCuDNNEv");
        var set = LibTorchExports.Function<SetFn>(lib, "_ZN2at7Context17setBenchmarkCuDNNEb");
        return context is null || get is null || set is null ? null : new Functions(context, get, set);
    });
}
