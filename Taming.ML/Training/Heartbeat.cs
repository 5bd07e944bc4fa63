using System.Globalization;

namespace Taming.ML.Training;

/// <summary>
/// A line in the log when no progress report has come for half a minute: a step on large images or long token grids can
/// take that long on a CPU, and a fit that says nothing until its hundredth step looks hung. It gives the step, the time a
/// step takes and the ETA. Only the clock is read, so on a GPU it never waits for queued work.
/// </summary>
internal sealed class Heartbeat(Action<string>? log, int steps, TimeSpan? budget, int interval)
{
    private static readonly TimeSpan Quiet = TimeSpan.FromSeconds(30);
    private TimeSpan last;

    /// <summary>After each step; <paramref name="reported"/>: a progress report came with it, which restarts the quiet time.</summary>
    public void Step(int step, TimeSpan elapsed, bool reported)
    {
        if (reported) last = elapsed;
        if (log is null || elapsed - last < Quiet) return;
        last = elapsed;
        var c = CultureInfo.InvariantCulture;
        log($"Step {step.ToString("N0", c)} of {steps.ToString("N0", c)} after {ProgressFormat.Duration(elapsed)} " +
            $"({(elapsed.TotalSeconds / step).ToString("F1", c)} s a step), ETA {ProgressFormat.Duration(TimeBudget.Eta(step, steps, budget, elapsed))}; " +
            $"progress reports come every {interval.ToString("N0", c)} steps.");
    }
}
