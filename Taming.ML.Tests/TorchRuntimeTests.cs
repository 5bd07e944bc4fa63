using Taming.ML.Native;
using TorchSharp;

namespace Taming.ML.Tests;

[TestClass]
public sealed class TorchRuntimeTests
{
    [TestMethod]
    public void NativeLibraryLoadsFromTheBuildOutput() => TorchRuntime.EnsureLoaded();

    [TestMethod]
    public void CpuResolvesAndMissingCudaIsExplained()
    {
        Assert.AreEqual(DeviceType.CPU, TorchRuntime.ResolveDevice("cpu").type);
        if (torch.cuda.is_available()) return; // the explanation is for machines without a GPU
        var e = Assert.ThrowsExactly<InvalidOperationException>(() => TorchRuntime.ResolveDevice("cuda"));
        StringAssert.Contains(e.Message, "TorchSharp-cuda-linux");
    }
}
