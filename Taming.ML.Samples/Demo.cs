using System.Diagnostics;
using Microsoft.ML;
using Microsoft.ML.Data;
using Taming.ML.Data;
using Taming.ML.Evaluation;
using Taming.ML.MLNet;
using Taming.ML.Models;
using Taming.ML.Sampling;

namespace Taming.ML.Samples;

/// <summary>
/// The no-argument demo on the embedded MNIST: fit a VQGAN tokenizer, evaluate and save it, fit a
/// class-conditional prior on its tokens, generate a 10×10 grid of digits (one row per class) through an
/// ML.NET pipeline, and judge the samples with a classifier trained on real digits.
/// </summary>
internal static class Demo
{
    public static int Run(Arguments args)
    {
        string output = args.String("output-dir") ?? "out";
        int? tokenizerSteps = args.Int("steps"), priorSteps = args.Int("prior-steps");
        double tokenizerMinutes = args.Double("tokenizer-minutes") ?? 6, priorMinutes = args.Double("prior-minutes") ?? 8;
        string device = args.String("device") ?? "cpu";
        var precision = args.Precision() ?? Precision.Float32;
        args.RejectUnknown();
        Directory.CreateDirectory(output);
        var total = Stopwatch.StartNew();

        var ml = new MLContext(seed: 1);
        var all = ml.Data.LoadFromIdx(DataSources.EmbeddedMnistImages, DataSources.EmbeddedMnistLabels, padTo: 32);
        var train = ml.Data.TakeRows(all, 9000);
        var test = ml.Data.SkipRows(all, 9000);
        Console.WriteLine("Taming.ML demo on MNIST: 9,000 training digits padded to 32×32, 1,000 held out.");

        // 1. The tokenizer: Fit trains the VQGAN.
        Console.WriteLine($"\n1. VQGAN tokenizer (8×8 tokens, 512 codes, up to {tokenizerMinutes} min)");
        var tokenizerCurves = new TrainingCurves();
        var tokenizer = ml.Transforms.TokenizeImages("Tokens", "Image", new VqganOptions
        {
            Channels = 1, CodebookSize = 512, Steps = tokenizerSteps ?? 3000, TimeBudget = TimeSpan.FromMinutes(tokenizerMinutes),
            DiscWeight = 0.1, // where the steps reach 1,000 (a GPU), the GAN starts at 60 %; digits gain little from it, so a light touch
            PerceptualWeight = 0.1, // the shipped ResNet18 distance: lower rFID for a little PSNR
            ValidationSet = test, // 128 held-out digits reconstructed at every report: the curves' validation line
            Device = device, Precision = precision, Progress = p => { Console.WriteLine("   " + p); tokenizerCurves.Add(p); },
        }).Fit(train);
        string tokenizerZip = Path.Combine(output, "mnist-tokenizer.zip");
        TrainingRun.SaveCurves(tokenizerCurves, tokenizerZip, "   ");
        string reconstructions = Path.Combine(output, "mnist-reconstructions.png");
        var metrics = ml.Taming().EvaluateReconstruction(test, tokenizer, "Image", reconstructions, gridImages: 64);
        Console.WriteLine($"   Held-out reconstruction: {metrics}");
        Console.WriteLine($"   Originals (odd rows) over reconstructions (even rows): {reconstructions}");

        ml.Model.Save(tokenizer, train.Schema, tokenizerZip);
        var reloaded = new MLContext(seed: 1).Taming().LoadModel(tokenizerZip, out _);
        bool same = TokensOf(tokenizer.Transform(test)).SequenceEqual(TokensOf(reloaded.Transform(test)));
        Console.WriteLine($"   Saved {tokenizerZip}; reloaded in a fresh MLContext, tokens identical: {same}.");

        // 2. The prior: a GPT on the token grids, conditioned on the digit's label.
        Console.WriteLine($"\n2. Class-conditional transformer prior on the tokens (up to {priorMinutes} min)");
        var tokens = tokenizer.Transform(train);
        var priorCurves = new TrainingCurves();
        var prior = ml.Transforms.FitPrior("Tokens", labelColumnName: "Label", options: new GptOptions
        {
            Steps = priorSteps ?? 4000, TimeBudget = TimeSpan.FromMinutes(priorMinutes), Device = device, Precision = precision,
            Progress = p => { Console.WriteLine("   " + p); priorCurves.Add(p); },
        }).Fit(tokens);
        string priorZip = Path.Combine(output, "mnist-prior.zip");
        TrainingRun.SaveCurves(priorCurves, priorZip, "   ");
        var heldOutBits = ml.Data.CreateEnumerable<ScoreRow>(prior.Transform(tokenizer.Transform(test)), false).Average(r => r.BitsPerToken);
        Console.WriteLine($"   Held-out negative log-likelihood: {heldOutBits:F3} bits per token (uniform over 512 codes: 9).");
        ml.Model.Save(prior, tokens.Schema, priorZip);
        Console.WriteLine($"   Saved {priorZip}.");

        // 3. Generation as a pipeline: labels in, images out.
        Console.WriteLine("\n3. Generation: labels → GenerateTokens → DecodeTokens → images");
        var sampling = new SamplingOptions { TopK = 20, Temperature = 1.0, Seed = 7 };
        var labels = ml.Data.LoadFromEnumerable(Enumerable.Range(0, 500).Select(i => new LabelRow { Label = (uint)(i % 10) }));
        var clock = Stopwatch.StartNew();
        var generator = ml.Transforms.GenerateTokens("Generated", prior, options: sampling).Fit(labels);
        var sampled = ml.Data.Cache(generator.Transform(labels)); // sample once, read twice below
        var decoder = ml.Transforms.DecodeTokens("GeneratedImage", "Generated", tokenizer).Fit(sampled);
        var generated = decoder.Transform(sampled);
        string grid = Path.Combine(output, "mnist-generated.png");
        ImageGrid.SavePng(grid, GridOf(generated, perClass: 10), channels: 1, height: 32, width: 32, scale: 2);
        Console.WriteLine($"   500 digits sampled (top-k {sampling.TopK}) in {clock.Elapsed.TotalSeconds:F1} s; a 10×10 grid, one row per digit: {grid}");
        string generatorZip = Path.Combine(output, "mnist-generator.zip");
        ml.Model.Save(generator.Append(decoder), labels.Schema, generatorZip);
        Console.WriteLine($"   The labels → images model: {generatorZip}.");

        // 4. Judge the samples with a classifier trained on real digits only.
        Console.WriteLine("\n4. Class consistency");
        var classifier = ml.Taming().TrainImageClassifier(train, epochs: 6, device: device);
        Console.WriteLine($"   Classifier trained on real digits, held-out accuracy: {ml.Taming().EvaluateClassification(test, classifier)}");
        var consistency = ml.Taming().EvaluateClassification(generated, classifier, "GeneratedImage", "Label");
        Console.WriteLine($"   Generated digits recognised as the class they were conditioned on: {consistency}");
        Console.WriteLine($"\nDone in {total.Elapsed:mm\\:ss}.");
        return same ? 0 : 1;
    }

