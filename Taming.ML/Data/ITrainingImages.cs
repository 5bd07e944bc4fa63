using static TorchSharp.torch;

namespace Taming.ML.Data;

/// <summary>
/// The tokenizer's training images, drawn one at a time in a shuffled order: all held in memory (<see cref="ImageSet"/>)
/// or streamed from the input through a shuffle pool (<see cref="ImageStream"/>) when they would not fit.
/// </summary>
internal interface ITrainingImages : IDisposable
{
    int Channels { get; }
    int Height { get; }
    int Width { get; }

    /// <summary>The images there are, as far as known: all of them in memory; for a stream, those of the input where its
    /// row count is known, else at least the pool's.</summary>
    long Count { get; }

    /// <summary>What the images are and where they are held, for the log.</summary>
    string Description { get; }

    /// <summary>The next image of the shuffled order (planar c·h·w bytes; the caller does not change it).</summary>
    byte[] Draw(Random rng);
}

internal static class TrainingImages
{
    /// <summary>What a fit on no images says.</summary>
    public const string EmptyMessage = "The training data is empty: the tokenizer needs at least one image.";

    /// <summary>The next <paramref name="size"/> images of the shuffled order as a (b, c, h, w) float tensor in [−1, 1].</summary>
    public static Tensor Batch(this ITrainingImages images, int size, Random rng, Device device)
    {
        var batch = new byte[size][];
        for (int i = 0; i < size; i++) batch[i] = images.Draw(rng);
        return ImageSet.ToTensor(batch, images.Channels, images.Height, images.Width, device);
    }
}
