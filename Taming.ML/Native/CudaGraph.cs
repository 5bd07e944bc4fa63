using System.Runtime.InteropServices;
using TorchSharp;

namespace Taming.ML.Native;

/// <summary>
/// A sequence of libtorch calls captured once on the GPU and replayed (a CUDA graph): a step of hundreds of small
/// kernels then costs one launch instead of hundreds of host-side calls. TorchSharp 0.107 does not wrap CUDA graphs;
/// libtorch exports at::cuda::CUDAGraph and c10's stream functions, which are called here by their C++ (Itanium
/// ABI) names (<see cref="LibTorchExports"/>). Where they are missing, or capture fails,
/// <see cref="CaptureAfterWarmUp"/> returns null and the caller goes on eagerly.
/// </summary>
internal sealed class CudaGraph : IDisposable
{
    private readonly Functions api;
    private readonly torch.Device device;
    private IntPtr self;

    private CudaGraph(Functions api, torch.Device device, IntPtr self) => (this.api, this.device, this.self) = (api, device, self);

    /// <summary>Whether captures can be tried: libtorch's CUDA graph functions were found and no capture in this process
    /// has failed.</summary>
    public static bool Available => Api.Value is not null;

    /// <summary>
    /// Runs <paramref name="step"/> once eagerly (real work, which also initialises libraries and caches), then
    /// captures it without running it, both on a side stream. Null where graphs are unavailable or the capture failed;
    /// <paramref name="step"/> has run exactly once either way. The tensors the step reads and writes must outlive
    /// the graph, and the step must not wait for the device. <paramref name="failed"/> hears why a capture failed.
    /// </summary>
    public static CudaGraph? CaptureAfterWarmUp(Action step, torch.Device device, Action<Exception>? failed = null)
    {
        if (device.type != DeviceType.CUDA || Api.Value is not { } api)
        {
            step();
            return null;
        }
        sbyte index = (sbyte)device.index;
        var previous = api.CurrentStream(index);
        var side = api.StreamFromPool(0, index);
        torch.cuda.synchronize(device); // the side stream's work comes after everything queued before
        var self = IntPtr.Zero;
        bool capturing = false;
        try
        {
            // The warm-up runs on the stream that captures, as PyTorch prescribes: state kept per stream (cuBLAS
            // workspaces, the streams that autograd's gradient accumulators remember from an earlier backward pass)
            // then belongs to it, and a capture never waits on a stream outside it.
            api.SetCurrentStream(side);
            step();
            torch.cuda.synchronize(device); // work queued after this call, on any stream, finds the warm-up done
            // Tensors the collector would finalise mid-capture are freed now.
            GC.Collect();
            GC.WaitForPendingFinalizers();
            self = Marshal.AllocHGlobal(ObjectBytes);
            for (int i = 0; i < ObjectBytes; i += 8) Marshal.WriteInt64(self, i, 0);
            api.Construct(self, 0);
            api.CaptureBegin(self, 0, 0, ThreadLocalCapture);
            capturing = true;
            step();
            capturing = false;
            api.CaptureEnd(self);
            return new CudaGraph(api, device, self);
        }
        catch (Exception e) when (capturing)
        {
            failed?.Invoke(e);
            // A libtorch call refused to be captured. Ending the capture would throw inside libtorch, so the side
            // stream and this object are abandoned; graphs stay off for the process and the caller goes on eagerly.
            Api.Disable();
            return null;
        }
        finally
        {
            api.SetCurrentStream(previous);
        }
    }

    /// <summary>Runs the captured work again on the current stream.</summary>
    public void Replay()
    {
        ObjectDisposedException.ThrowIf(self == IntPtr.Zero, this);
        api.Replay(self);
    }

    /// <summary>Waits for the replays to finish, then frees the graph and its memory pool (whose blocks belong to the
    /// capture stream, which does not wait for the replays).</summary>
    public void Dispose()
    {
        if (self == IntPtr.Zero) return;
        torch.cuda.synchronize(device);
        api.Destroy(self);
        Marshal.FreeHGlobal(self);
        self = IntPtr.Zero;
    }

    // More than at::cuda::CUDAGraph takes (a few hundred bytes in libtorch 2.x).
    private const int ObjectBytes = 16384;
    private const int ThreadLocalCapture = 1; // cudaStreamCaptureModeThreadLocal

    /// <summary>c10::cuda::CUDAStream by value: c10::Device (type, index: one byte each) and a 64-bit stream id.</summary>
    [StructLayout(LayoutKind.Sequential)]
    private struct CudaStream
    {
        public long Device;
        public long Id;
    }

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] private delegate CudaStream StreamFromPoolFn(byte highPriority, sbyte device);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] private delegate CudaStream CurrentStreamFn(sbyte device);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] private delegate void SetCurrentStreamFn(CudaStream stream);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] private delegate void ConstructFn(IntPtr self, byte keepGraph);
    // std::pair<unsigned long long, unsigned long long> (the memory pool id, {0, 0}: a new pool) travels in two registers.
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] private delegate void CaptureBeginFn(IntPtr self, ulong poolFirst, ulong poolSecond, int mode);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] private delegate void MethodFn(IntPtr self);

    private sealed record Functions(StreamFromPoolFn StreamFromPool, CurrentStreamFn CurrentStream, SetCurrentStreamFn SetCurrentStream,
        ConstructFn Construct, CaptureBeginFn CaptureBegin, MethodFn CaptureEnd, MethodFn Replay, MethodFn Destroy);

    /// <summary>The exported functions, or null where a library or name is missing (a CPU build of libtorch).</summary>
    private static class Api
    {
        private static Lazy<Functions?> functions = new(Find);

        public static Functions? Value => functions.Value;

        public static void Disable() => functions = new Lazy<Functions?>((Functions?)null);

        private static Functions? Find()
        {
            var c10 = LibTorchExports.Library("libc10_cuda.so");
            var torchCuda = LibTorchExports.Library("libtorch_cuda.so");
            if (c10 is null || torchCuda is null) return null;
            T? Get<T>(IntPtr? library, string name) where T : Delegate => LibTorchExports.Function<T>(library, name);
            var streamFromPool = Get<StreamFromPoolFn>(c10, "_ZN3c104cuda17getStreamFromPoolEba");
            var currentStream = Get<CurrentStreamFn>(c10, "_ZN3c104cuda20getCurrentCUDAStreamEa");
            var setCurrentStream = Get<SetCurrentStreamFn>(c10, "_ZN3c104cuda20setCurrentCUDAStreamENS0_10CUDAStreamE");
            var construct = Get<ConstructFn>(torchCuda, "_ZN2at4cuda9CUDAGraphC1Eb");
            var captureBegin = Get<CaptureBeginFn>(torchCuda, "_ZN2at4cuda9CUDAGraph13capture_beginESt4pairIyyE21cudaStreamCaptureMode");
            var captureEnd = Get<MethodFn>(torchCuda, "_ZN2at4cuda9CUDAGraph11capture_endEv");
            var replay = Get<MethodFn>(torchCuda, "_ZN2at4cuda9CUDAGraph6replayEv");
            var destroy = Get<MethodFn>(torchCuda, "_ZN2at4cuda9CUDAGraphD1Ev");
            return streamFromPool is null || currentStream is null || setCurrentStream is null || construct is null
                   || captureBegin is null || captureEnd is null || replay is null || destroy is null
                ? null
                : new Functions(streamFromPool, currentStream, setCurrentStream, construct, captureBegin, captureEnd, replay, destroy);
        }
    }
}
