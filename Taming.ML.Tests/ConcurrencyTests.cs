using Taming.ML.Data;
using Taming.ML.Sampling;

namespace Taming.ML.Tests;

/// <summary>
/// A fitted or loaded transformer serves several threads at once (one cursor or PredictionEngine per thread, as
/// in ML.NET's PredictionEnginePool): each thread gets what a single thread gets.
/// </summary>
[TestClass]
public sealed class ConcurrencyTests
{
    [TestMethod]
    public void SharedTransformersGiveEveryThreadTheSingleThreadResult()
    {
        var ml = new MLContext(seed: 1);
        var images = TinyData.ImageView(24, seed: 5);
        var tokenizer = ml.Transforms.TokenizeImages("Tokens", "Image", TinyData.Options(steps: 10)).Fit(images);
        var tokens = tokenizer.Transform(images);
        var prior = ml.Transforms.FitPrior("Tokens", "Label", options: new GptOptions
        {
            Layers = 1, Heads = 2, Width = 16, Steps = 20, BatchSize = 8, ValidationFraction = 0, Seed = 1, InferenceBatchSize = 5,
        }).Fit(tokens);
        var generator = ml.Transforms.GenerateTokens("Generated", prior, options: new SamplingOptions { Seed = 4 })
            .Append(ml.Transforms.DecodeTokens("Drawn", "Generated", tokenizer)).Fit(images);
        var canvas = ml.Transforms.GenerateTokens("Canvas", prior,
            options: new SamplingOptions { Seed = 4, HeightTokens = 5, WidthTokens = 6 }).Fit(images);

        SameOnEveryThread(() => TinyData.Tokens(tokenizer.Transform(images)));
        SameOnEveryThread(() => prior.Transform(tokens).GetColumn<float>("BitsPerToken").ToArray());
        SameOnEveryThread(() => TinyData.Tokens(generator.Transform(images), "Generated"));
        SameOnEveryThread(() => ImagePixels.ReadColumns(generator.Transform(images), 1, "Drawn").SelectMany(row => row[0]).ToArray());
        SameOnEveryThread(() => TinyData.Tokens(canvas.Transform(images), "Canvas"));
    }

    private static void SameOnEveryThread<T>(Func<T[]> run)
    {
        var single = run();
        Assert.IsTrue(single.Length > 0);
        var parallel = new T[4][];
        Parallel.For(0, parallel.Length, new ParallelOptions { MaxDegreeOfParallelism = parallel.Length }, i => parallel[i] = run());
        foreach (var result in parallel) CollectionAssert.AreEqual(single, result);
    }
}
