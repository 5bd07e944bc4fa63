using Taming.ML.Native;
using TorchSharp;

namespace Taming.ML.Tests;

[TestClass]
public sealed class TorchRuntimeTests
{
    [TestMethod]
    public void NativeLibraryLoadsFromTheBuildOutput() => TorchRuntime.EnsureLoaded();

    [TestMethod]
    public void LargeTensorsAreServedFromTheHeapNotEachByItsOwnMmap()
    {
        TorchRuntime.EnsureLoaded();
        if (!OperatingSystem.IsLinux()) return;
        StringAssert.StartsWith(MallocTuning.Finding, "large tensors reused from the heap");
        // 40 MB: above the 32 MB ceiling of glibc's dynamic threshold, so by default an mmap of its own (within the 64 MB
        // that a worker thread's arena can hold).
        long? mapped = null;
        try { mapped = (long)MallocInfo().MappedBytes; }
        catch (EntryPointNotFoundException) { } // glibc before 2.33 cannot say
        if (mapped is { } before)
            using (var tensor = torch.empty(10_000_000))
                Assert.IsTrue((long)MallocInfo().MappedBytes - before < 10_000_000, $"mmapped {((long)MallocInfo().MappedBytes - before) / 1e6:F0} MB");

        // TAMING_MALLOC=default leaves malloc alone (the setting stays as the process's start set it).
        Environment.SetEnvironmentVariable("TAMING_MALLOC", "default");
        try
        {
            MallocTuning.Run();
            Assert.AreEqual("left as it is (TAMING_MALLOC=default)", MallocTuning.Finding);
        }
        finally
        {
            Environment.SetEnvironmentVariable("TAMING_MALLOC", null);
            MallocTuning.Run();
        }
    }

    [System.Runtime.InteropServices.StructLayout(System.Runtime.InteropServices.LayoutKind.Sequential)]
    private struct MallInfo2
    {
        public nuint Arena, OrdinaryBlocks, SmallBlocks, MappedBlocks, MappedBytes, Usmblks, Fsmblks, InUse, Free, Keepcost;
    }

    [System.Runtime.InteropServices.DllImport("libc.so.6", EntryPoint = "mallinfo2")]
    private static extern MallInfo2 MallocInfo();

    [TestMethod]
    public void CpuResolvesAndMissingCudaIsExplained()
    {
        Assert.AreEqual(DeviceType.CPU, TorchRuntime.ResolveDevice("cpu").type);
        if (torch.cuda.is_available()) return; // the explanation is for machines without a GPU
        var e = Assert.ThrowsExactly<InvalidOperationException>(() => TorchRuntime.ResolveDevice("cuda"));
        StringAssert.Contains(e.Message, "TorchSharp-cuda-linux");
    }

    [TestMethod]
    public void ATrainingStepRunsEagerlyAndSaysSoWhereCudaGraphsAreUnavailable()
    {
        if (CudaGraph.Available) return; // a CUDA build of libtorch: the fallback is for the others
        var log = new List<string>();
        var step = new Training.CapturedIteration("The test step", enabled: true, new torch.Device(DeviceType.CUDA), log.Add);
        int runs = 0;
        step.Run(() => runs++);
        step.Run(() => runs++);
        Assert.AreEqual(2, runs, "the step did not run every time");
        Assert.AreEqual(1, log.Count, string.Join(" | ", log));
        StringAssert.StartsWith(log[0], "The test step runs eagerly: libtorch's CUDA graph functions were not found");
    }

    [TestMethod]
    public void CudnnAutotunerIsOnInsideCudaScopesAndRestoredAfterTheLastOne()
    {
        // The flag lives in libtorch's global context, which CPU builds have too; only the scope's device is CUDA here.
        Assert.IsNotNull(CudnnAutotuner.Enabled, "libtorch's benchmarkCuDNN flag was not found");
        bool before = CudnnAutotuner.Enabled!.Value;
        try
        {
            CudnnAutotuner.Enabled = false;
            using (CudnnAutotuner.On(torch.CPU)) Assert.IsFalse(CudnnAutotuner.Enabled, "a CPU scope turned the autotuner on");
            var cuda = new torch.Device(DeviceType.CUDA);
            var outer = CudnnAutotuner.On(cuda);
            Assert.IsTrue(CudnnAutotuner.Enabled, "a CUDA scope did not turn the autotuner on");
            using (CudnnAutotuner.On(cuda)) Assert.IsTrue(CudnnAutotuner.Enabled);
            Assert.IsTrue(CudnnAutotuner.Enabled, "an inner scope turned it off while the outer one was open");
            outer.Dispose();
            outer.Dispose(); // a second dispose changes nothing
            Assert.IsFalse(CudnnAutotuner.Enabled, "the value from before the first scope was not restored");
        }
        finally { CudnnAutotuner.Enabled = before; }
    }

    [TestMethod]
    public void NnpackIsConsideredOnlyWhereItInitialises()
    {
        TorchRuntime.EnsureLoaded();
        // Where NNPACK cannot run, libtorch warned on stderr at every convolution it considered NNPACK for.
        Assert.IsNotNull(NnpackCheck.Enabled, "libtorch's userEnabledNNPACK flag was not found");
        if (NnpackCheck.Initialises is not { } initialises) return; // a libtorch without NNPACK: nothing to turn off
        Assert.AreEqual(initialises, NnpackCheck.Enabled, $"NNPACK initialises: {initialises}");
        // A single small image with a 3×3 kernel is one of the convolutions oneDNN leaves to libtorch's others.
        using var output = torch.nn.functional.conv2d(torch.ones(1, 2, 5, 5), torch.ones(2, 2, 3, 3), padding: new long[] { 1, 1 });
        Assert.AreEqual(18f, output[0, 0, 2, 2].item<float>(), "a 3×3 sum over two channels of ones");
    }
}
