using System.Runtime.InteropServices;
using TorchSharp;

namespace Taming.ML.Native;

/// <summary>
/// libtorch functions that TorchSharp 0.107 does not wrap, found by their exported C++ (Itanium ABI) names in the
/// libraries TorchSharp loaded. Missing libraries or names give null, so callers can go on without them.
/// </summary>
internal static class LibTorchExports
{
    /// <summary>The handle of a libtorch library (libtorch_cpu.so, libtorch_cuda.so, libc10_cuda.so), or null where absent.</summary>
    public static IntPtr? Library(string name) =>
        NativeLibrary.TryLoad(name, typeof(torch).Assembly, DllImportSearchPath.AssemblyDirectory, out var h) || NativeLibrary.TryLoad(name, out h)
            ? h : null;

    /// <summary>The exported function <paramref name="symbol"/> of <paramref name="library"/> as a delegate, or null.</summary>
    public static T? Function<T>(IntPtr? library, string symbol) where T : Delegate =>
        library is { } h && NativeLibrary.TryGetExport(h, symbol, out var f) ? Marshal.GetDelegateForFunctionPointer<T>(f) : null;
}
