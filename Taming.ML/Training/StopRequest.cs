namespace Taming.ML.Training;

/// <summary>What a fit does with its options' StopToken before it has trained.</summary>
internal static class StopRequest
{
    /// <summary>
    /// StopToken ends a fit keeping the model trained so far; before the first step there is none (and a model it
    /// continues is left as it was), so a stop while the data are read, or before training begins, abandons the fit.
    /// </summary>
    public static void ThrowIfBeforeTraining(CancellationToken stop, string optionsName)
    {
        if (stop.IsCancellationRequested)
            throw new OperationCanceledException(
                $"{optionsName}.StopToken was set before the first training step, so there is no trained model to return.", stop);
    }
}
