using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace Taming.ML.Evaluation;

/// <summary>Writes rows of equally sized planar images (gray or RGB bytes) as one PNG, with a 2-pixel gap.</summary>
public static class ImageGrid
{
    /// <summary>Saves <paramref name="rows"/> (each a list of planar images of c·h·w bytes) to <paramref name="path"/>.</summary>
    public static void SavePng(string path, IReadOnlyList<IReadOnlyList<byte[]>> rows, int channels, int height, int width, int scale = 1)
    {
        if (channels is not (1 or 3)) throw new ArgumentOutOfRangeException(nameof(channels), $"channels must be 1 (gray) or 3 (RGB); got {channels}.");
        if (height < 1 || width < 1 || scale < 1)
            throw new ArgumentOutOfRangeException(nameof(height), $"height, width and scale must be at least 1; got {height}, {width}, {scale}.");
        if (rows.Sum(r => r.Count) == 0) throw new ArgumentException($"There are no images to save to '{path}'.", nameof(rows));
        for (int r = 0; r < rows.Count; r++)
        for (int c = 0; c < rows[r].Count; c++)
            if (rows[r][c]?.Length != channels * height * width)
                throw new ArgumentException($"The image in row {r}, column {c} has {rows[r][c]?.Length ?? 0} values; a {width}×{height}×{channels} " +
                                            $"image has {channels * height * width}.", nameof(rows));
        const int gap = 2;
        int columns = rows.Max(r => r.Count);
        int cellW = width * scale, cellH = height * scale;
        using var image = new Image<Rgb24>(columns * (cellW + gap) + gap, rows.Count * (cellH + gap) + gap, new Rgb24(255, 255, 255));
        int n = height * width;
        for (int r = 0; r < rows.Count; r++)
        for (int c = 0; c < rows[r].Count; c++)
        {
            var pixels = rows[r][c];
            for (int y = 0; y < cellH; y++)
            for (int x = 0; x < cellW; x++)
            {
                int i = (y / scale) * width + x / scale;
                byte red = pixels[i], green = channels == 3 ? pixels[n + i] : red, blue = channels == 3 ? pixels[2 * n + i] : red;
                image[gap + c * (cellW + gap) + x, gap + r * (cellH + gap) + y] = new Rgb24(red, green, blue);
            }
        }
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        image.SaveAsPng(path);
    }
}
