using System.Globalization;

namespace Taming.ML.Training;

/// <summary>
/// Ends a fit whose losses stopped being finite numbers. Its weights then hold NaN or infinities, and the model would
/// give wrong answers without a word (a tokenizer that maps every image to one code, a prior that samples one token),
/// so the fit throws at the report that first sees it rather than returning such a model.
/// </summary>
internal static class Divergence
{
    /// <param name="what">The fit, as the message names it ("The tokenizer's training").</param>
    /// <param name="step">The step of the report.</param>
    /// <param name="optionsName">The options class whose learning rate to lower.</param>
    /// <param name="learningRate">The peak learning rate of the fit.</param>
    /// <param name="losses">The report's losses and their names.</param>
    public static void Check(string what, int step, string optionsName, double learningRate, params (string Name, double Value)[] losses)
    {
        foreach (var (name, value) in losses)
            if (!double.IsFinite(value))
                throw new InvalidOperationException(
                    $"{what} diverged: by step {step} its {name} is {value.ToString(CultureInfo.InvariantCulture)}, so the model's weights " +
                    $"are no longer finite numbers and no model is returned. Lower {optionsName}.LearningRate " +
                    $"({learningRate.ToString("G3", CultureInfo.InvariantCulture)} here) and fit again.");
    }
}
