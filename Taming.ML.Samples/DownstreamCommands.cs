using System.Diagnostics;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms;
using Microsoft.ML.Transforms.Image;
using Microsoft.ML.Transforms.Text;
using Taming.ML.MLNet;

namespace Taming.ML.Samples;

/// <summary>classify-tokens: the tokenizer's and the prior's outputs as inputs of ordinary ML.NET tasks.</summary>
internal static class DownstreamCommands
{
    /// <summary>
    /// classify-tokens [--tokenizer zip] [--prior zip] [--images idx --labels idx]: digit classification on tokens
    /// (positional one-hot, and bag of visual words) against raw pixels with the same ML.NET trainer; then the prior's
    /// bits per token as an anomaly score for inverted and noise-corrupted digits.
    /// </summary>
    public static int ClassifyTokens(Arguments args)
    {
        string tokenizerPath = args.String("tokenizer") ?? Path.Combine("out", "mnist-tokenizer.zip");
        string priorPath = args.String("prior") ?? Path.Combine("out", "mnist-prior.zip");
        string images = args.String("images") ?? DataSources.EmbeddedMnistImages;
        string labels = args.String("labels") ?? DataSources.EmbeddedMnistLabels;
        args.RejectUnknown();

        var ml = new MLContext(seed: 1);
        var tokenizerModel = ml.Taming().LoadModel(tokenizerPath, out _);
        var tokenizer = TamingCatalog.FindTokenizer(tokenizerModel);
        string tokens = tokenizer.OutputColumnName;
        var all = ml.Data.LoadFromIdx(images, labels, padTo: tokenizer.Resolution);
        // The demo's split: the first 9,000 digits trained the tokenizer and the prior.
        var train = ml.Data.TakeRows(all, 9000);
        var test = ml.Data.SkipRows(all, 9000);
        var tokenized = ml.Data.Cache(tokenizerModel.Transform(train));
        var tokenizedTest = tokenizerModel.Transform(test);

        Console.WriteLine($"1. Digit classification, SdcaMaximumEntropy on 9,000 digits, accuracy on the 1,000 held out:");
        var trainer = ml.MulticlassClassification.Trainers.SdcaMaximumEntropy("Label", "Features");
        void Report(string name, IEstimator<ITransformer> features, IDataView fitOn, IDataView evaluateOn)
        {
            var clock = Stopwatch.StartNew();
            var model = features.Append(trainer).Fit(fitOn);
            var metrics = ml.MulticlassClassification.Evaluate(model.Transform(evaluateOn));
            Console.WriteLine($"   {name,-44} micro-accuracy {metrics.MicroAccuracy:P1}  macro {metrics.MacroAccuracy:P1}  log-loss {metrics.LogLoss:F3}  ({clock.Elapsed.TotalSeconds:F0} s)");
        }
        // One indicator per (position, code): 8·8 positions × 512 codes.
        Report("tokens, one-hot per position", ml.Transforms.Conversion.MapKeyToVector("Features", tokens), tokenized, tokenizedTest);
        // Bag of visual words: counts of codes and of horizontally adjacent code pairs, positions forgotten.
        Report("tokens, bag of visual words (1- and 2-grams)", ml.Transforms.Text.ProduceNgrams("Features", tokens, ngramLength: 2,
            weighting: NgramExtractingEstimator.WeightingCriteria.Tf).Append(ml.Transforms.NormalizeMinMax("Features")), tokenized, tokenizedTest);
        Report($"raw pixels ({tokenizer.Resolution}×{tokenizer.Resolution})", ml.Transforms.ExtractPixels("Features", "Image",
            ImagePixelExtractingEstimator.ColorBits.Red, scaleImage: 1 / 255f), train, test);

        Console.WriteLine("\n2. The prior's bits per token as an anomaly score on the held-out digits (higher: less typical):");
        var prior = TamingCatalog.FindPrior(ml.Taming().LoadModel(priorPath, out _));
        var variants = new (string Name, Func<float, Random, float> Pixel)[]
        {
            ("as they are", (v, _) => v),
            ("inverted", (v, _) => 255 - v),
            ("with Gaussian noise (σ 60)", (v, r) => Math.Clamp(v + 60 * Gaussian(r), 0, 255)),
            ("with Gaussian noise (σ 20)", (v, r) => Math.Clamp(v + 20 * Gaussian(r), 0, 255)),
        };
        float[]? normal = null;
        foreach (var (name, pixel) in variants)
        {
            // The corruption is an ML.NET stage on the pixel vector; the tokenizer reads 0–255 pixel vectors as images.
            var corrupted = ml.Transforms.ExtractPixels("Image", "Image", ImagePixelExtractingEstimator.ColorBits.Red)
                .Append(ml.Transforms.CustomMapping((PixelRow input, PixelRow output) =>
                {
                    // ML.NET may map rows on several threads: each image draws from its own generator, seeded by its content.
                    var random = new Random(input.Image.Aggregate(17, (h, v) => h * 31 + (int)v));
                    output.Image = input.Image.Select(v => pixel(v, random)).ToArray();
                }, null))
                .Fit(test).Transform(test);
            var scored = prior.Transform(tokenizerModel.Transform(corrupted));
            var bits = scored.GetColumn<float>(prior.ScoreColumnName).ToArray();
            normal ??= bits;
            string auc = "";
            if (!ReferenceEquals(bits, normal))
            {
                float threshold = normal.Order().ElementAt((int)(0.95 * normal.Length));
                var rows = normal.Select(b => new Scored(false, b, b > threshold)).Concat(bits.Select(b => new Scored(true, b, b > threshold)));
                var metrics = ml.BinaryClassification.EvaluateNonCalibrated(ml.Data.LoadFromEnumerable(rows), "Anomalous", "Score", "Flagged");
                auc = $"  AUC against the untouched digits {metrics.AreaUnderRocCurve:F3}; above their 95th percentile: {bits.Count(b => b > threshold) / (double)bits.Length:P1}";
            }
            Console.WriteLine($"   {name,-28} mean {bits.Average():F3} bits/token{auc}");
        }
        return 0;
    }

    private static float Gaussian(Random random) =>
        (float)(Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble()));

    private sealed class PixelRow
    {
        [VectorType(1, 32, 32)]
        public float[] Image { get; set; } = Array.Empty<float>();
    }

    private sealed record Scored(bool Anomalous, float Score, bool Flagged);
}
