using Microsoft.ML;

namespace Taming.ML.Samples;

/// <summary>What of ML.NET's log the sample's commands show on the console.</summary>
internal static class ConsoleLog
{
    /// <summary>Shows how training runs: the tokenizer's data and batch size, and whether a step runs as a CUDA graph or
    /// why it could not (Taming.ML says both in the log; progress lines come through the options' callbacks), how far the
    /// first pass over the data has got, where training goes slower than its progress reports (a line after 30 quiet
    /// seconds), whether the GAN ran, and every
    /// warning (a file left out of an image folder, a model moved to the CPU).</summary>
    public static MLContext ShowTrainingSetup(this MLContext ml)
    {
        ml.Log += (_, e) =>
        {
            if (e.Kind == Microsoft.ML.Runtime.ChannelMessageKind.Warning)
                Console.WriteLine("  warning: " + e.RawMessage);
            else if (e.Message.Contains("CUDA graph") || e.Message.Contains("Training on ") || e.Message.Contains("oneDNN") ||
                     e.RawMessage.StartsWith("Read") || e.RawMessage.StartsWith("Step ") || e.RawMessage.StartsWith("Streamed") || e.RawMessage.StartsWith("Validation") || e.RawMessage.StartsWith("The GAN"))
                Console.WriteLine("  " + e.RawMessage);
        };
        return ml;
    }
}