    /// <summary>The first <paramref name="perClass"/> generated images of each label, one row per label.</summary>
    private static List<IReadOnlyList<byte[]>> GridOf(IDataView generated, int perClass)
    {
        var rows = Enumerable.Range(0, 10).Select(_ => new List<byte[]>()).ToList();
        var image = generated.Schema["GeneratedImage"];
        var label = generated.Schema["Label"];
        using var cursor = generated.GetRowCursor(new[] { image, label });
        var getImage = cursor.GetGetter<MLImage>(image);
        var getLabel = cursor.GetGetter<uint>(label);
        MLImage picture = null!;
        uint key = 0;
        while (cursor.MoveNext())
        {
            getLabel(ref key);
            var row = rows[(int)key - 1];
            if (row.Count >= perClass) continue;
            getImage(ref picture);
            row.Add(ImagePixels.ToPlanarBytes(picture, channels: 1));
        }
        return rows.Cast<IReadOnlyList<byte[]>>().ToList();
    }

    private static uint[] TokensOf(IDataView data)
    {
        var column = data.Schema["Tokens"];
        return data.GetColumn<VBuffer<uint>>(column).SelectMany(v => v.DenseValues()).ToArray();
    }

    private sealed class LabelRow
    {
        [KeyType(10)] public uint Label { get; set; }
    }

    private sealed class ScoreRow
    {
        public float BitsPerToken { get; set; }
    }
}
