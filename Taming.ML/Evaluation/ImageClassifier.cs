using Microsoft.ML;
using Taming.ML.Data;
using Taming.ML.MLNet;
using TorchSharp;
using static TorchSharp.torch;

namespace Taming.ML.Evaluation;

/// <summary>
/// A small CNN trained on real labelled images, used to judge generated ones (class consistency). Create it with
/// <see cref="TamingCatalog.TrainImageClassifier"/>.
/// </summary>
public sealed class ImageClassifier
{
    private readonly ConvClassifierNet net;

    private readonly Device device;

    private ImageClassifier(ConvClassifierNet net, Device device, int channels, int resolution, int classes)
    {
        this.net = net;
        this.device = device;
        Channels = channels;
        Resolution = resolution;
        ClassCount = classes;
    }

    /// <summary>Image channels the classifier reads.</summary>
    public int Channels { get; }
    /// <summary>Image side in pixels.</summary>
    public int Resolution { get; }
    /// <summary>Number of classes.</summary>
    public int ClassCount { get; }

    internal static ImageClassifier Train(ImageSet images, IReadOnlyList<int> labels, int classes, int epochs, int seed, Device device, Action<string>? log)
    {
        if (images.Count == 0) throw new InvalidOperationException("The classifier's training data is empty.");
        random.manual_seed(seed);
        var rng = new Random(seed);
        var net = new ConvClassifierNet(images.Channels, images.Height, classes);
        net.to(device);
        var optimizer = optim.Adam(net.parameters(), 1e-3);
        net.train();
        var order = Enumerable.Range(0, images.Count).ToArray();
        for (int epoch = 0; epoch < epochs; epoch++)
        {
            rng.Shuffle(order);
            double lossSum = 0;
            int batches = 0;
            for (int start = 0; start < order.Length; start += 64)
            {
                var idx = order.Skip(start).Take(64).ToArray();
                using var scope = NewDisposeScope();
                var x = images.Batch(idx, device);
                var y = tensor(idx.Select(i => (long)labels[i]).ToArray(), device: device);
                var loss = nn.functional.cross_entropy(net.forward(x), y);
                optimizer.zero_grad();
                loss.backward();
                optimizer.step();
                lossSum += loss.item<float>();
                batches++;
            }
            log?.Invoke($"classifier epoch {epoch + 1}/{epochs}: loss {lossSum / batches:F4}");
        }
        net.eval();
        optimizer.Dispose();
        return new ImageClassifier(net, device, images.Channels, images.Height, classes);
    }

    /// <summary>The most likely class of each image.</summary>
    internal int[] Predict(ImageSet images)
    {
        if (images.Channels != Channels || images.Height != Resolution || images.Width != Resolution)
            throw new ArgumentException($"The classifier reads {Resolution}×{Resolution}×{Channels} images; got {images.Width}×{images.Height}×{images.Channels}.");
        var predictions = new List<int>(images.Count);
        for (int start = 0; start < images.Count; start += 256)
        {
            using var scope = NewDisposeScope();
            using var _ = no_grad();
            var x = images.Batch(Enumerable.Range(start, Math.Min(256, images.Count - start)).ToArray(), device);
            predictions.AddRange(net.forward(x).argmax(1).cpu().data<long>().Select(p => (int)p));
        }
        return predictions.ToArray();
    }

    /// <summary>Reads an image column and a label column (key or Int32) into memory.</summary>
    internal static (ImageSet Images, List<int> Labels) Read(IDataView data, string imageColumnName, string labelColumnName, int channels, int resolution)
    {
        var image = ImageColumnReader.Find(data.Schema, imageColumnName);
        var label = MLNet.SchemaColumns.Find(data.Schema, labelColumnName, "Label", nameof(labelColumnName));
        int? classes = TokenColumns.InspectLabel(label);
        var set = new ImageSet(channels, resolution, resolution);
        var labels = new List<int>();
        using var cursor = ParallelCursor.Create(data, new[] { image, label });
        var reader = new ImageColumnReader(cursor, image, channels, resolution, resolution, resize: false);
        var readLabel = TokenColumns.LabelReader(cursor, label, classes);
        var pixels = new float[set.PixelsPerImage];
        while (cursor.MoveNext())
        {
            reader.Read(pixels);
            set.Add(PixelScale.ToBytes(pixels));
            labels.Add(readLabel());
        }
        return (set, labels);
    }
}
