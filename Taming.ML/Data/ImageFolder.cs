using SkiaSharp;

namespace Taming.ML.Data;

/// <summary>Lists the images of a folder laid out as ML.NET's image samples do: one sub-folder per class.</summary>
internal static class ImageFolder
{
    private static readonly HashSet<string> Extensions = new(StringComparer.OrdinalIgnoreCase)
        { ".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp" };

    // Image formats that LoadImages' decoder (SkiaSharp) cannot read: skipped with a warning rather than silently,
    // so that a folder of TIFF scans does not train on the few PNGs beside them unnoticed.
    private static readonly HashSet<string> Undecodable = new(StringComparer.OrdinalIgnoreCase)
        { ".tif", ".tiff", ".heic", ".heif", ".avif", ".jxl", ".jp2", ".svg", ".psd", ".exr", ".hdr", ".tga", ".ppm", ".pgm", ".pbm" };

    /// <summary>
    /// Image paths relative to <paramref name="folder"/> and their class (the sub-folder's name, or "" at the top).
    /// Every file's header is read first, with the decoder that LoadImages uses, so that a damaged or mislabelled file
    /// is named now rather than failing a training run on its first pass. Files in image formats that the decoder
    /// cannot read (TIFF, HEIC, AVIF, …) are left out and reported to <paramref name="warn"/>; hidden files and folders
    /// (names that start with a dot) are left out. Photos stored on their side are counted in a warning unless they will
    /// be turned <paramref name="upright"/>.
    /// </summary>
    public static List<(string RelativePath, string Label)> List(string folder, Action<string>? warn = null, bool upright = false)
    {
        if (!Directory.Exists(folder)) throw new DirectoryNotFoundException($"Image folder not found: '{folder}'.");
        var files = Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories)
            .Select(p => Path.GetRelativePath(folder, p))
            // Hidden files and folders (macOS's "._photo.jpg" copies, .ipynb_checkpoints) are neither images nor classes.
            .Where(p => !p.Split(Path.DirectorySeparatorChar).Any(part => part.StartsWith('.')))
            .OrderBy(p => p, StringComparer.Ordinal)
            .ToList();
        var items = files
            .Where(p => Extensions.Contains(Path.GetExtension(p)))
            .Select(p => (RelativePath: p, Label: Path.GetDirectoryName(p) is { Length: > 0 } d ? d.Split(Path.DirectorySeparatorChar)[0] : ""))
            .ToList();
        string skipped = SkippedFormats(files);
        if (items.Count == 0)
            throw new InvalidDataException($"No images (png, jpg, bmp, gif, webp) in '{folder}'" +
                                           (skipped.Length > 0 ? $"; {skipped}" : "") + ".");
        if (skipped.Length > 0) warn?.Invoke($"'{folder}': {skipped}.");
        var headers = items.Select(i => (i.RelativePath, Origin: Origin(Path.Combine(folder, i.RelativePath)))).ToList();
        var unreadable = headers.Where(h => h.Origin is null).Select(h => h.RelativePath).ToList();
        if (unreadable.Count > 0)
            throw new InvalidDataException($"{unreadable.Count} of the {items.Count} image files in '{folder}' cannot be decoded " +
                                           $"(damaged, or not an image): {string.Join(", ", unreadable.Take(10))}" +
                                           (unreadable.Count > 10 ? ", …" : "") + ". Remove or replace them.");
        // Their label is missing (an empty class name maps to no key), which a class-conditional prior refuses.
        var loose = items.Where(i => i.Label.Length == 0).Select(i => i.RelativePath).ToList();
        if (loose.Count > 0 && loose.Count < items.Count)
            warn?.Invoke($"'{folder}': {loose.Count} image(s) lie beside the class sub-folders rather than in one (first '{loose[0]}'), " +
                         "so their label is missing, which a class-conditional prior refuses; move them into a class folder to give them a class.");
        // Cameras store portrait shots sideways with an EXIF orientation; LoadImages reads the pixels as stored.
        var turned = headers.Where(h => h.Origin != SKEncodedOrigin.TopLeft).Select(h => h.RelativePath).ToList();
        if (turned.Count > 0 && !upright)
            warn?.Invoke($"'{folder}': {turned.Count} image(s) carry an EXIF orientation that LoadImages does not apply, so they are " +
                         $"read as stored, e.g. on their side (first '{turned[0]}'); LoadFromImageFolder(…, upright: true) turns them upright.");
        return items;
    }

    /// <summary>"" when every file is in a readable format or not an image; otherwise what was left out, and why.</summary>
    private static string SkippedFormats(List<string> files)
    {
        var skipped = files.Where(p => Undecodable.Contains(Path.GetExtension(p))).ToList();
        if (skipped.Count == 0) return "";
        var counts = skipped.GroupBy(p => Path.GetExtension(p).ToLowerInvariant()).Select(g => $"{g.Count()} {g.Key}");
        return $"left out {skipped.Count} file(s) in formats that LoadImages cannot decode ({string.Join(", ", counts)}; " +
               $"first '{skipped[0]}'); convert them to PNG to use them";
    }

    /// <summary>Where the stored pixels' first row lies (EXIF orientation), or null when the decoder does not accept the file.</summary>
    private static SKEncodedOrigin? Origin(string path)
    {
        using var codec = SKCodec.Create(path);
        return codec is { Info.Width: > 0, Info.Height: > 0 } ? codec.EncodedOrigin : null;
    }
}
