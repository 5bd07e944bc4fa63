using System.Text.Json;

namespace Taming.ML.Models;

/// <summary>The settings of an options class that shape a fitted model: a fit that continues a model takes them from
/// the model's own options rather than from the estimator's.</summary>
internal static class ModelSettings
{
    /// <summary>Sets <paramref name="names"/> of <paramref name="target"/> to <paramref name="trained"/>'s values, and logs
    /// those that differed ("CodebookSize 512 → 1024"; settings left at 0, taken from the data, are not named).</summary>
    public static void Take<T>(T target, T trained, IEnumerable<string> names, Action<string> log)
    {
        var replaced = new List<string>();
        foreach (var name in names)
        {
            var property = typeof(T).GetProperty(name) ?? throw new InvalidOperationException($"{typeof(T).Name} has no setting {name}.");
            object? mine = property.GetValue(target), theirs = property.GetValue(trained);
            string a = JsonSerializer.Serialize(mine), b = JsonSerializer.Serialize(theirs);
            if (a != b && mine is not 0) replaced.Add($"{name} {a} → {b}");
            property.SetValue(target, theirs is Array array ? array.Clone() : theirs);
        }
        if (replaced.Count > 0) log($"The continued model keeps its own shape; these options are not used: {string.Join(", ", replaced)}.");
    }
}
