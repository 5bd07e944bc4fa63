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
/// The photos demo: tokenizers and priors fitted on random crops of the shipped photographs, then canvases far
/// larger than the crops — whole photographs generated from a blurred (4× downscaled) photo, and a moss texture
/// five times wider than its training crops — with the sliding-window sampler.
/// </summary>
internal static class PhotosDemo
{
    private const int Crop = 32, Downscale = 4, ConditionFactor = 4;

    public static int Run(Arguments args)
    {
        string output = args.String("output-dir") ?? Path.Combine("out", "photos");
        double minutes = args.Double("minutes") ?? 3;
        string device = args.String("device") ?? "cpu";
        var precision = args.Precision() ?? Precision.Float32;
        var mode = Enum.Parse<WindowMode>(args.String("window-mode") ?? nameof(WindowMode.Exact), ignoreCase: true);
        int topK = args.Int("top-k") ?? 20; // sharper than the reference samplers' 100 for these briefly trained priors
        double temperature = args.Double("temperature") ?? 1;
        bool reuse = args.Flag("reuse");
        args.RejectUnknown();
        Directory.CreateDirectory(output);
        var total = Stopwatch.StartNew();
        var photos = Directory.GetFiles(Path.Combine(AppContext.BaseDirectory, "data", "photos"), "*.jpg").OrderBy(p => p).ToArray();
        string moss = photos.Single(p => p.EndsWith("onestandsout.jpg"));
        var ml = new MLContext(seed: 1);
        void Log(object p) => Console.WriteLine("   " + p);

        Console.WriteLine($"Taming.ML photos demo: {photos.Length} photographs shrunk {Downscale}× (256×160), random {Crop}×{Crop} crops.");
        var files = new[] { "photos-tokenizer.zip", "photos-condition-tokenizer.zip", "photos-conditional-prior.zip", "moss-prior.zip" }
            .Select(f => Path.Combine(output, f)).ToArray();
        VqganTokenizerTransformer imageTokenizer, conditionTokenizer;
        PriorTransformer conditional, texture;
        if (reuse)
        {
            // Sampling again with other options: the models of an earlier run.
            Console.WriteLine($"Reusing the tokenizers and priors in {output}.");
            (imageTokenizer, conditionTokenizer) = (TamingCatalog.FindTokenizer(ml.Taming().LoadModel(files[0], out _)), TamingCatalog.FindTokenizer(ml.Taming().LoadModel(files[1], out _)));
            (conditional, texture) = (TamingCatalog.FindPrior(ml.Taming().LoadModel(files[2], out _)), TamingCatalog.FindPrior(ml.Taming().LoadModel(files[3], out _)));
        }
        else (imageTokenizer, conditionTokenizer, conditional, texture) = Fit(ml, photos, moss, minutes, device, precision, files, Log);

        Console.WriteLine($"\n5. Whole photographs reconstructed by the image tokenizer, and generated from their blurred versions ({mode} window)");
        var wholePhotos = Photos(ml, photos, out int photoH, out int photoW);
        // The image tokenizer learnt on 32×32 crops; how well it carries whole photos bounds what generation can show.
        var wholeTokenizer = ml.Transforms.TokenizeWholeImages("Tokens", "Photo", imageTokenizer).Fit(wholePhotos);
        foreach (var photo in photos)
            Log($"{Path.GetFileName(photo)}: {ml.Taming().EvaluateReconstruction(Photos(ml, new[] { photo }, out _, out _), wholeTokenizer, "Photo", rfid: false)}");
        string reconstructionsPng = Path.Combine(output, "photos-real-reconstructed.png");
        ml.Taming().EvaluateReconstruction(wholePhotos, wholeTokenizer, "Photo", gridPath: reconstructionsPng, rfid: false);
        Log($"Originals (odd rows) over reconstructions (even rows): {reconstructionsPng}");

        // One ML.NET pipeline: the condition tokenizer reads the whole blurred photos, the conditional prior samples
        // canvases of their condition grids with the sliding window, and the image tokenizer's decoder turns tokens
        // into photos. The canvas is the whole photos' token grid (a windowed prior's default; named, for priors saved
        // by older releases).
        var generation = Stopwatch.StartNew();
        int th = photoH / imageTokenizer.DownsamplingFactor, tw = photoW / imageTokenizer.DownsamplingFactor;
        var pipeline = ml.Transforms.TokenizeWholeImages("ConditionTokens", "Condition", conditionTokenizer)
            .Append(ml.Transforms.GenerateTokens("Generated", conditional, conditionColumnName: "ConditionTokens",
                options: new SamplingOptions { TopK = topK, Temperature = temperature, WindowMode = mode, Seed = 7, HeightTokens = th, WidthTokens = tw, Progress = Log }))
            .Append(ml.Transforms.DecodeTokens("GeneratedImage", "Generated", imageTokenizer));
        var pictures = ImagePixels.ReadColumns(pipeline.Fit(wholePhotos).Transform(wholePhotos), 3, "Condition", "GeneratedImage", "Photo");
        Log($"{photos.Length} canvases of {th}×{tw} tokens generated and decoded in {generation.Elapsed.TotalSeconds:F0} s");
        string photosPng = Path.Combine(output, "photos-condition-generated-real.png");
        ImageGrid.SavePng(photosPng, pictures.Select(p => (IReadOnlyList<byte[]>)p).ToList(), 3, photoH, photoW);
        Log($"Condition | generated | real, one photo per row: {photosPng}");

        Console.WriteLine("\n6. Moss strips five times wider than the training crops, exact and strided windows");
        int stripTokens = 5 * Crop / (Crop / 8);
        var mossReal = pictures[Array.IndexOf(photos, moss)][2];
        var stripRows = new List<IReadOnlyList<byte[]>> { new[] { ImagePixels.Crop(mossReal, 3, photoH, photoW, top: 40, left: 40, Crop, 5 * Crop) } };
        var noConditions = Enumerable.Repeat(Array.Empty<long>(), 4).ToArray();
        foreach (var stripMode in new[] { WindowMode.Exact, WindowMode.Strided })
        {
            var clock = Stopwatch.StartNew();
            var strips = texture.Sample(noConditions, new[] { 1, 2, 3, 4 },
                new SamplingOptions { TopK = topK, Temperature = temperature, HeightTokens = 8, WidthTokens = stripTokens, WindowMode = stripMode });
            double seconds = clock.Elapsed.TotalSeconds;
            // The texture prior's own judgement of the strips, read with the reference's sliding window.
            double bits = texture.BitsPerToken(noConditions, strips, 8, stripTokens).Average();
            Log($"{stripMode}: 4 strips of 8×{stripTokens} tokens in {seconds:F1} s, {bits:F3} bits/token under the sliding window");
            stripRows.AddRange(strips.Take(2).Select(strip => new[] { Decode(imageTokenizer, strip, 8, stripTokens) }));
        }
        string stripPng = Path.Combine(output, "moss-strips.png");
        ImageGrid.SavePng(stripPng, stripRows, 3, Crop, 5 * Crop, scale: 2);
        Log($"A real strip, two exact-window strips, two strided-window strips: {stripPng}");
        Console.WriteLine($"\nDone in {total.Elapsed:mm\\:ss}.");
        return 0;
    }

