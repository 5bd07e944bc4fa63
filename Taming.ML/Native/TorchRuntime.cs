using System.Runtime.InteropServices;
using TorchSharp;

namespace Taming.ML.Native;

/// <summary>
/// Loads TorchSharp's native libraries once and turns a load failure into an exception that says what
/// is missing and how to fix it.
/// </summary>
public static class TorchRuntime
{
    private static readonly Lazy<Exception?> LoadError = new(TryLoad, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>Throws <see cref="InvalidOperationException"/> with a remedy if libtorch cannot be used.</summary>
    public static void EnsureLoaded()
    {
        if (LoadError.Value is { } error)
            throw new InvalidOperationException(Describe(error), error);
    }

    /// <summary>
    /// Resolves a device name ("cpu", "cuda", "cuda:1") to a TorchSharp device, checking that it is usable.
    /// </summary>
    public static torch.Device ResolveDevice(string? name)
    {
        EnsureLoaded();
        var device = string.IsNullOrWhiteSpace(name) ? torch.CPU : new torch.Device(name);
        if (device.type == DeviceType.CUDA)
        {
            try { torch.InitializeDeviceType(DeviceType.CUDA); }
            catch (Exception e) { throw new InvalidOperationException(CudaHelp + " (" + e.Message + ")", e); }
            if (!torch.cuda.is_available()) throw new InvalidOperationException(CudaHelp);
            ApplyCudnnBenchmark();
        }
        return device;
    }

    /// <summary>A host tensor on <paramref name="device"/>: on a GPU through pinned memory without waiting, so that the
    /// host goes on queueing work while the device runs (a plain copy first waits for all queued work). On the CPU
    /// the tensor itself.</summary>
    internal static torch.Tensor Upload(torch.Tensor host, torch.Device device) =>
        device.type == DeviceType.CPU ? host : host.pin_memory().to(device, non_blocking: true);

    private static bool cudnnBenchmark = true;

    /// <summary>
    /// Whether cuDNN times its convolution algorithms for each new input shape and keeps the fastest (libtorch's
    /// <c>torch.backends.cudnn.benchmark</c>), applied when a CUDA device is resolved and when set. Default true:
    /// training and batched inference repeat the same shapes, so the one-off timing pays back within a few batches.
    /// Set it to false for bit-reproducible GPU runs, or when input shapes change at every call.
    /// </summary>
    public static bool CudnnBenchmark
    {
        get => cudnnBenchmark;
        set
        {
            cudnnBenchmark = value;
            if (LoadError.IsValueCreated && LoadError.Value is null) ApplyCudnnBenchmark();
        }
    }

    /// <summary>libtorch's own setting, read back (false where the library does not export it).</summary>
    internal static bool CudnnBenchmarkInLibtorch => CudnnContext.Get() is { } c && c.Read(c.Context) != 0;

    private static void ApplyCudnnBenchmark()
    {
        if (CudnnContext.Get() is { } c) c.Set(c.Context, cudnnBenchmark ? (byte)1 : (byte)0);
    }

    /// <summary>
    /// TorchSharp 0.107 does not wrap the cuDNN benchmark flag; libtorch_cpu exports at::globalContext() and the
    /// flag's accessors (Itanium C++ ABI: the object is the first argument). Missing exports leave it alone.
    /// </summary>
    private sealed record CudnnContext(IntPtr Context, CudnnContext.Setter Set, CudnnContext.Getter Read)
    {
        [UnmanagedFunctionPointer(CallingConvention.Cdecl)] public delegate IntPtr GlobalContext();
        [UnmanagedFunctionPointer(CallingConvention.Cdecl)] public delegate void Setter(IntPtr context, byte value);
        [UnmanagedFunctionPointer(CallingConvention.Cdecl)] public delegate byte Getter(IntPtr context);

        private static readonly Lazy<CudnnContext?> Instance = new(Find);

        public static CudnnContext? Get() => Instance.Value;

        private static CudnnContext? Find()
        {
            if (!NativeLibrary.TryLoad("libtorch_cpu.so", typeof(torch).Assembly, DllImportSearchPath.AssemblyDirectory, out var library)
                && !NativeLibrary.TryLoad("libtorch_cpu.so", out library))
                return null;
            if (!NativeLibrary.TryGetExport(library, "_ZN2at13globalContextEv", out var global)
                || !NativeLibrary.TryGetExport(library, "_ZN2at7Context17setBenchmarkCuDNNEb", out var set)
                || !NativeLibrary.TryGetExport(library, "_ZNK2at7Context14benchmarkCuDNNEv", out var get))
                return null;
            var context = Marshal.GetDelegateForFunctionPointer<GlobalContext>(global)();
            return new CudnnContext(context, Marshal.GetDelegateForFunctionPointer<Setter>(set), Marshal.GetDelegateForFunctionPointer<Getter>(get));
        }
    }

    private const string CudaHelp =
        "CUDA was requested but is not available. Reference TorchSharp-cuda-linux instead of TorchSharp-cpu, " +
        "or point LD_LIBRARY_PATH at an installed PyTorch's CUDA libtorch (see README.md, 'GPU').";

    private static Exception? TryLoad()
    {
        try
        {
            torch.InitializeDeviceType(DeviceType.CPU);
            using var probe = torch.zeros(1);
            return null;
        }
        catch (Exception e) { return e; }
    }

    private static string Describe(Exception error)
    {
        string all = Flatten(error);
        string remedy = all.Contains("GLIBCXX", StringComparison.Ordinal)
            ? "libLibTorchSharp.so needs a newer libstdc++ than this system has. Taming.ML's build step " +
              "(build/Taming.ML.targets) marks that requirement weak in the build output: make sure the app " +
              "imports it (a NuGet reference to Taming.ML does so; a project reference must import the file), then rebuild."
            : all.Contains("libtorch", StringComparison.OrdinalIgnoreCase) || error is DllNotFoundException
                ? "The app references no libtorch backend: add a PackageReference to TorchSharp-cpu 0.107.0 " +
                  "(or TorchSharp-cuda-linux for GPUs), then rebuild."
                : "See the inner exception.";
        return "TorchSharp's native library could not be loaded: " + all + " " + remedy;
    }

    private static string Flatten(Exception e)
    {
        var parts = new List<string>();
        for (var x = e; x != null; x = x.InnerException) parts.Add(x.Message);
        return string.Join(" -> ", parts);
    }
}
