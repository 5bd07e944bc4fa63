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
        torch.Device device;
        try { device = string.IsNullOrWhiteSpace(name) ? torch.CPU : new torch.Device(name); }
        catch (ArgumentException e)
        {
            throw new ArgumentException($"Device '{name}' is not a device name: use \"cpu\", \"cuda\" or \"cuda:N\".", "Device", e);
        }
        if (device.type == DeviceType.CUDA)
        {
            try { torch.InitializeDeviceType(DeviceType.CUDA); }
            catch (Exception e) { throw new InvalidOperationException($"{CudaHelp} ({Brief(e.Message)})", e); }
            if (!torch.cuda.is_available()) throw new InvalidOperationException(CudaHelp);
            int count = torch.cuda.device_count();
            if (device.index >= count)
                throw new ArgumentException($"Device '{name}': this machine has {count} CUDA device{(count == 1 ? "" : "s")} (cuda:0 … cuda:{count - 1}).", "Device");
        }
        return device;
    }

    /// <summary>A libtorch or TorchSharp error message without the native trace appended to it.</summary>
    internal static string Brief(string message)
    {
        var first = message.Split('\n')[0];
        int trace = first.IndexOf(" Trace from", StringComparison.Ordinal);
        return (trace > 0 ? first[..trace] : first).Trim();
    }

    /// <summary>A host tensor on <paramref name="device"/>: on a GPU through pinned memory without waiting, so that the
    /// host goes on queueing work while the device runs (a plain copy first waits for all queued work). On the CPU
    /// the tensor itself.</summary>
    internal static torch.Tensor Upload(torch.Tensor host, torch.Device device) =>
        device.type == DeviceType.CPU ? host : host.pin_memory().to(device, non_blocking: true);

    private const string CudaHelp =
        "CUDA was requested but is not available. Reference TorchSharp-cuda-linux instead of TorchSharp-cpu, " +
        "or point LD_LIBRARY_PATH at an installed PyTorch's CUDA libtorch (see README.md, 'GPU').";

    private static Exception? TryLoad()
    {
        try
        {
            torch.InitializeDeviceType(DeviceType.CPU);
            using var probe = torch.zeros(1);
            MallocTuning.Run();
            NnpackCheck.Run(); // first: the oneDNN check's reference convolutions would try NNPACK
            OneDnnCheck.Run();
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
