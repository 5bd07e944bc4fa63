using static TorchSharp.torch;

namespace Taming.ML.Data;

/// <summary>
/// Images held in memory as bytes (n, c, h, w), the training set of the tokenizer. Bytes keep a large set
/// four times smaller than floats; batches become float tensors in [−1, 1] on the training device.
/// </summary>
internal sealed class ImageSet
{
    private readonly List<byte[]> images = new();

    public ImageSet(int channels, int height, int width)
    {
        Channels = channels;
        Height = height;
        Width = width;
    }

    public int Channels { get; }
    public int Height { get; }
    public int Width { get; }
    public int Count => images.Count;
    public int PixelsPerImage => Channels * Height * Width;

    /// <summary>Adds one planar image (c·h·w bytes).</summary>
    public void Add(byte[] planar)
    {
        if (planar.Length != PixelsPerImage)
            throw new ArgumentException($"Expected {PixelsPerImage} values per image, got {planar.Length}.");
        images.Add(planar);
    }

    /// <summary>The images at <paramref name="indices"/> as a (b, c, h, w) float tensor in [−1, 1].</summary>
    public Tensor Batch(IReadOnlyList<int> indices, Device device)
    {
        var bytes = new byte[indices.Count * PixelsPerImage];
        for (int i = 0; i < indices.Count; i++) images[indices[i]].CopyTo(bytes, i * PixelsPerImage);
        using var raw = tensor(bytes, new long[] { indices.Count, Channels, Height, Width });
        return PixelScale.ToModel(Native.TorchRuntime.Upload(raw, device)); // training steps queue without waiting
    }
}
