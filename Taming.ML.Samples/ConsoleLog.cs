using Microsoft.ML;

namespace Taming.ML.Samples;

/// <summary>What of ML.NET's log the sample's commands show on the console.</summary>
internal static class ConsoleLog
{
    /// <summary>Shows whether training runs as a CUDA graph or why it could not (Taming.ML says so in the log).</summary>
    public static MLContext ShowCudaGraphs(this MLContext ml)
    {
        ml.Log += (_, e) => { if (e.Message.Contains("CUDA graph")) Console.WriteLine("  " + e.Message); };
        return ml;
    }
}
