namespace Taming.ML.Training;

/// <summary>The wall-clock limit shared by both training loops.</summary>
internal static class TimeBudget
{
    /// <summary>
    /// Refuses a zero or negative budget, which would save an untrained model. Checked by the estimators before they read the data, not in
    /// the options' Validate, which also runs on loading models saved with any budget.
    /// </summary>
    public static void Check(TimeSpan? budget, string optionsName)
    {
        if (budget is { } b && b <= TimeSpan.Zero)
            throw new ArgumentException($"{optionsName}.TimeBudget: must be positive (or null for no limit), got {b}.", "TimeBudget");
    }
}
