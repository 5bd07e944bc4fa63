using static TorchSharp.torch;

namespace Taming.ML.Data;

/// <summary>Random square crops of a few large images: training data for priors of textures and landscapes.</summary>
internal static class RandomCrops
{
    /// <summary>
    /// <paramref name="count"/> RGB crops of <paramref name="size"/>² pixels, taken uniformly from the images after
    /// shrinking each by <paramref name="downscale"/> (see <see cref="Load"/>), as planar bytes. The crops are drawn from the
    /// images' sizes (read from their headers), then each image is decoded once, on all cores, and let go after its
    /// crops are cut: memory holds the crops and a few images, not the whole folder. <paramref name="upright"/>: each image
    /// turned as its EXIF orientation says first.
    /// </summary>
    public static byte[][] Take(IReadOnlyList<string> paths, int size, int count, int seed, int downscale, long? memoryLimit = null,
        Action<string>? log = null, bool upright = false)
    {
        if (paths.Count == 0) throw new ArgumentException("No images to crop.");
        ImageSet.EnsureFits("random crops", count, 3, size, size, memoryLimit ?? ImageSet.DefaultMemoryLimit,
            "Take fewer crops, or smaller ones.");
        var sizes = paths.Select(p => ScaledDecode.Size(p, upright, downscale)).ToArray(); // the size Load gives
        for (int i = 0; i < paths.Count; i++)
            if (sizes[i].Height < size || sizes[i].Width < size)
                throw new ArgumentException($"'{paths[i]}' is {sizes[i].Width}×{sizes[i].Height} after downscaling by {downscale}, smaller than the {size}-pixel crops.");
        var rng = new Random(seed);
        var drawn = new (int Photo, int Top, int Left)[count];
        for (int n = 0; n < count; n++)
        {
            int photo = rng.Next(paths.Count);
            var (w, h) = sizes[photo];
            drawn[n] = (photo, rng.Next(h - size + 1), rng.Next(w - size + 1));
        }
        var crops = new byte[count][];
        var byPhoto = Enumerable.Range(0, count).GroupBy(n => drawn[n].Photo).ToList();
        var progress = new Training.ReadProgress(log, "images to crop", byPhoto.Count);
        try
        {
            Parallel.ForEach(byPhoto, new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount }, group =>
            {
                var (pixels, h, w) = Load(paths[group.Key], downscale, upright);
                foreach (int n in group) crops[n] = ImagePixels.Crop(pixels, 3, h, w, drawn[n].Top, drawn[n].Left, size, size);
                progress.Add();
            });
        }
        catch (AggregateException e) // the file's own exception (it names the file), not the parallel loop's wrapper
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(e.InnerExceptions[0]).Throw();
        }
        progress.Done();
        return crops;
    }

    /// <summary>
    /// An image file as planar RGB bytes (upright where asked), shrunk by an integer factor: a JPEG by libjpeg's scaled
    /// decoding as far as it goes (the pixels LoadFromImageFolder's cover sizes give), the rest by area averaging.
    /// </summary>
    private static (byte[] Pixels, int Height, int Width) Load(string path, int downscale, bool upright = false)
    {
        // ScaledDecode in full gives LoadImages' pixels (a test), and names a missing, damaged or cut-short file.
        var (pixels, w, h, format, remaining) = ScaledDecode.LoadShrunk(path, downscale, upright);
        var planar = ImagePixels.ToPlanar<byte>(pixels, format, h * w, 3); // bytes: a quarter of the memory of floats
        if (remaining <= 1) return (planar, h, w);
        using var scope = NewDisposeScope();
        var t = nn.functional.avg_pool2d(tensor(planar, new long[] { 1, 3, h, w }).to(ScalarType.Float32), remaining);
        return (t.round().clamp(0, 255).to(ScalarType.Byte).data<byte>().ToArray(), (int)t.shape[2], (int)t.shape[3]);
    }
}
