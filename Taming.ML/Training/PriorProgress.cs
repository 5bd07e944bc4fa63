namespace Taming.ML.Training;

/// <summary>A progress report of prior training.</summary>
public sealed class PriorProgress
{
    /// <summary>Steps done.</summary>
    public int Step { get; init; }
    /// <summary>Steps planned.</summary>
    public int TotalSteps { get; init; }
    /// <summary>Mean training cross-entropy (nats per image token) since the last report.</summary>
    public double TrainLoss { get; init; }
    /// <summary>Cross-entropy on the held-out rows (NaN without a validation split).</summary>
    public double ValidationLoss { get; init; }
    /// <summary>Validation loss in bits per image token (training loss where there is no split).</summary>
    public double BitsPerToken { get; init; }
    /// <summary>The learning rate of the last step.</summary>
    public double LearningRate { get; init; }
    /// <summary>Training throughput since the last report.</summary>
    public double TokensPerSecond { get; init; }
    /// <summary>Time since training began.</summary>
    public TimeSpan Elapsed { get; init; }
    /// <summary>Estimated time left.</summary>
    public TimeSpan Eta { get; init; }

    internal bool StopRequested { get; private set; }

    /// <summary>Ends training after this report; the best weights so far are kept.</summary>
    public void RequestStop() => StopRequested = true;

    /// <inheritdoc />
    public override string ToString() =>
        $"step {Step}/{TotalSteps}  train {TrainLoss:F4}  val {ProgressFormat.Loss(ValidationLoss)}  {BitsPerToken:F3} bits/token  " +
        $"lr {LearningRate:0.0e+0}  {TokensPerSecond:F0} tokens/s  ETA {ProgressFormat.Duration(Eta)}";
}
