using Taming.ML.Training;

namespace Taming.ML.Evaluation;

/// <summary>
/// The loss curves of a fit, drawn as a PNG: pass <see cref="Add(VqganProgress)"/> (a tokenizer's fit) or
/// <see cref="Add(PriorProgress)"/> (a prior's) as the options' <c>Progress</c>, or call it from your own handler, then
/// <see cref="SavePng"/>. A tokenizer's curves: L1 reconstruction loss (and that of its validation set, where it has one), quantizer loss, the GAN's generator and
/// discriminator losses (once it has started), codebook usage and the learning rate; a prior's: training and validation
/// cross-entropy and the learning rate. One instance per fit; reports may come from any thread.
/// </summary>
public sealed class TrainingCurves
{
    private const string Reconstruction = "L1 reconstruction loss", Quantizer = "Quantizer loss", Gan = "GAN losses",
        Usage = "Codebook usage (%)", CrossEntropy = "Cross-entropy (nats per token)", Rate = "Learning rate";
    private readonly List<ChartPanel> panels = new();
    private readonly Lock gate = new();

    /// <summary>The reports recorded so far.</summary>
    public int Count { get; private set; }

    /// <summary>Records a tokenizer fit's progress report.</summary>
    public void Add(VqganProgress progress) => Record(progress, () =>
    {
        Point(Reconstruction, "training", progress.Step, progress.ReconstructionLoss);
        if (!double.IsNaN(progress.ValidationLoss)) Point(Reconstruction, "validation", progress.Step, progress.ValidationLoss);
        Point(Quantizer, "VQ", progress.Step, progress.QuantizerLoss);
        if (progress.GeneratorLoss != 0 || progress.DiscriminatorLoss != 0 || panels.Any(p => p.Title == Gan)) // once the GAN has started
        {
            Point(Gan, "generator", progress.Step, progress.GeneratorLoss);
            Point(Gan, "discriminator", progress.Step, progress.DiscriminatorLoss);
        }
        Point(Usage, "usage", progress.Step, 100 * progress.CodebookUsage);
        Point(Rate, "rate", progress.Step, progress.LearningRate);
    });

    /// <summary>Records a prior fit's progress report.</summary>
    public void Add(PriorProgress progress) => Record(progress, () =>
    {
        Point(CrossEntropy, "training", progress.Step, progress.TrainLoss);
        if (!double.IsNaN(progress.ValidationLoss)) Point(CrossEntropy, "validation", progress.Step, progress.ValidationLoss);
        Point(Rate, "rate", progress.Step, progress.LearningRate);
    });

    /// <summary>Counts a report and adds its points, under the lock (reports come from the training thread).</summary>
    private void Record(object progress, Action points)
    {
        ArgumentNullException.ThrowIfNull(progress);
        lock (gate)
        {
            Count++;
            points();
        }
    }

    /// <summary>Draws the curves recorded so far to <paramref name="path"/>: a panel per quantity, against the step,
    /// <paramref name="width"/> pixels wide.</summary>
    public void SavePng(string path, int width = 800)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        lock (gate)
        {
            if (Count == 0) throw new InvalidOperationException($"No progress reports were recorded, so there are no curves to save to '{path}'.");
            LineChart.SavePng(path, panels.OrderBy(p => Order(p.Title)).ToList(), width);
        }
    }

    /// <summary>Panels in a fixed order, whichever appears first (the GAN's starts late).</summary>
    private static int Order(string title) => Array.IndexOf(new[] { Reconstruction, Quantizer, Gan, Usage, CrossEntropy, Rate }, title);

    private void Point(string panelTitle, string seriesName, int step, double value)
    {
        var panel = panels.Find(p => p.Title == panelTitle);
        if (panel is null) panels.Add(panel = new ChartPanel(panelTitle, new List<ChartSeries>()));
        var series = panel.Series.Find(s => s.Name == seriesName);
        if (series is null) panel.Series.Add(series = new ChartSeries(seriesName, new List<(double, double)>()));
        series.Points.Add((step, value));
    }
}
