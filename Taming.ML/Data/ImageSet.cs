using static TorchSharp.torch;

namespace Taming.ML.Data;

/// <summary>
/// Images held in memory as bytes (n, c, h, w), the training set of the tokenizer. Bytes keep a large set
/// four times smaller than floats; batches become float tensors in [−1, 1] on the training device. Drawn in a new
/// random order every epoch.
/// </summary>
internal sealed class ImageSet : ITrainingImages
{
    private readonly List<byte[]> images = new();
    private readonly long memoryLimit;
    private int[] order = Array.Empty<int>();
    private int position;

    /// <param name="channels">Channels per image.</param>
    /// <param name="height">Image height.</param>
    /// <param name="width">Image width.</param>
    /// <param name="expectedCount">The number of images to come, where known: a set too large is refused before any is read.</param>
    /// <param name="memoryLimit">The most bytes the images may take: by default three quarters of the memory the process may use.</param>
    public ImageSet(int channels, int height, int width, long? expectedCount = null, long? memoryLimit = null)
    {
        Channels = channels;
        Height = height;
        Width = width;
        this.memoryLimit = memoryLimit ?? DefaultMemoryLimit;
        if (expectedCount is { } n) CheckFits(n);
    }

    public int Channels { get; }
    public int Height { get; }
    public int Width { get; }
    public int Count => images.Count;
    long ITrainingImages.Count => Count;
    public int PixelsPerImage => Channels * Height * Width;
    public string Description => $"{Count:N0} images of {Width}×{Height}";

    /// <summary>Whether every image has equal channels at every pixel (grey images stored as colour).</summary>
    public bool AllGrey()
    {
        int plane = Height * Width;
        foreach (var image in images)
            for (int c = 1; c < Channels; c++)
                if (!image.AsSpan(0, plane).SequenceEqual(image.AsSpan(c * plane, plane))) return false;
        return true;
    }

    /// <summary>Three quarters of the memory the process may use (or <see cref="MemoryLimitOverride"/>).</summary>
    public static long DefaultMemoryLimit => MemoryLimitOverride ?? GC.GetGCMemoryInfo().TotalAvailableMemoryBytes / 4 * 3;

    /// <summary>Stands in for the machine's memory in tests of sets too large for it.</summary>
    internal static long? MemoryLimitOverride { get; set; }

    /// <summary>Adds one planar image (c·h·w bytes).</summary>
    public void Add(byte[] planar)
    {
        if (planar.Length != PixelsPerImage)
            throw new ArgumentException($"Expected {PixelsPerImage} values per image, got {planar.Length}.");
        if (images.Count % 1024 == 0) CheckFits(images.Count + 1); // a count not known ahead: checked every 1,024 images
        images.Add(planar);
    }

    private void CheckFits(long count) => EnsureFits("training images", count, Channels, Height, Width, memoryLimit,
        "Train on fewer images (mlContext.Data.TakeRows), at a lower resolution, or on random crops (mlContext.Data.LoadRandomCrops).");

    /// <summary>
    /// Fails with what to change (<paramref name="advice"/>) when <paramref name="count"/> images of c×h×w bytes exceed
    /// <paramref name="memoryLimit"/>, rather than running out of memory minutes into reading a large folder.
    /// </summary>
    public static void EnsureFits(string what, long count, int channels, int height, int width, long memoryLimit, string advice)
    {
        double bytes = (double)count * channels * height * width;
        if (bytes <= memoryLimit) return;
        static string Gb(double bytes) => (bytes / (1L << 30)).ToString("F1", System.Globalization.CultureInfo.InvariantCulture) + " GB";
        throw new InvalidOperationException(
            $"The {what} are held in memory as bytes: {count:N0} images of {width}×{height}×{channels} take " +
            $"{Gb(bytes)}, more than the {Gb(memoryLimit)} (three quarters of the memory available) they may use. " + advice);
    }

    /// <summary>The images at <paramref name="indices"/> as a (b, c, h, w) float tensor in [−1, 1].</summary>
    public Tensor Batch(IReadOnlyList<int> indices, Device device) =>
        ToTensor(indices.Select(i => images[i]).ToArray(), Channels, Height, Width, device);

    /// <summary>The next image of a random order that visits every image once per epoch, reshuffled every epoch.</summary>
    public byte[] Draw(Random rng)
    {
        if (position == order.Length)
        {
            order = Enumerable.Range(0, images.Count).ToArray();
            rng.Shuffle(order);
            position = 0;
        }
        return images[order[position++]];
    }

    /// <summary>Planar byte images as a (b, c, h, w) float tensor in [−1, 1] on <paramref name="device"/>.</summary>
    public static Tensor ToTensor(IReadOnlyList<byte[]> planar, int channels, int height, int width, Device device)
    {
        int pixels = channels * height * width;
        var bytes = new byte[planar.Count * pixels];
        for (int i = 0; i < planar.Count; i++) planar[i].CopyTo(bytes, i * pixels);
        using var raw = tensor(bytes, new long[] { planar.Count, channels, height, width });
        return PixelScale.ToModel(Native.TorchRuntime.Upload(raw, device)); // training steps queue without waiting
    }

    public void Dispose() { }
}
