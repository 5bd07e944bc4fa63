using System.Runtime.InteropServices;

namespace Taming.ML.Native;

/// <summary>
/// libtorch considers NNPACK for CPU convolutions that oneDNN leaves to it (a single small image, and all of them
/// where oneDNN is off), and on CPUs that NNPACK does not know (an AMD EPYC Zen 5 virtual machine) it fails to
/// initialise and logs "Could not initialize NNPACK! Reason: Unsupported hardware." to stderr at every such
/// convolution: 98 lines in one run of the MNIST demo. So when libtorch loads, NNPACK's initialisation is tried once,
/// quietly, and where it fails libtorch is told not to consider it (PyTorch's <c>torch.backends.nnpack.set_flags(False)</c>);
/// those convolutions then run in libtorch's own implementation, as they did after each failed try.
/// </summary>
internal static class NnpackCheck
{
    /// <summary>NNPACK's <c>nnp_initialize</c>, which returns 0 (<c>nnp_status_success</c>) or the reason it cannot run.</summary>
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] private delegate int Initialize();

    /// <summary>Whether libtorch considers NNPACK now (null where it cannot be read).</summary>
    public static bool? Enabled => Flag.Value?.Value;

    private static readonly Lazy<ContextFlag?> Flag = new(() => ContextFlag.Find("userEnabledNNPACK", "setUserEnabledNNPACK"));

    /// <summary>Whether NNPACK initialises on this CPU (null where libtorch has no NNPACK). Logs nothing; NNPACK
    /// initialises once, so asking again gives the same answer.</summary>
    public static bool? Initialises =>
        LibTorchExports.Function<Initialize>(LibTorchExports.Library("libtorch_cpu.so"), "nnp_initialize") is { } initialize ? initialize() == 0 : null;

    /// <summary>Runs the check once libtorch is loaded (see the class summary).</summary>
    public static void Run()
    {
        if (Flag.Value is not { } flag || !flag.Value) return; // not considered anyway
        if (Initialises == false) flag.Value = false;
    }
}
