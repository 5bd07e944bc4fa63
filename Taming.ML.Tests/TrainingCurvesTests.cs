using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using Taming.ML.Evaluation;
using Taming.ML.Training;

namespace Taming.ML.Tests;

[TestClass]
public sealed class TrainingCurvesTests
{
    private static readonly string Temp = Path.Combine(Path.GetTempPath(), "taming-curves-" + Guid.NewGuid().ToString("N"));

    [ClassCleanup]
    public static void Cleanup()
    {
        if (Directory.Exists(Temp)) Directory.Delete(Temp, recursive: true);
    }

    /// <summary>The row of the series' colour in each column of panel <paramref name="panel"/>'s plot area (−1 where none).</summary>
    private static int[] SeriesRows(Image<Rgb24> image, int panel, int series)
    {
        var color = LineChart.Color(series);
        var (top, height) = LineChart.PlotArea(panel);
        return Enumerable.Range(0, image.Width).Select(x =>
            Enumerable.Range(top, height).Where(y => image[x, y].Equals(color)).DefaultIfEmpty(-1).First()).ToArray();
    }

    [TestMethod]
    public void APriorsCurvesFallAsItsLossesDoWithValidationBesideTraining()
    {
        var curves = new TrainingCurves();
        for (int step = 100; step <= 1000; step += 100)
            curves.Add(new PriorProgress
            {
                Step = step, TrainLoss = 6.0 * 100 / step, ValidationLoss = step == 500 ? double.NaN : 6.5 * 100 / step,
                LearningRate = 1e-3 * (1 - step / 2000.0),
            });
        string path = Path.Combine(Temp, "prior-curves.png");
        curves.SavePng(path, width: 640);
        using var image = Image.Load<Rgb24>(path);
        Assert.AreEqual((640, 2 * 200), (image.Width, image.Height), "two panels: cross-entropy and learning rate");

        foreach (int series in new[] { 0, 1 })
        {
            var rows = SeriesRows(image, panel: 0, series).Where(r => r >= 0).ToArray();
            Assert.IsTrue(rows.Length > 300, $"series {series} is drawn across the plot ({rows.Length} columns)");
            Assert.IsTrue(rows[0] < rows[^1] - 60, $"series {series} falls from row {rows[0]} to {rows[^1]}");
        }
        // The validation loss lies above the training loss wherever both are drawn.
        var training = SeriesRows(image, 0, 0);
        var validation = SeriesRows(image, 0, 1);
        Assert.IsTrue(Enumerable.Range(0, image.Width).Count(x => training[x] >= 0 && validation[x] >= 0 && validation[x] < training[x]) > 200);
    }

    [TestMethod]
    public void ATokenizerFitDrawsItsCurvesAndNoReportsOrNoFiniteValuesAreSaid()
    {
        var curves = new TrainingCurves();
        var options = TinyData.Options(steps: 20);
        (options.Progress, options.DiscStart) = (curves.Add, 10);
        new MLContext(seed: 1).Transforms.TokenizeImages("Tokens", "Image", options).Fit(TinyData.ImageView(24));
        Assert.AreEqual(4, curves.Count, "a report every 5 steps");
        string path = Path.Combine(Temp, "tokenizer-curves.png");
        curves.SavePng(path);
        using (var image = Image.Load<Rgb24>(path))
        {
            Assert.AreEqual((800, 5 * 200), (image.Width, image.Height), "L1, quantizer loss, GAN losses, codebook usage, learning rate");
            var l1 = SeriesRows(image, 0, 0).Where(r => r >= 0).ToArray();
            Assert.IsTrue(l1[0] < l1[^1], "the L1 loss falls");
            // The GAN's panel appears once it starts (step 10), in its place among the others.
            Assert.IsTrue(SeriesRows(image, 2, 0).Count(r => r >= 0) > 300, "the generator's loss is drawn");
            Assert.IsTrue(SeriesRows(image, 2, 1).Count(r => r >= 0) > 300, "the discriminator's loss is drawn beside the generator's");
        }

        var diverged = new TrainingCurves();
        diverged.Add(new PriorProgress { Step = 1, TrainLoss = double.NaN, ValidationLoss = double.NaN, LearningRate = 1 });
        diverged.SavePng(Path.Combine(Temp, "diverged.png")); // a panel that says so instead of a crash
        StringAssert.Contains(Assert.ThrowsExactly<InvalidOperationException>(() => new TrainingCurves().SavePng(Path.Combine(Temp, "none.png"))).Message,
            "No progress reports");
        Assert.IsFalse(File.Exists(Path.Combine(Temp, "none.png")));
    }
}
