namespace Taming.ML.Training;

/// <summary>A progress report of tokenizer training.</summary>
public sealed class VqganProgress
{
    /// <summary>Steps done.</summary>
    public int Step { get; init; }
    /// <summary>Steps planned.</summary>
    public int TotalSteps { get; init; }
    /// <summary>L1 reconstruction loss (mean absolute error on [−1, 1] pixels), averaged since the last report.</summary>
    public double ReconstructionLoss { get; init; }
    /// <summary>L1 loss of the held-out images' reconstructions (<see cref="Models.VqganOptions.ValidationSet"/>) at this
    /// report; NaN without a validation set.</summary>
    public double ValidationLoss { get; init; } = double.NaN;

    /// <summary>Quantizer (codebook + commitment) loss, averaged since the last report.</summary>
    public double QuantizerLoss { get; init; }
    /// <summary>Generator GAN term −mean(D(x̂)) (0 before the GAN starts).</summary>
    public double GeneratorLoss { get; init; }
    /// <summary>Discriminator hinge loss (0 before the GAN starts).</summary>
    public double DiscriminatorLoss { get; init; }
    /// <summary>The adaptive GAN weight λ·disc_weight of the last step (0 before the GAN starts).</summary>
    public double Lambda { get; init; }
    /// <summary>Share of the codebook used by the batches since the last report, 0–1.</summary>
    public double CodebookUsage { get; init; }
    /// <summary>Perplexity of the code distribution since the last report (the number of equally likely codes it is worth).</summary>
    public double Perplexity { get; init; }
    /// <summary>The learning rate of the last step.</summary>
    public double LearningRate { get; init; }
    /// <summary>Training throughput since the last report.</summary>
    public double ImagesPerSecond { get; init; }
    /// <summary>Time since training began.</summary>
    public TimeSpan Elapsed { get; init; }
    /// <summary>Estimated time left.</summary>
    public TimeSpan Eta { get; init; }

    internal bool StopRequested { get; private set; }

    /// <summary>Ends training after this step; the model trained so far is kept.</summary>
    public void RequestStop() => StopRequested = true;

    /// <inheritdoc />
    public override string ToString() =>
        $"step {Step}/{TotalSteps}  L1 {ReconstructionLoss:F4}{(double.IsNaN(ValidationLoss) ? "" : $"  val {ValidationLoss:F4}")}  vq {QuantizerLoss:F4}  g {GeneratorLoss:F3}  d {DiscriminatorLoss:F3}  " +
        $"λ {Lambda:F3}  usage {CodebookUsage:P0}  ppl {Perplexity:F0}  lr {LearningRate:0.0e+0}  {ImagesPerSecond:F0} img/s  ETA {ProgressFormat.Duration(Eta)}";
}
