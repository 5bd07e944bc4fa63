using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using Taming.ML.Data;
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
    public void AValidationSetIsReconstructedAtEveryReportAsTheFittedTokenizerReconstructsIt()
    {
        var ml = new MLContext(seed: 1);
        var heldOut = TinyData.ImageView(16, seed: 9);
        var curves = new TrainingCurves();
        var reports = new List<VqganProgress>();
        var options = TinyData.Options(steps: 20);
        (options.ValidationSet, options.ValidationImages, options.DiscStart) = (heldOut, 12, -1);
        options.Progress = p => { reports.Add(p); curves.Add(p); };
        var tokenizer = ml.Transforms.TokenizeImages("Tokens", "Image", options).Fit(TinyData.ImageView(40));
        Assert.IsTrue(reports.All(r => double.IsFinite(r.ValidationLoss)), "every report has a validation loss");
        Assert.IsTrue(reports[^1].ValidationLoss < 0.8 * reports[0].ValidationLoss, $"{reports[0].ValidationLoss} → {reports[^1].ValidationLoss}");
        StringAssert.Contains(reports[^1].ToString(), "val ");

        // The last report's figure is the fitted tokenizer's L1 on those 12 images (on [−1, 1]; decoded bytes round by half a level).
        var first12 = ml.Data.TakeRows(heldOut, 12);
        var decoded = ml.Transforms.DecodeTokens("Decoded", "Tokens", tokenizer).Fit(tokenizer.Transform(first12)).Transform(tokenizer.Transform(first12));
        var pairs = ImagePixels.ReadColumns(decoded, 1, "Image", "Decoded");
        double l1 = pairs.Average(p => p[0].Zip(p[1], (a, b) => Math.Abs(a - b) / 127.5).Average());
        Assert.AreEqual(l1, reports[^1].ValidationLoss, 0.005);

        string path = Path.Combine(Temp, "validated.png");
        curves.SavePng(path);
        using var image = Image.Load<Rgb24>(path);
        Assert.IsTrue(SeriesRows(image, 0, 1).Count(r => r >= 0) > 300, "the validation loss is drawn beside the training loss");

        // A validation set that does not fit the training data is named as such before any training.
        var bad = options.Clone();
        bad.Progress = null;
        bad.ValidationSet = TinyData.PixelView(ml, 4);
        var e = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ml.Transforms.TokenizeImages("Tokens", "Image", bad).Fit(TinyData.ImageView(8)));
        StringAssert.Contains(e.Message, "Validation column 'Image' not found");
        bad.ValidationSet = TinyData.ImageView(4, side: 12);
        var wrongSize = Assert.ThrowsExactly<ArgumentException>(() => ml.Transforms.TokenizeImages("Tokens", "Image", bad).Fit(TinyData.ImageView(8)));
        StringAssert.Contains(wrongSize.Message, "VqganOptions.ValidationSet");
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