    /// <summary>Steps 1–4: the two tokenizers and the two priors, fitted on crops and saved to <paramref name="files"/>.</summary>
    private static (VqganTokenizerTransformer, VqganTokenizerTransformer, PriorTransformer, PriorTransformer) Fit(
        MLContext ml, string[] photos, string moss, double minutes, string device, Precision precision, string[] files, Action<object> Log)
    {
        var crops = ml.Data.LoadRandomCrops(photos, Crop, count: 6000, seed: 1, downscale: Downscale);
        // The condition of a crop: the crop shrunk 4× and blown up again, with ML.NET's own ResizeImages stages.
        var blur = ml.Transforms.ResizeImages("Small", Crop / ConditionFactor, Crop / ConditionFactor, "Image")
            .Append(ml.Transforms.ResizeImages("Condition", Crop, Crop, "Small"));

        var curves = files.Select(_ => new TrainingCurves()).ToArray(); // one per model, saved beside it
        Console.WriteLine($"\n1. Image tokenizer on the crops ({minutes} min)");
        var imageTokenizer = ml.Transforms.TokenizeImages("Tokens", "Image", new VqganOptions
        {
            // Fully convolutional, so that whole photos decode as their crops do.
            CodebookSize = 512, MidAttention = false, Steps = 5000, TimeBudget = TimeSpan.FromMinutes(minutes), Device = device, Precision = precision,
            DiscWeight = 0.3, Progress = p => { Log(p); curves[0].Add(p); }, // the GAN starts only where the steps reach 1,000 (a GPU)
        }).Fit(crops);
        // Judged on other crops than the 6,000 it trained on (seed 2), as the condition tokenizer below is.
        var testCrops = ml.Data.LoadRandomCrops(photos, Crop, 300, seed: 2, downscale: Downscale);
        Log(ml.Taming().EvaluateReconstruction(testCrops, imageTokenizer,
            gridPath: Path.Combine(Path.GetDirectoryName(files[0])!, "crop-reconstructions.png")));

        Console.WriteLine($"\n2. Condition tokenizer on the blurred crops ({minutes * 0.7:F1} min)");
        var blurred = blur.Fit(crops).Transform(crops);
        var conditionTokenizer = ml.Transforms.TokenizeImages("ConditionTokens", "Condition", new VqganOptions
        {
            CodebookSize = 256, MidAttention = false, Steps = 5000, TimeBudget = TimeSpan.FromMinutes(minutes * 0.7), Device = device, Precision = precision,
            DiscStart = -1, PerceptualWeight = 0, Progress = p => { Log(p); curves[1].Add(p); }, // blurred images: L1 alone, and more steps in its minutes
        }).Fit(blurred);
        Log(ml.Taming().EvaluateReconstruction(blur.Fit(testCrops).Transform(testCrops), conditionTokenizer, "Condition"));

        // The priors learn from whole-photo token grids, the tokens that sampling conditions on and continues, in
        // random windows of the crops' grid (8×8; GptOptions.Window). The tokens of 32×32 crops would not do: they all
        // lie near the crop's border (zero padding, group norm statistics over the crop), so they differ from the same
        // spot's tokens in a whole photo (a prior fitted on crop tokens spends ~9 bits per token on whole-photo windows,
        // against 3 on crops).
        int window = imageTokenizer.GridShape.Height;
        var wholePhotos = Photos(ml, photos, out _, out _);
        var grids = ml.Transforms.TokenizeWholeImages("Tokens", "Photo", imageTokenizer)
            .Append(ml.Transforms.TokenizeWholeImages("ConditionTokens", "Condition", conditionTokenizer)).Fit(wholePhotos);
        var tokens = grids.Transform(wholePhotos);

        Console.WriteLine($"\n3. Prior of image tokens given condition tokens, in {window}×{window} windows of the whole photos ({minutes * 2.2:F1} min)");
        var conditional = ml.Transforms.FitPrior("Tokens", conditionColumnName: "ConditionTokens", options: new GptOptions
        {
            Window = window, Steps = 8000, TimeBudget = TimeSpan.FromMinutes(minutes * 2.2), Device = device, Precision = precision,
            Progress = p => { Log(p); curves[2].Add(p); },
        }).Fit(tokens);

        Console.WriteLine($"\n4. Unconditional prior of the moss texture, in {window}×{window} windows ({minutes:F1} min)");
        var mossTokens = grids.Transform(Photos(ml, new[] { moss }, out _, out _));
        var texture = ml.Transforms.FitPrior("Tokens", options: new GptOptions
        {
            Window = window, Steps = 6000, TimeBudget = TimeSpan.FromMinutes(minutes), Device = device, Precision = precision,
            Progress = p => { Log(p); curves[3].Add(p); },
        }).Fit(mossTokens);

        // ML.NET cannot store an input schema of image columns only, so the tokenizers are saved without one.
        ml.Model.Save(imageTokenizer, null, files[0]);
        ml.Model.Save(conditionTokenizer, null, files[1]);
        ml.Model.Save(conditional, tokens.Schema, files[2]);
        ml.Model.Save(texture, mossTokens.Schema, files[3]);
        Log($"Saved the tokenizers and priors in {Path.GetDirectoryName(files[0])} (generate --condition and photos --reuse use them).");
        for (int i = 0; i < files.Length; i++) TrainingRun.SaveCurves(curves[i], files[i], "   ");
        return (imageTokenizer, conditionTokenizer, conditional, texture);
    }

