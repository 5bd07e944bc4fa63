namespace Taming.ML.Training;

/// <summary>The wall-clock limit and the progress it implies, shared by both training loops.</summary>
internal static class TimeBudget
{
    /// <summary>The share of the fit done, by steps or by time, whichever is further: 1 or more ends it.</summary>
    public static double Progress(int step, int steps, TimeSpan? budget, TimeSpan elapsed) =>
        Math.Max((double)step / steps, budget is { } b ? elapsed / b : 0);

    /// <summary>The time left: the steps left at the pace so far, or the budget left, whichever is shorter.</summary>
    public static TimeSpan Eta(int step, int steps, TimeSpan? budget, TimeSpan elapsed)
    {
        double bySteps = elapsed.TotalSeconds / Math.Max(1, step) * (steps - step);
        double byBudget = budget is { } b ? Math.Max(0, (b - elapsed).TotalSeconds) : double.MaxValue;
        return TimeSpan.FromSeconds(Math.Min(bySteps, byBudget));
    }

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
