namespace Taming.ML.Data;

/// <summary>Lists the images of a folder laid out as ML.NET's image samples do: one sub-folder per class.</summary>
internal static class ImageFolder
{
    private static readonly HashSet<string> Extensions = new(StringComparer.OrdinalIgnoreCase)
        { ".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp" };

    /// <summary>Image paths relative to <paramref name="folder"/> and their class (the sub-folder's name, or "" at the top).</summary>
    public static List<(string RelativePath, string Label)> List(string folder)
    {
        if (!Directory.Exists(folder)) throw new DirectoryNotFoundException($"Image folder not found: '{folder}'.");
        var items = Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories)
            .Where(p => Extensions.Contains(Path.GetExtension(p)))
            .Select(p => Path.GetRelativePath(folder, p))
            .OrderBy(p => p, StringComparer.Ordinal)
            .Select(p => (p, Path.GetDirectoryName(p) is { Length: > 0 } d ? d.Split(Path.DirectorySeparatorChar)[0] : ""))
            .ToList();
        if (items.Count == 0) throw new InvalidDataException($"No images (png, jpg, bmp, gif, webp) in '{folder}'.");
        return items;
    }
}
