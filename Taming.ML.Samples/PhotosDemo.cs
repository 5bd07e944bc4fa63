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
        var rows = new List<IReadOnlyList<byte[]>>();
        var reconstructions = new List<IReadOnlyList<byte[]>>();
        int photoH = 0, photoW = 0;
        foreach (var photo in photos)
        {
            var (real, condition, h, w) = ShrunkAndBlurred(ml, photo);
            (photoH, photoW) = (h, w);
            // The tokenizer learnt on 32×32 crops; how well it carries a whole photo bounds what generation can show.
            using var realImage = ImagePixels.ToImage(real, 3, h, w);
            var (ids, rh, rw) = imageTokenizer.TokenizeImage(realImage);
            var reconstructed = Decode(imageTokenizer, ids, rh, rw);
            reconstructions.Add(new[] { real, reconstructed });

            var clock = Stopwatch.StartNew();
            using var conditionImage = ImagePixels.ToImage(condition, 3, h, w);
            var (conditionIds, th, tw) = conditionTokenizer.TokenizeImage(conditionImage);
            var canvas = conditional.Sample(new[] { conditionIds }, new[] { 7 },
                new SamplingOptions { TopK = topK, Temperature = temperature, HeightTokens = th, WidthTokens = tw, WindowMode = mode })[0];
            var generated = Decode(imageTokenizer, canvas, th, tw);
            rows.Add(new[] { condition, generated, real });
            Log($"{Path.GetFileName(photo)}: reconstructed at PSNR {Psnr(real, reconstructed, h, w):F2} dB; " +
                $"{th}×{tw} tokens generated in {clock.Elapsed.TotalSeconds:F0} s");
        }
        string reconstructionsPng = Path.Combine(output, "photos-real-reconstructed.png");
        ImageGrid.SavePng(reconstructionsPng, reconstructions, 3, photoH, photoW);
        Log($"Real | reconstructed, one photo per row: {reconstructionsPng}");
        string photosPng = Path.Combine(output, "photos-condition-generated-real.png");
        ImageGrid.SavePng(photosPng, rows, 3, photoH, photoW);
        Log($"Condition | generated | real, one photo per row: {photosPng}");

        Console.WriteLine("\n6. Moss strips five times wider than the training crops, exact and strided windows");
        int stripTokens = 5 * Crop / (Crop / 8);
        var (mossReal, _, mh, mw) = ShrunkAndBlurred(ml, moss);
        var stripRows = new List<IReadOnlyList<byte[]>> { new[] { ImagePixels.Crop(mossReal, 3, mh, mw, top: 40, left: 40, Crop, 5 * Crop) } };
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

        Console.WriteLine($"\n1. Image tokenizer on the crops ({minutes} min)");
        var imageTokenizer = ml.Transforms.TokenizeImages("Tokens", "Image", new VqganOptions
        {
            // Fully convolutional, so that whole photos decode as their crops do.
            CodebookSize = 512, MidAttention = false, Steps = 5000, TimeBudget = TimeSpan.FromMinutes(minutes), Device = device, Precision = precision,
            DiscWeight = 0.3, Progress = Log,
        }).Fit(crops);
        Log(ml.Taming().EvaluateReconstruction(ml.Data.LoadRandomCrops(photos, Crop, 300, seed: 2, downscale: Downscale), imageTokenizer,
            gridPath: Path.Combine(Path.GetDirectoryName(files[0])!, "crop-reconstructions.png")));

        Console.WriteLine($"\n2. Condition tokenizer on the blurred crops ({minutes * 0.7:F1} min)");
        var blurred = blur.Fit(crops).Transform(crops);
        var conditionTokenizer = ml.Transforms.TokenizeImages("ConditionTokens", "Condition", new VqganOptions
        {
            CodebookSize = 256, MidAttention = false, Steps = 5000, TimeBudget = TimeSpan.FromMinutes(minutes * 0.7), Device = device, Precision = precision,
            DiscStart = -1, PerceptualWeight = 0, Progress = Log, // blurred images: L1 alone, and more steps in its minutes
        }).Fit(blurred);
        Log(ml.Taming().EvaluateReconstruction(blurred, conditionTokenizer, "Condition"));

        // The priors learn from windows of whole-photo token grids, the tokens that sampling conditions on and
        // continues: a 32×32 crop's tokens all lie near its border (zero padding, group norm statistics over the
        // crop), so they differ from the same spot's tokens in a whole photo (a prior fitted on crop tokens spends
        // ~9 bits per token on whole-photo windows, against 3 on crops).
        var grids = photos.SelectMany(photo => PhotoTokenGrids(ml, photo, imageTokenizer, conditionTokenizer)).ToList();
        int window = imageTokenizer.GridShape.Height; // the crops' token grid, 8×8

        Console.WriteLine($"\n3. Prior of image tokens given condition tokens ({minutes * 2.2:F1} min)");
        var tokens = TokenWindows(ml, grids, window, 6000, seed: 1, imageTokenizer.Model.Options.CodebookSize, conditionTokenizer.Model.Options.CodebookSize);
        var conditional = ml.Transforms.FitPrior("Tokens", conditionColumnName: "ConditionTokens", options: new GptOptions
        {
            Steps = 8000, TimeBudget = TimeSpan.FromMinutes(minutes * 2.2), Device = device, Precision = precision, Progress = Log,
        }).Fit(tokens);

        Console.WriteLine($"\n4. Unconditional prior of the moss texture ({minutes:F1} min)");
        var mossTokens = TokenWindows(ml, grids.Where(g => g.Photo == moss).ToList(), window, 3000, seed: 3,
            imageTokenizer.Model.Options.CodebookSize, conditionTokenizer.Model.Options.CodebookSize); // its condition column unused
        var texture = ml.Transforms.FitPrior("Tokens", options: new GptOptions
        {
            Steps = 6000, TimeBudget = TimeSpan.FromMinutes(minutes), Device = device, Precision = precision, Progress = Log,
        }).Fit(mossTokens);

        // ML.NET cannot store an input schema of image columns only, so the tokenizers are saved without one.
        ml.Model.Save(imageTokenizer, null, files[0]);
        ml.Model.Save(conditionTokenizer, null, files[1]);
        ml.Model.Save(conditional, tokens.Schema, files[2]);
        ml.Model.Save(texture, mossTokens.Schema, files[3]);
        Log($"Saved the tokenizers and priors in {Path.GetDirectoryName(files[0])} (generate --condition and photos --reuse use them).");
        return (imageTokenizer, conditionTokenizer, conditional, texture);
    }

    /// <summary>
    /// A photo shrunk by the demo's factor (sides multiples of 8), and its condition — shrunk 4× more and blown up
    /// again, as the crops' conditions were made — as planar RGB bytes, through ML.NET's image stages.
    /// </summary>
    private static (byte[] Photo, byte[] Condition, int Height, int Width) ShrunkAndBlurred(MLContext ml, string path)
    {
        var source = ml.Data.LoadFromEnumerable(new[] { new PathRow { Path = path } });
        using var original = MLImage.CreateFromFile(path);
        int h = original.Height / Downscale / 8 * 8, w = original.Width / Downscale / 8 * 8;
        var images = ml.Transforms.LoadImages("Photo", null, "Path")
            .Append(ml.Transforms.ResizeImages("Photo", w, h, "Photo"))
            .Append(ml.Transforms.ResizeImages("Small", w / ConditionFactor, h / ConditionFactor, "Photo"))
            .Append(ml.Transforms.ResizeImages("Condition", w, h, "Small"))
            .Fit(source).Transform(source);
        using var cursor = images.GetRowCursor(images.Schema);
        cursor.MoveNext();
        MLImage photo = null!, condition = null!;
        cursor.GetGetter<MLImage>(images.Schema["Photo"])(ref photo);
        var photoPixels = ImagePixels.ToPlanarBytes(photo, 3);
        cursor.GetGetter<MLImage>(images.Schema["Condition"])(ref condition);
        return (photoPixels, ImagePixels.ToPlanarBytes(condition, 3), h, w);
    }

    private static double Psnr(byte[] real, byte[] reconstructed, int height, int width)
    {
        TorchSharp.torch.Tensor Pixels(byte[] planar) => TorchSharp.torch.tensor(planar.Select(b => (float)b).ToArray(), new long[] { 1, 3, height, width });
        using var a = Pixels(real);
        using var b = Pixels(reconstructed);
        return ImageQuality.Psnr(a, b)[0];
    }

    private static byte[] Decode(VqganTokenizerTransformer tokenizer, long[] canvas, int height, int width)
    {
        using var image = tokenizer.DecodeImage(canvas, height, width);
        return ImagePixels.ToPlanarBytes(image, 3);
    }

    /// <summary>A photo's image and condition token grids, whole, at four pixel offsets (0 or 2 down and across) for variety.</summary>
    private static IEnumerable<TokenGrids> PhotoTokenGrids(MLContext ml, string photo, VqganTokenizerTransformer imageTokenizer,
        VqganTokenizerTransformer conditionTokenizer)
    {
        var (real, condition, h, w) = ShrunkAndBlurred(ml, photo);
        foreach (var (top, left) in new[] { (0, 0), (0, 2), (2, 0), (2, 2) })
        {
            int ch = h - 8, cw = w - 8; // sides stay multiples of 8
            using var image = ImagePixels.ToImage(ImagePixels.Crop(real, 3, h, w, top, left, ch, cw), 3, ch, cw);
            using var conditionImage = ImagePixels.ToImage(ImagePixels.Crop(condition, 3, h, w, top, left, ch, cw), 3, ch, cw);
            var (tokens, th, tw) = imageTokenizer.TokenizeImage(image);
            var (conditionTokens, _, _) = conditionTokenizer.TokenizeImage(conditionImage);
            yield return new TokenGrids(photo, tokens, conditionTokens, th, tw);
        }
    }

    private sealed record TokenGrids(string Photo, long[] Tokens, long[] ConditionTokens, int Height, int Width);

    /// <summary>Random window × window blocks of the grids, as key-typed token columns (Tokens, ConditionTokens).</summary>
    private static IDataView TokenWindows(MLContext ml, IReadOnlyList<TokenGrids> grids, int window, int count, int seed, int codes, int conditionCodes)
    {
        var rng = new Random(seed);
        var rows = new List<WindowRow>(count);
        for (int n = 0; n < count; n++)
        {
            var g = grids[rng.Next(grids.Count)];
            int top = rng.Next(g.Height - window + 1), left = rng.Next(g.Width - window + 1);
            uint[] Block(long[] grid) => Enumerable.Range(0, window * window)
                .Select(k => (uint)grid[(top + k / window) * g.Width + left + k % window] + 1).ToArray(); // key values count from 1
            rows.Add(new WindowRow { Tokens = Block(g.Tokens), ConditionTokens = Block(g.ConditionTokens) });
        }
        var schema = SchemaDefinition.Create(typeof(WindowRow));
        schema[nameof(WindowRow.Tokens)].ColumnType = new VectorDataViewType(new KeyDataViewType(typeof(uint), codes), window, window);
        schema[nameof(WindowRow.ConditionTokens)].ColumnType = new VectorDataViewType(new KeyDataViewType(typeof(uint), conditionCodes), window, window);
        return ml.Data.LoadFromEnumerable(rows, schema);
    }

    private sealed class WindowRow
    {
        public uint[] Tokens { get; set; } = Array.Empty<uint>();
        public uint[] ConditionTokens { get; set; } = Array.Empty<uint>();
    }

    private sealed class PathRow
    {
        public string Path { get; set; } = "";
    }
}
