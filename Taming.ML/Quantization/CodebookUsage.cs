namespace Taming.ML.Quantization;

/// <summary>
/// Counts code occurrences: usage (share of codes seen) and perplexity over a reporting window, and the
/// last step each code was used, which decides dead-code restarts.
/// </summary>
internal sealed class CodebookUsage
{
    private readonly long[] windowCounts;
    private readonly int[] lastUsedStep;

    public CodebookUsage(int codebookSize)
    {
        windowCounts = new long[codebookSize];
        lastUsedStep = new int[codebookSize];
    }

    /// <summary>Adds the ids of one batch seen at <paramref name="step"/>.</summary>
    public void Add(ReadOnlySpan<long> ids, int step)
    {
        foreach (long id in ids)
        {
            windowCounts[id]++;
            lastUsedStep[id] = step;
        }
    }

    /// <summary>Codes not used in the last <paramref name="patience"/> steps.</summary>
    public long[] DeadCodes(int step, int patience)
    {
        var dead = new List<long>();
        for (int i = 0; i < lastUsedStep.Length; i++)
            if (step - lastUsedStep[i] >= patience) dead.Add(i);
        return dead.ToArray();
    }

    /// <summary>Marks restarted codes as fresh so they get a full patience period.</summary>
    public void Revive(IEnumerable<long> codes, int step)
    {
        foreach (long c in codes) lastUsedStep[c] = step;
    }

    /// <summary>Usage and perplexity since the last call, then starts a new window.</summary>
    public (double Usage, double Perplexity) TakeWindow()
    {
        var stats = Statistics(windowCounts);
        Array.Clear(windowCounts);
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
}
