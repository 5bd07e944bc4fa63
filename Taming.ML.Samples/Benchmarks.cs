using System.Diagnostics;
using Microsoft.ML;
using Microsoft.ML.Data;
using Taming.ML.MLNet;
using static TorchSharp.torch;

namespace Taming.ML.Samples;

/// <summary>Throughput measurements that are too slow or too noisy for tests.</summary>
internal static class Benchmarks
{
    /// <summary>
    /// Tokenizing throughput through the ML.NET transformer (data view → token column) against calling the
    /// TorchSharp encoder directly on the same batches of pre-loaded tensors.
    /// </summary>
    public static int Tokenizer(Arguments args)
    {
        string modelPath = args.String("model") ?? Path.Combine("out", "mnist-tokenizer.zip");
        string images = args.String("images") ?? DataSources.EmbeddedMnistImages;
        int repeats = args.Int("repeats") ?? 3;
        args.RejectUnknown();

        var ml = new MLContext(seed: 1);
        var tokenizer = TamingCatalog.FindTokenizer(ml.Taming().LoadModel(modelPath, out _));
        var data = ml.Data.LoadFromIdx(images, padTo: tokenizer.Resolution);
        int n = (int)data.GetRowCount()!.Value, batch = tokenizer.Model.Options.InferenceBatchSize, r = tokenizer.Resolution;

        // The direct path gets its input as ready-made float tensors of the same batches.
        var pixels = ml.Data.CreateEnumerable<PixelRow>(
            ml.Transforms.ExtractPixels("Pixels", "Image", colorsToExtract: Microsoft.ML.Transforms.Image.ImagePixelExtractingEstimator.ColorBits.Red)
                .Fit(data).Transform(data), reuseRowObject: false).Select(p => p.Pixels).ToList();
        var batches = Enumerable.Range(0, (n + batch - 1) / batch)
            .Select(b => tensor(pixels.Skip(b * batch).Take(batch).SelectMany(p => p).ToArray(),
                new long[] { Math.Min(batch, n - b * batch), 1, r, r }))
            .ToList();

        var device = tokenizer.Model.parameters().First().device; // where the saved model runs
        double Direct()
        {
            var clock = Stopwatch.StartNew();
            foreach (var x in batches)
            {
                using var scope = NewDisposeScope();
                using var _ = no_grad();
                tokenizer.Model.Tokenize(x.to(device) / 127.5f - 1f).cpu().data<long>().ToArray();
            }
            return n / clock.Elapsed.TotalSeconds;
        }

        double ThroughMLNet()
        {
            var clock = Stopwatch.StartNew();
            var output = tokenizer.Transform(data);
            var column = output.Schema[tokenizer.OutputColumnName];
            using var cursor = output.GetRowCursor(new[] { column });
            var getter = cursor.GetGetter<VBuffer<uint>>(column);
            var tokens = default(VBuffer<uint>);
            while (cursor.MoveNext()) getter(ref tokens);
            return n / clock.Elapsed.TotalSeconds;
        }

        Direct();
        ThroughMLNet(); // warm-up: fills the cache, JIT
        double direct = 0, mlnet = 0;
        for (int i = 0; i < repeats; i++) // alternating, so that a machine whose pace drifts affects both alike
            (direct, mlnet) = (Math.Max(direct, Direct()), Math.Max(mlnet, ThroughMLNet()));
        Console.WriteLine($"{n} images of {r}×{r}, batch {batch}, best of {repeats} alternating runs:");
        Console.WriteLine($"  TorchSharp encoder directly : {direct,8:F0} images/s");
        Console.WriteLine($"  ML.NET transformer           : {mlnet,8:F0} images/s  ({mlnet / direct:P1} of direct)");
        return 0;
    }

    private sealed class PixelRow
    {
        [VectorType] public float[] Pixels { get; set; } = Array.Empty<float>();
    }
}
