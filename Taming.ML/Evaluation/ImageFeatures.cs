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
    /// read as <paramref name="channels"/> channels and resized to <paramref name="resolution"/> when they differ.
    /// </summary>
    public static Tensor Read(ResNet18Features network, IDataView data, string columnName, int channels, int resolution, Device device, int batch = 64)
    {
        var column = data.Schema.GetColumnOrNull(columnName)
            ?? throw new ArgumentOutOfRangeException(nameof(columnName), $"Image column '{columnName}' not found in the data.");
        ImageColumnReader.Inspect(column);
        int pixels = channels * resolution * resolution;
        var buffer = new float[batch * pixels];
        var features = new List<Tensor>();
        using var cursor = data.GetRowCursor(new[] { column });
        var reader = new ImageColumnReader(cursor, column, channels, resolution, resize: true);
        using var _ = no_grad();
        while (true)
        {
            int filled = 0;
            while (filled < batch && cursor.MoveNext()) reader.Read(buffer.AsSpan(filled++ * pixels, pixels));
            if (filled == 0) break;
            using var scope = NewDisposeScope();
            var x = tensor(buffer.AsSpan(0, filled * pixels).ToArray(), new long[] { filled, channels, resolution, resolution }).to(device);
            features.Add(network.forward(Data.PixelScale.ToModel(x)).cpu().MoveToOuterDisposeScope());
        }
        if (features.Count == 0) throw new InvalidOperationException($"Column '{columnName}' holds no images.");
        var all = cat(features, 0);
        foreach (var f in features) f.Dispose();
        return all;
    }

    /// <summary>Channels and side to read a column at: its own when it says (pixel vectors), else RGB at <paramref name="fallbackSide"/>.</summary>
    public static (int Channels, int Side) Shape(IDataView data, string columnName, int fallbackSide)
    {
        var column = data.Schema.GetColumnOrNull(columnName)
            ?? throw new ArgumentOutOfRangeException(nameof(columnName), $"Image column '{columnName}' not found in the data.");
        var (c, h, _) = ImageColumnReader.Inspect(column);
        return (c > 0 ? c : 3, h > 0 ? h : fallbackSide);
    }
}
