using Taming.ML.Training;

namespace Taming.ML.Sampling;

/// <summary>A progress report of windowed sampling (<see cref="SamplingOptions.Progress"/>).</summary>
public sealed class SamplingProgress
{
    /// <summary>Tokens drawn so far, over all canvases of the batch.</summary>
    public long Tokens { get; init; }
    /// <summary>Tokens of all canvases of the batch.</summary>
    public long TotalTokens { get; init; }
    /// <summary>Time since the batch began.</summary>
    public TimeSpan Elapsed { get; init; }
    /// <summary>Estimated time left for the batch.</summary>
    public TimeSpan Eta { get; init; }

    /// <inheritdoc />
    public override string ToString() =>
        $"sampled {Tokens:N0}/{TotalTokens:N0} tokens ({(double)Tokens / Math.Max(1, TotalTokens):P0})  " +
        $"{Tokens / Math.Max(1e-9, Elapsed.TotalSeconds):F0} tokens/s  ETA {ProgressFormat.Duration(Eta)}";
}
