using System.Diagnostics;
using System.Text.Json;
using Microsoft.ML;
using Microsoft.ML.Data;
using Taming.ML.Data;
using Taming.ML.Evaluation;
using Taming.ML.MLNet;
using Taming.ML.Models;

namespace Taming.ML.Samples;

/// <summary>The tokenizer's commands: the MNIST demo, train-tokenizer and evaluate-tokenizer.</summary>
internal static class TokenizerCommands
{
    /// <summary>The no-argument demo: fit on 9,000 embedded MNIST digits, evaluate on the other 1,000, save, reload, decode.</summary>
    public static int Demo(Arguments args)
    {
        string output = args.String("output-dir") ?? "out";
        int? steps = args.Int("steps");
        string device = args.String("device") ?? "cpu";
        args.RejectUnknown();
        Directory.CreateDirectory(output);

        var ml = new MLContext(seed: 1);
        var all = ml.Data.LoadFromIdx(DataSources.EmbeddedMnistImages, DataSources.EmbeddedMnistLabels, padTo: 32);
        var train = ml.Data.TakeRows(all, 9000);
        var test = ml.Data.SkipRows(all, 9000);
        Console.WriteLine("Taming.ML demo: a VQGAN tokenizer on MNIST (9,000 training digits padded to 32×32, 1,000 held out).");

        var options = new VqganOptions
        {
            Channels = 1,
            CodebookSize = 512,
            Steps = steps ?? 3000,
            TimeBudget = TimeSpan.FromMinutes(8),
            Device = device,
            Progress = p => Console.WriteLine("  " + p),
        };
        var clock = Stopwatch.StartNew();
        var tokenizer = ml.Transforms.TokenizeImages("Tokens", "Image", options).Fit(train);
        Console.WriteLine($"Fitted in {clock.Elapsed:mm\\:ss}. Tokens per image: {tokenizer.GridShape.Height}×{tokenizer.GridShape.Width}.");

        string grid = Path.Combine(output, "mnist-reconstructions.png");
        var metrics = ml.Taming().EvaluateReconstruction(test, tokenizer, "Image", grid, gridImages: 64);
        Console.WriteLine($"Held-out reconstruction: {metrics}");
        Console.WriteLine($"Originals (odd rows) over reconstructions (even rows): {grid}");

        string zip = Path.Combine(output, "mnist-tokenizer.zip");
        ml.Model.Save(tokenizer, train.Schema, zip);
        var reloaded = new MLContext(seed: 1).Taming().LoadModel(zip, out _);
        bool same = TokensOf(ml, tokenizer.Transform(test)).SequenceEqual(TokensOf(ml, reloaded.Transform(test)));
        Console.WriteLine($"Saved {zip} ({new FileInfo(zip).Length / 1024} KB); reloaded tokens identical: {same}.");

        // Tokens → images through an ordinary ML.NET pipeline stage.
        var decoded = ml.Transforms.DecodeTokens("Decoded", "Tokens", tokenizer).Fit(tokenizer.Transform(test)).Transform(tokenizer.Transform(test));
        string first = Path.Combine(output, "decoded-0.png");
        using (var cursor = decoded.GetRowCursor(new[] { decoded.Schema["Decoded"] }))
        {
            var getter = cursor.GetGetter<MLImage>(decoded.Schema["Decoded"]);
            MLImage image = null!;
            cursor.MoveNext();
            getter(ref image);
            image.Save(first);
        }
        Console.WriteLine($"First held-out digit decoded from its tokens: {first}");
        return same ? 0 : 1;
    }

    /// <summary>train-tokenizer --images &lt;idx|folder&gt; [--labels] --output &lt;zip&gt; [...].</summary>
    public static int Train(Arguments args)
    {
        string images = args.Required("images");
        string? labels = args.String("labels");
        string output = args.Required("output");
        var options = new VqganOptions
        {
            Resolution = args.Int("resolution") ?? 0,
            CodebookSize = args.Int("codebook-size") ?? 512,
            Steps = args.Int("steps") ?? 3000,
            BatchSize = args.Int("batch-size") ?? 32,
            Seed = args.Int("seed"),
            Device = args.String("device") ?? "cpu",
            Progress = p => Console.WriteLine("  " + p),
        };
        if (args.Int("minutes") is { } minutes) options.TimeBudget = TimeSpan.FromMinutes(minutes);
        args.RejectUnknown();

        var ml = new MLContext(seed: options.Seed ?? 1);
        bool idx = DataSources.IsIdx(images);
        if (idx) options.Channels = 1;
        // Folders of images of any size: resize to the resolution (64 unless given) as an ML.NET stage.
        var data = DataSources.Load(ml, images, labels, idxPadTo: options.Resolution > 0 ? options.Resolution : 32);
        IEstimator<ITransformer> pipeline = idx
            ? ml.Transforms.TokenizeImages("Tokens", "Image", options)
            : ml.Transforms.ResizeImages("Image", options.Resolution = options.Resolution > 0 ? options.Resolution : 64, options.Resolution, "Image")
                .Append(ml.Transforms.TokenizeImages("Tokens", "Image", options));
        var model = pipeline.Fit(data);
        ml.Model.Save(model, data.Schema, output);
        Console.WriteLine($"Saved the tokenizer to {output}.");
        return 0;
    }

    /// <summary>evaluate-tokenizer --model &lt;zip&gt; --images &lt;...&gt; [--labels] [--json] [--grid png].</summary>
    public static int Evaluate(Arguments args)
    {
        string modelPath = args.Required("model");
        string images = args.Required("images");
        string? labels = args.String("labels");
        bool json = args.Flag("json");
        string grid = args.String("grid") ?? Path.Combine("out", "reconstructions.png");
        args.RejectUnknown();

        var ml = new MLContext(seed: 1);
        var model = ml.Taming().LoadModel(modelPath, out _);
        var tokenizer = TamingCatalog.FindTokenizer(model);
        var data = DataSources.Load(ml, images, labels, idxPadTo: tokenizer.Resolution);
        // Everything in the saved chain before the tokenizer (e.g. ResizeImages) applies to the evaluation images too.
        var prepared = model is TransformerChain<ITransformer> chain
            ? new TransformerChain<ITransformer>(chain.TakeWhile(t => t is not VqganTokenizerTransformer).ToArray()).Transform(data)
            : data;
        var metrics = ml.Taming().EvaluateReconstruction(prepared, tokenizer, tokenizer.InputColumnName, grid, gridImages: 64);
        Console.WriteLine(metrics);
        Console.WriteLine($"Reconstruction grid: {grid}");
        if (json) Console.WriteLine(JsonSerializer.Serialize(metrics));
        return 0;
    }

    private static uint[] TokensOf(MLContext ml, IDataView data) =>
        ml.Data.CreateEnumerable<TokenRow>(data, reuseRowObject: false).SelectMany(r => r.Tokens).ToArray();

    private sealed class TokenRow
    {
        public uint[] Tokens { get; set; } = Array.Empty<uint>();
    }
}
