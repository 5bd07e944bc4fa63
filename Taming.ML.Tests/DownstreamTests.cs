using Taming.ML.Data;

namespace Taming.ML.Tests;

/// <summary>Tokens and prior scores as inputs of ordinary ML.NET tasks.</summary>
[TestClass]
public sealed class DownstreamTests
{
    /// <summary>Class 0: horizontal stripes; class 1: vertical stripes; random phase and contrast.</summary>
    private static IDataView Stripes(int count, int seed, int onlyClass = -1)
    {
        var rng = new Random(seed);
        int side = TinyData.Side;
        var labels = Enumerable.Range(0, count).Select(i => (byte)(onlyClass >= 0 ? onlyClass : i % 2)).ToArray();
        var images = labels.Select(label =>
        {
            double phase = rng.NextDouble() * 6.28, contrast = 60 + rng.NextDouble() * 60;
            var image = new byte[side * side];
            for (int y = 0; y < side; y++)
            for (int x = 0; x < side; x++)
                image[y * side + x] = (byte)Math.Clamp(128 + contrast * Math.Sin(phase + (label == 0 ? y : x) * 1.2), 0, 255);
            return image;
        }).ToArray();
        return new InMemoryImageDataView(images, side, side, labels, 2);
    }

    [TestMethod]
    public void TokensFeedAnMLNetClassifier()
    {
        var ml = new MLContext(seed: 1);
        var tokenizer = ml.Transforms.TokenizeImages("Tokens", "Image", TinyData.Options(steps: 40)).Fit(Stripes(64, seed: 1));
        // Tokens → one indicator per (position, code) → a standard multiclass trainer.
        var pipeline = ml.Transforms.Conversion.MapKeyToVector("Features", "Tokens")
            .Append(ml.MulticlassClassification.Trainers.SdcaMaximumEntropy("Label", "Features"));
        var model = pipeline.Fit(ml.Data.Cache(tokenizer.Transform(Stripes(64, seed: 2))));
        var metrics = ml.MulticlassClassification.Evaluate(model.Transform(tokenizer.Transform(Stripes(40, seed: 3))));
        Assert.IsTrue(metrics.MicroAccuracy >= 0.9, $"accuracy {metrics.MicroAccuracy}");
    }

    [TestMethod]
    public void MLNetsKeyStagesTakeTheTokensAndTheirKeyValuesAreTheCodeIds()
    {
        var ml = new MLContext(seed: 1);
        var images = Stripes(8, seed: 4);
        // One chain with the tokenizer's estimator, so that the schema it declares (key values included) is checked too:
        // OneHotEncoding refuses key columns without key values.
        var model = ml.Transforms.TokenizeImages("Tokens", "Image", TinyData.Options(steps: 2))
            .Append(ml.Transforms.Categorical.OneHotEncoding("OneHot", "Tokens"))
            .Append(ml.Transforms.Conversion.MapKeyToValue("Ids", "Tokens"))
            .Fit(images);
        var output = model.Transform(images);
        var keys = output.GetColumn<VBuffer<uint>>("Tokens").Select(v => v.DenseValues().ToArray()).ToArray();
        var ids = output.GetColumn<VBuffer<uint>>("Ids").Select(v => v.DenseValues().ToArray()).ToArray();
        var oneHot = output.GetColumn<VBuffer<float>>("OneHot").Select(v => v.DenseValues().ToArray()).ToArray();
        Assert.AreEqual(8, keys.Length);
        // OneHotEncoding keeps the codes it saw in the data: one indicator per (position, code seen), one code per position.
        int seen = ids.SelectMany(r => r).Distinct().Count();
        var indicatorOf = new Dictionary<uint, int>();
        for (int row = 0; row < keys.Length; row++)
        {
            CollectionAssert.AreEqual(keys[row].Select(k => k - 1).ToArray(), ids[row], $"row {row}: ids are not the keys less one");
            Assert.AreEqual(keys[row].Length * seen, oneHot[row].Length);
            for (int position = 0; position < keys[row].Length; position++)
            {
                var block = oneHot[row].AsSpan(position * seen, seen).ToArray();
                Assert.AreEqual(1f, block.Sum(), $"row {row}, position {position}");
                int indicator = Array.IndexOf(block, 1f);
                Assert.AreEqual(indicator, indicatorOf.TryAdd(ids[row][position], indicator) ? indicator : indicatorOf[ids[row][position]],
                    $"code {ids[row][position]} has two indicators");
            }
        }
        Assert.AreEqual(seen, indicatorOf.Values.Distinct().Count(), "two codes share an indicator");
    }

    [TestMethod]
    public void BitsPerTokenScoresUnseenImagesHigher()
    {
        var ml = new MLContext(seed: 1);
        var tokenizer = ml.Transforms.TokenizeImages("Tokens", "Image", TinyData.Options(steps: 40)).Fit(Stripes(64, seed: 1));
        var prior = ml.Transforms.FitPrior("Tokens", options: new GptOptions
        {
            Layers = 2, Heads = 2, Width = 32, Steps = 150, BatchSize = 16, LearningRate = 3e-3, ValidationFraction = 0, Seed = 1,
        }).Fit(ml.Data.Cache(tokenizer.Transform(Stripes(96, seed: 4, onlyClass: 0))));
        float[] Bits(IDataView images) => prior.Transform(tokenizer.Transform(images)).GetColumn<float>(prior.ScoreColumnName).ToArray();
        var typical = Bits(Stripes(30, seed: 5, onlyClass: 0));
        var unseen = Bits(Stripes(30, seed: 6, onlyClass: 1));
        Assert.IsTrue(unseen.Average() > typical.Average() + 0.5, $"horizontal (trained) {typical.Average():F2}, vertical (unseen) {unseen.Average():F2} bits/token");
    }
}
