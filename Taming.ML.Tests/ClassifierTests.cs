using Taming.ML.Data;
using Taming.ML.Evaluation;

namespace Taming.ML.Tests;

[TestClass]
public sealed class ClassifierTests
{
    [TestMethod]
    public void MetricsCountHitsOverallAndPerClass()
    {
        var m = ClassificationMetrics.From(new[] { 0, 0, 1, 1, 1 }, new[] { 0, 1, 1, 1, 0 }, classes: 3);
        Assert.AreEqual(5, m.Count);
        Assert.AreEqual(0.6, m.Accuracy, 1e-12);
        Assert.AreEqual(0.5, m.PerClass[0], 1e-12);
        Assert.AreEqual(2.0 / 3, m.PerClass[1], 1e-12);
        Assert.IsTrue(double.IsNaN(m.PerClass[2]));
    }

    [TestMethod]
    public void ClassifierSeparatesBrightFromDarkImages()
    {
        var rng = new Random(3);
        var images = Enumerable.Range(0, 64).Select(i =>
            Enumerable.Range(0, 64).Select(_ => (byte)(i % 2 == 0 ? rng.Next(0, 60) : rng.Next(190, 256))).ToArray()).ToArray();
        var labels = Enumerable.Range(0, 64).Select(i => (byte)(i % 2)).ToArray();
        var data = new InMemoryImageDataView(images, 8, 8, labels, 2);
        var ml = new MLContext(seed: 1);
        var classifier = ml.Taming().TrainImageClassifier(data, epochs: 8);
        Assert.AreEqual(2, classifier.ClassCount);
        var metrics = ml.Taming().EvaluateClassification(data, classifier);
        Assert.IsTrue(metrics.Accuracy > 0.95, metrics.ToString());
        var empty = Assert.ThrowsExactly<InvalidOperationException>(() => ml.Taming().EvaluateClassification(ml.Data.SkipRows(data, 64), classifier));
        StringAssert.Contains(empty.Message, "empty");
    }

    [TestMethod]
    public void PlanarPixelsRoundTripThroughMLImage()
    {
        var rgb = Enumerable.Range(0, 3 * 4 * 2).Select(i => (byte)(i * 10)).ToArray();
        using var image = ImagePixels.ToImage(rgb, 3, height: 2, width: 4);
        CollectionAssert.AreEqual(rgb, ImagePixels.ToPlanarBytes(image, 3));
        var gray = ImagePixels.ToPlanar(image, 1);
        Assert.AreEqual(MathF.Round(0.299f * rgb[0] + 0.587f * rgb[8] + 0.114f * rgb[16]), gray[0]);
    }
}