    /// <summary>
    /// The photos shrunk by the demo's factor (all to the first one's size, sides multiples of 8) and their conditions —
    /// shrunk 4× more and blown up again, as the crops' conditions were made — as "Photo" and "Condition" image columns,
    /// through ML.NET's image stages.
    /// </summary>
    private static IDataView Photos(MLContext ml, IReadOnlyList<string> paths, out int height, out int width)
    {
        using (var first = MLImage.CreateFromFile(paths[0]))
            (height, width) = (first.Height / Downscale / 8 * 8, first.Width / Downscale / 8 * 8);
        var source = ml.Data.LoadFromEnumerable(paths.Select(p => new PathRow { Path = p }).ToList());
        return ml.Transforms.LoadImages("Photo", null, "Path")
            .Append(ml.Transforms.CropAndResizeImages("Photo", width, height, "Photo"))
            .Append(ml.Transforms.ResizeImages("Small", width / ConditionFactor, height / ConditionFactor, "Photo"))
            .Append(ml.Transforms.ResizeImages("Condition", width, height, "Small"))
            .Fit(source).Transform(source);
    }

    private static byte[] Decode(VqganTokenizerTransformer tokenizer, long[] canvas, int height, int width)
    {
        using var image = tokenizer.DecodeImage(canvas, height, width);
        return ImagePixels.ToPlanarBytes(image, 3);
    }

    private sealed class PathRow
    {
        public string Path { get; set; } = "";
    }
}
