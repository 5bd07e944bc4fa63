using System.Globalization;

namespace Taming.ML.Training;

/// <summary>
/// Thrown when a fit's losses stop being finite numbers. Its weights then hold NaN or infinities, and the model would
/// give wrong answers without a word (a tokenizer that maps every image to one code, a prior that samples one token),
/// so the fit throws at the report that first sees it rather than returning such a model. The usual remedy is a lower
/// learning rate (<see cref="LearningRate"/> is the one that diverged).
/// </summary>
public sealed class TrainingDivergedException : InvalidOperationException
{
    private TrainingDivergedException(string message, int step, string loss, double learningRate) : base(message) =>
        (Step, Loss, LearningRate) = (step, loss, learningRate);

    /// <summary>The step whose report first saw a loss that is not a finite number.</summary>
    public int Step { get; }

    /// <summary>That loss, as the message names it ("L1 reconstruction loss").</summary>
    public string Loss { get; }

    /// <summary>The fit's peak learning rate.</summary>
    public double LearningRate { get; }

    /// <summary>Throws where one of a report's losses is not a finite number.</summary>
    /// <param name="what">The fit, as the message names it ("The tokenizer's training").</param>
    /// <param name="step">The step of the report.</param>
    /// <param name="optionsName">The options class whose learning rate to lower.</param>
    /// <param name="learningRate">The peak learning rate of the fit.</param>
    /// <param name="losses">The report's losses and their names.</param>
    internal static void ThrowIfNotFinite(string what, int step, string optionsName, double learningRate, params (string Name, double Value)[] losses)
    {
        foreach (var (name, value) in losses)
            if (!double.IsFinite(value))
                throw new TrainingDivergedException(
                    $"{what} diverged: by step {step} its {name} is {value.ToString(CultureInfo.InvariantCulture)}, so the model's weights " +
                    $"are no longer finite numbers and no model is returned. Lower {optionsName}.LearningRate " +
                    $"({learningRate.ToString("G3", CultureInfo.InvariantCulture)} here) and fit again.", step, name, learningRate);
    }
}
