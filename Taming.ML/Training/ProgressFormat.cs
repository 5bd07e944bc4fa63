using System.Globalization;

namespace Taming.ML.Training;

/// <summary>How progress reports write their figures.</summary>
internal static class ProgressFormat
{
    /// <summary>mm:ss under an hour, h:mm:ss beyond (long CPU runs report ETAs of days).</summary>
    public static string Duration(TimeSpan t) => t.TotalHours >= 1
        ? $"{(long)t.TotalHours}:{t:mm\\:ss}"
        : t.ToString("mm\\:ss", CultureInfo.InvariantCulture);

    /// <summary>A loss, or "–" where there is none (NaN: no validation split).</summary>
    public static string Loss(double value) => double.IsNaN(value) ? "–" : value.ToString("F4", CultureInfo.InvariantCulture);
}
