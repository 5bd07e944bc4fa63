using System.Diagnostics;
using System.Globalization;

namespace Taming.ML.Training;

/// <summary>
/// Reports how far a fit's first pass over its data has got: decoding thousands of photos, or tokenizing them for a
/// prior, takes minutes before the first training step. A line every <c>interval</c> (rows read, rate, and an ETA
/// where the row count is known), and one when the pass ends. Rows may be counted from several threads.
/// </summary>
internal sealed class ReadProgress(Action<string>? log, string what, long? total, TimeSpan? interval = null)
{
    private readonly Stopwatch clock = Stopwatch.StartNew();
    private readonly TimeSpan interval = interval ?? TimeSpan.FromSeconds(10);
    private TimeSpan next = interval ?? TimeSpan.FromSeconds(10);
    private readonly Lock gate = new();
    private long rows;

    /// <summary>Counts one row read.</summary>
    public void Add()
    {
        lock (gate)
        {
            rows++;
            if (log is null || clock.Elapsed < next) return;
            next = clock.Elapsed + interval;
            double rate = rows / clock.Elapsed.TotalSeconds;
            string of = total is > 0 ? $" of {total.Value.ToString("N0", CultureInfo.InvariantCulture)}" : "";
            string eta = total is > 0 && rate > 0 ? $", ETA {ProgressFormat.Duration(TimeSpan.FromSeconds(Math.Max(0, total.Value - rows) / rate))}" : "";
            log($"Reading {what}: {rows.ToString("N0", CultureInfo.InvariantCulture)}{of} ({rate.ToString("F0", CultureInfo.InvariantCulture)}/s{eta})");
        }
    }

    /// <summary>Reports the end of the pass.</summary>
    public void Done() =>
        log?.Invoke($"Read {rows.ToString("N0", CultureInfo.InvariantCulture)} {what} in {ProgressFormat.Duration(clock.Elapsed)}.");
}
