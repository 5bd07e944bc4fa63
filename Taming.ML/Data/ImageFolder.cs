using SkiaSharp;

namespace Taming.ML.Data;

/// <summary>Lists the images of a folder laid out as ML.NET's image samples do: one sub-folder per class.</summary>
internal static class ImageFolder
{
    private static readonly HashSet<string> Extensions = new(StringComparer.OrdinalIgnoreCase)
        { ".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp" };

    /// <summary>
    /// Image paths relative to <paramref name="folder"/> and their class (the sub-folder's name, or "" at the top).
    /// Every file's header is read first, with the decoder that LoadImages uses, so that a damaged or mislabelled file
    /// is named now rather than failing a training run on its first pass.
    /// </summary>
    public static List<(string RelativePath, string Label)> List(string folder)
    {
        if (!Directory.Exists(folder)) throw new DirectoryNotFoundException($"Image folder not found: '{folder}'.");
        var items = Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories)
            .Where(p => Extensions.Contains(Path.GetExtension(p)))
            .Select(p => Path.GetRelativePath(folder, p))
            .OrderBy(p => p, StringComparer.Ordinal)
            .Select(p => (RelativePath: p, Label: Path.GetDirectoryName(p) is { Length: > 0 } d ? d.Split(Path.DirectorySeparatorChar)[0] : ""))
            .ToList();
        if (items.Count == 0) throw new InvalidDataException($"No images (png, jpg, bmp, gif, webp) in '{folder}'.");
        var unreadable = items.Select(i => i.RelativePath).Where(p => !IsDecodable(Path.Combine(folder, p))).ToList();
        if (unreadable.Count > 0)
            throw new InvalidDataException($"{unreadable.Count} of the {items.Count} image files in '{folder}' cannot be decoded " +
                                           $"(damaged, or not an image): {string.Join(", ", unreadable.Take(10))}" +
                                           (unreadable.Count > 10 ? ", …" : "") + ". Remove or replace them.");
        return items;
    }

    /// <summary>True when the file's header names a format and size that the image decoder accepts.</summary>
    public static bool IsDecodable(string path)
    {
        using var codec = SKCodec.Create(path);
        return codec is { Info.Width: > 0, Info.Height: > 0 };
    }
}
