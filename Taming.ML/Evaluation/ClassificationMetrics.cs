namespace Taming.ML.Evaluation;

/// <summary>Share of images a classifier assigns to their stated class: accuracy on real data, class consistency on generated data.</summary>
public sealed class ClassificationMetrics
{
    /// <summary>Images judged.</summary>
    public int Count { get; init; }
    /// <summary>Share assigned to their stated class, 0–1.</summary>
    public double Accuracy { get; init; }
    /// <summary>The same share per stated class (NaN for a class with no images).</summary>
    public IReadOnlyList<double> PerClass { get; init; } = Array.Empty<double>();

    /// <inheritdoc />
    public override string ToString() =>
        $"{Accuracy:P1} of {Count} images (per class: {string.Join(" ", PerClass.Select(p => double.IsNaN(p) ? "-" : p.ToString("P0")))})";

    internal static ClassificationMetrics From(IReadOnlyList<int> stated, IReadOnlyList<int> predicted, int classes)
    {
        var hits = new int[classes];
        var totals = new int[classes];
        for (int i = 0; i < stated.Count; i++)
        {
            totals[stated[i]]++;
            if (stated[i] == predicted[i]) hits[stated[i]]++;
        }
        return new ClassificationMetrics
        {
            Count = stated.Count,
            Accuracy = stated.Count == 0 ? double.NaN : (double)hits.Sum() / stated.Count,
            PerClass = Enumerable.Range(0, classes).Select(c => totals[c] == 0 ? double.NaN : (double)hits[c] / totals[c]).ToArray(),
        };
    }
}
