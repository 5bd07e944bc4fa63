using Microsoft.ML.Data;
using static TorchSharp.torch;

namespace Taming.ML.Data;

/// <summary>Random square crops of a few large images: training data for priors of textures and landscapes.</summary>
internal static class RandomCrops
{
    /// <summary>
    /// <paramref name="count"/> RGB crops of <paramref name="size"/>² pixels, taken uniformly from the images after
    /// shrinking each by <paramref name="downscale"/> (area-averaged), as planar bytes.
    /// </summary>
    public static byte[][] Take(IReadOnlyList<string> paths, int size, int count, int seed, int downscale)
    {
        if (paths.Count == 0) throw new ArgumentException("No images to crop.");
        var photos = paths.Select(p => Load(p, downscale)).ToList();
        foreach (var (pixels, h, w, path) in photos)
            if (h < size || w < size) throw new ArgumentException($"'{path}' is {w}×{h} after downscaling by {downscale}, smaller than the {size}-pixel crops.");
        var rng = new Random(seed);
        var crops = new byte[count][];
        for (int n = 0; n < count; n++)
        {
            var (pixels, h, w, _) = photos[rng.Next(photos.Count)];
            crops[n] = ImagePixels.Crop(pixels, 3, h, w, rng.Next(h - size + 1), rng.Next(w - size + 1), size, size);
        }
        return crops;
    }

    /// <summary>An image file as planar RGB bytes, shrunk by an integer factor with area averaging.</summary>
    public static (byte[] Pixels, int Height, int Width, string Path) Load(string path, int downscale)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"Image not found: '{path}'.", path);
        using var image = Decode(path);
        var planar = ImagePixels.ToPlanar(image, 3);
        int h = image.Height, w = image.Width;
        if (downscale <= 1) return (planar.Select(v => (byte)v).ToArray(), h, w, path);
        using var scope = NewDisposeScope();
        var t = nn.functional.avg_pool2d(tensor(planar, new long[] { 1, 3, h, w }), downscale);
        return (t.round().clamp(0, 255).to(ScalarType.Byte).data<byte>().ToArray(), (int)t.shape[2], (int)t.shape[3], path);
    }

    private static MLImage Decode(string path)
    {
        try
        {
            return MLImage.CreateFromFile(path);
        }
        catch (ArgumentException e)
        {
            throw new InvalidDataException($"'{path}' cannot be decoded as an image (damaged, or not an image): {e.Message}", e);
        }
    }
}
