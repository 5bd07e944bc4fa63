using TorchSharp;
using static TorchSharp.torch;
using Taming.ML.Native;

namespace Taming.ML.Training;

/// <summary>
/// Runs a training iteration that works on fixed buffers and reads no host value that changes between runs. On a GPU
/// the first run of each variant (e.g. before and after the GAN starts) captures it as a CUDA graph, and later runs
/// replay it: the host then queues one launch instead of the iteration's thousands of libtorch calls, which matters
/// when the device is fast enough to wait for the host. Only the latest variant's graph is kept. A failed capture
/// says why in the log and leaves the iteration eager.
/// </summary>
internal sealed class CapturedIteration : IDisposable
{
    private readonly string name;
    private readonly Device device;
    private readonly Action<string>? log;
    private bool graphs;
    private CudaGraph? captured;
    private string? capturedVariant;

    /// <param name="name">What the log calls the iteration ("The training iteration").</param>
    /// <param name="enabled">Capture at all (the options' CudaGraphs); nothing is captured off CUDA.</param>
    /// <param name="device">The training device.</param>
    /// <param name="log">Hears whether the iteration was captured.</param>
    public CapturedIteration(string name, bool enabled, Device device, Action<string>? log)
    {
        (this.name, this.device, this.log) = (name, device, log);
        graphs = enabled && device.type == DeviceType.CUDA;
    }

    /// <summary>Runs <paramref name="iteration"/> once, or replays its graph; <paramref name="variant"/> names the
    /// variant in the log (" with the GAN") and tells variants apart.</summary>
    public void Run(Action iteration, string variant = "")
    {
        if (captured is not null && capturedVariant == variant)
        {
            captured.Replay();
            return;
        }
        captured?.Dispose(); // a new variant: the previous one's graph is not needed again
        captured = null;
        if (graphs && !CudaGraph.Available)
        {
            log?.Invoke($"{name} runs eagerly: libtorch's CUDA graph functions were not found, or an earlier capture in this process failed.");
            graphs = false;
        }
        if (!graphs)
        {
            iteration();
            return;
        }
        captured = CudaGraph.CaptureAfterWarmUp(iteration, device, // runs the iteration once either way
            e => log?.Invoke($"{name} could not be captured as a CUDA graph ({TorchRuntime.Brief(e.Message)}); it runs eagerly."));
        capturedVariant = variant;
        graphs = captured is not null;
        if (graphs) log?.Invoke($"{name}{variant} is captured as a CUDA graph.");
    }

    public void Dispose() => captured?.Dispose();
}
