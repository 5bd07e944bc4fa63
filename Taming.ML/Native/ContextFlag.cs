using System.Runtime.InteropServices;

namespace Taming.ML.Native;

/// <summary>
/// A boolean setting of libtorch's global context (<c>at::globalContext()</c>), the kind PyTorch exposes as
/// <c>torch.backends</c> flags and TorchSharp 0.107 does not wrap, read and written through its exported getter and
/// setter. The settings are process-wide, as in PyTorch.
/// </summary>
internal sealed class ContextFlag
{
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] private delegate IntPtr GlobalContext();
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] private delegate byte Getter(IntPtr context);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] private delegate void Setter(IntPtr context, byte on);

    private readonly IntPtr context;
    private readonly Getter get;
    private readonly Setter set;

    private ContextFlag(IntPtr context, Getter get, Setter set) => (this.context, this.get, this.set) = (context, get, set);

    /// <summary>The setting, on or off.</summary>
    public bool Value
    {
        get => get(context) != 0;
        set => set(context, value ? (byte)1 : (byte)0);
    }

    /// <summary>The setting that <c>at::Context</c>'s members <paramref name="getter"/> (const, no arguments) and
    /// <paramref name="setter"/> (one bool) read and write, e.g. "benchmarkCuDNN" and "setBenchmarkCuDNN"; null where
    /// libtorch_cpu.so does not export them.</summary>
    public static ContextFlag? Find(string getter, string setter)
    {
        var library = LibTorchExports.Library("libtorch_cpu.so");
        // Their Itanium ABI names: at::Context::getter() const, at::Context::setter(bool).
        var get = LibTorchExports.Function<Getter>(library, $"_ZNK2at7Context{getter.Length}{getter}Ev");
        var set = LibTorchExports.Function<Setter>(library, $"_ZN2at7Context{setter.Length}{setter}Eb");
        var context = LibTorchExports.Function<GlobalContext>(library, "_ZN2at13globalContextEv")?.Invoke() ?? IntPtr.Zero;
        return get is null || set is null || context == IntPtr.Zero ? null : new ContextFlag(context, get, set);
    }
}
