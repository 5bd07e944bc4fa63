using Microsoft.ML;
using Taming.ML.MLNet;
using Taming.ML.Perceptual;
using static TorchSharp.torch;

namespace Taming.ML.Evaluation;

/// <summary>ResNet18 pooled features of every image in a column, for FID-style metrics.</summary>
internal static class ImageFeatures
{
    /// <summary>
    /// Features (n, 512) on the CPU of the images in <paramref name="columnName"/> (images or 0–255 pixel vectors),
    /// resized to <paramref name="height"/> × <paramref name="width"/> when they differ. Pixel vectors are read with
    /// their own channels, images as RGB (a gray image replicates its channel, as the network does with one-channel input).
    /// </summary>
    public static Tensor Read(ResNet18Features network, IDataView data, string columnName, int height, int width, Device device, int batch = 64)
    {
        var column = ImageColumnReader.Find(data.Schema, columnName);
        int channels = ImageColumnReader.Inspect(column).Channels is > 0 and var c ? c : 3;
        int pixels = channels * height * width;
        var buffer = new float[batch * pixels];
        var features = new List<Tensor>();
        using var cursor = ParallelCursor.Create(data, new[] { column });
        var reader = new ImageColumnReader(cursor, column, channels, height, width, resize: true);
        using var _ = no_grad();
        while (true)
        {
            int filled = 0;
            while (filled < batch && cursor.MoveNext()) reader.Read(buffer.AsSpan(filled++ * pixels, pixels));
            if (filled == 0) break;
            using var scope = NewDisposeScope();
            var x = tensor(buffer.AsSpan(0, filled * pixels).ToArray(), new long[] { filled, channels, height, width }).to(device);
            features.Add(network.forward(Data.PixelScale.ToModel(x)).cpu().MoveToOuterDisposeScope());
        }
        if (features.Count == 0) throw new InvalidOperationException($"Column '{columnName}' holds no images.");
        var all = cat(features, 0);
        foreach (var f in features) f.Dispose();
        return all;
    }

    /// <summary>The size of the column's images when its type says (pixel vectors, resized images), else zeros.</summary>
    public static (int Height, int Width) Size(IDataView data, string columnName)
    {
        var (_, height, width) = ImageColumnReader.Inspect(ImageColumnReader.Find(data.Schema, columnName));
        return (height, width);
    }
}
