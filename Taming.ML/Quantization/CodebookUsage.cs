using static TorchSharp.torch;

namespace Taming.ML.Quantization;

/// <summary>
/// Counts code occurrences: usage (share of codes seen) and perplexity over a reporting window, and the
/// last step each code was used, which decides dead-code restarts. The counts live on the training device, so
/// a training step adds its codes without waiting for the device; only reports and restart checks read them.
/// </summary>
internal sealed class CodebookUsage : IDisposable
{
    private readonly Tensor windowCounts, lastUsedStep;

    public CodebookUsage(int codebookSize, Device? device = null)
    {
        windowCounts = zeros(new long[] { codebookSize }, ScalarType.Int64, device).DetachFromDisposeScope();
        lastUsedStep = zeros(new long[] { codebookSize }, ScalarType.Int64, device).DetachFromDisposeScope();
    }

    /// <summary>Adds the ids (any shape) of one batch seen at <paramref name="step"/>.</summary>
    public void Add(Tensor ids, int step)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        // index_add_ rather than bincount, which on CUDA reads the largest id back to size its output (a sync per step).
        var flat = ids.flatten();
        var counts = zeros_like(windowCounts).index_add_(0, flat, ones_like(flat), 1);
        windowCounts.add_(counts);
        lastUsedStep.masked_fill_(counts > 0, step);
    }

    /// <summary>Codes not used in the last <paramref name="patience"/> steps.</summary>
    public long[] DeadCodes(int step, int patience)
    {
        using var scope = NewDisposeScope();
        return (step - lastUsedStep >= patience).nonzero().flatten().cpu().data<long>().ToArray();
    }

    /// <summary>Marks restarted codes as fresh so they get a full patience period.</summary>
    public void Revive(long[] codes, int step)
    {
        if (codes.Length == 0) return;
        using var scope = NewDisposeScope();
        lastUsedStep.index_fill_(0, tensor(codes, device: lastUsedStep.device), step);
    }

    /// <summary>Usage and perplexity since the last call, then starts a new window.</summary>
    public (double Usage, double Perplexity) TakeWindow()
    {
        using var scope = NewDisposeScope();
        var stats = Statistics(windowCounts.cpu().data<long>().ToArray());
        windowCounts.zero_();
        return stats;
    }

    /// <summary>Share of codes with a non-zero count, and exp(entropy) of the count distribution.</summary>
    public static (double Usage, double Perplexity) Statistics(IReadOnlyList<long> counts)
    {
        double total = counts.Sum();
        if (total == 0) return (0, 0);
        double entropy = 0;
        int used = 0;
        foreach (long c in counts)
        {
            if (c == 0) continue;
            used++;
            double p = c / total;
            entropy -= p * Math.Log(p);
        }
        return ((double)used / counts.Count, Math.Exp(entropy));
    }

    public void Dispose()
    {
        windowCounts.Dispose();
        lastUsedStep.Dispose();
    }
}
